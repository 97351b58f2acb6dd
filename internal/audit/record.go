package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A Result says how a request ended.
type Result string

// Results. Admin actions and the log's own records use ResultAdmin.
const (
	ResultHit          Result = "hit"          // served from storage
	ResultMiss         Result = "miss"         // fetched from an upstream and served
	ResultStale        Result = "stale"        // served an expired answer because every upstream failed
	ResultBlocked      Result = "blocked"      // refused by policy
	ResultUnauthorized Result = "unauthorized" // no or wrong credentials (401)
	ResultForbidden    Result = "forbidden"    // the identity lacks the scope (403)
	ResultNotFound     Result = "not_found"    // no such module, version or file
	ResultError        Result = "error"        // failed (upstream down, verification failure, ...)
	ResultAdmin        Result = "admin"        // an admin action; Action says which
)

// Results lists every Result, in the order above.
func Results() []Result {
	return []Result{ResultHit, ResultMiss, ResultStale, ResultBlocked, ResultUnauthorized,
		ResultForbidden, ResultNotFound, ResultError, ResultAdmin}
}

// ParseResult returns the Result named s.
func ParseResult(s string) (Result, error) {
	for _, r := range Results() {
		if string(r) == s {
			return r, nil
		}
	}
	names := make([]string, 0, len(Results()))
	for _, r := range Results() {
		names = append(names, string(r))
	}
	return "", fmt.Errorf("unknown result %q (want one of %s)", s, strings.Join(names, ", "))
}

// Actions the log writes itself, besides the server's admin actions
// (token.create, token.revoke, policy.reload, tag.moved, ...).
const (
	// ActionDropped records that records were dropped (buffer full or
	// sink failing); Detail says how many and since when.
	ActionDropped = "audit.dropped"
	// ActionRetention records the deletion of old files by retention.
	ActionRetention = "audit.retention"
)

// A Record is one audit event: a request that served, refused or failed a
// module file, list, latest or checksum-database request, or an admin
// action. The JSON names are part of the file format and never change.
type Record struct {
	Time      time.Time     `json:"time"`
	RequestID string        `json:"request_id,omitempty"`
	Identity  string        `json:"identity,omitempty"`   // who, as authenticated ("anonymous" for anonymous requests)
	ClientIP  string        `json:"client_ip,omitempty"`  // without the port
	UserAgent string        `json:"user_agent,omitempty"` // cut to maxUserAgent bytes
	Module    string        `json:"module,omitempty"`
	Version   string        `json:"version,omitempty"`
	File      string        `json:"file,omitempty"` // info, mod, zip, list, latest, sumdb, ...
	Result    Result        `json:"result"`
	Rule      string        `json:"rule,omitempty"`   // the policy or auth rule that decided
	Detail    string        `json:"detail,omitempty"` // the reason or error, cut to maxDetail bytes
	Bytes     int64         `json:"bytes,omitempty"`
	Upstream  string        `json:"upstream,omitempty"`
	Duration  time.Duration `json:"duration_ns,omitempty"`
	Action    string        `json:"action,omitempty"` // admin actions: token.create, token.revoke, policy.reload, tag.moved, ...
	// Replica names the process that wrote the record into a shared chain
	// (Config.Replica); empty in a single-node log.
	Replica string `json:"replica,omitempty"`
}

// Limits on free-text fields, so that one client cannot make every line
// of the log huge.
const (
	maxUserAgent = 512
	maxDetail    = 4096
)

// Genesis is the prev of the first record of a log.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// An entry is one line of a log file: a Record with its place in the
// chain. Field order is the order in the line; Hash is last.
type entry struct {
	Seq  int64  `json:"seq"`
	Prev string `json:"prev"`
	Record
	Retention *Retention `json:"retention,omitempty"`
	Hash      string     `json:"hash,omitempty"`
}

// Retention is what an ActionRetention record says about the files it
// deleted: enough for Verify to anchor the first remaining record.
type Retention struct {
	Files    []string `json:"files"`     // base names, oldest first
	FirstSeq int64    `json:"first_seq"` // seq of the first deleted record
	LastSeq  int64    `json:"last_seq"`  // seq of the last deleted record
	LastHash string   `json:"last_hash"` // hash of the last deleted record
}

// hashField starts the hash field at the end of every line.
const hashField = `,"hash":"`

// encodeLine returns the line for e (whose Hash is ignored), ending in
// "\n", and its hash.
func encodeLine(e entry) ([]byte, string, error) {
	e.Hash = ""
	var body []byte
	if e.Retention == nil && e.Time.Year() >= 0 && e.Time.Year() <= 9999 {
		body = appendEntry(make([]byte, 0, 512), &e)
	} else {
		var err error
		if body, err = json.Marshal(e); err != nil {
			return nil, "", fmt.Errorf("encoding record seq %d: %w", e.Seq, err)
		}
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	line := make([]byte, 0, len(body)+len(hashField)+len(h)+3)
	line = append(line, body[:len(body)-1]...) // without the closing brace
	line = append(line, hashField...)
	line = append(line, h...)
	line = append(line, "\"}\n"...)
	return line, h, nil
}

// errMalformed is a line that is not a record of this format.
var errMalformed = errors.New("not an audit record")

// decodeLine parses one line (without its "\n") and reports whether its
// stated hash matches its bytes. err is non-nil only for a line that is not
// a record at all.
func decodeLine(line []byte) (e entry, hashOK bool, err error) {
	i := bytes.LastIndex(line, []byte(hashField))
	if i < 0 {
		return entry{}, false, fmt.Errorf("%w: no hash field", errMalformed)
	}
	stated := string(line[i+len(hashField):])
	stated, ok := strings.CutSuffix(stated, `"}`)
	if !ok || len(stated) != sha256.Size*2 {
		return entry{}, false, fmt.Errorf("%w: hash is not the last field", errMalformed)
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return entry{}, false, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if e.Hash != stated {
		return entry{}, false, fmt.Errorf("%w: two hash fields", errMalformed)
	}
	body := make([]byte, 0, i+1)
	body = append(append(body, line[:i]...), '}')
	sum := sha256.Sum256(body)
	return e, hex.EncodeToString(sum[:]) == stated, nil
}

// clip cuts s to at most n bytes (plus an ellipsis) without leaving half
// a UTF-8 sequence at the end.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
