package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// KeyName is the signer name in checkpoint notes and key files.
const KeyName = "modgate-audit"

// checkpointTitle is the first line of every checkpoint note.
const checkpointTitle = "modgate audit checkpoint"

// KeyPath returns where the signing key of the log in dir is kept by
// convention: next to the directory, "<dir>.key" ({data_dir}/audit.key for
// the default {data_dir}/audit), so retention never touches it and
// `modgate audit verify` finds it. LoadOrCreateKey writes the public
// verifier key to KeyPath(dir)+".pub".
func KeyPath(dir string) string { return filepath.Clean(dir) + ".key" }

// PseudonymKeyPath returns where the pseudonymisation key of the log in
// dir is kept when the configuration names no file: "<dir>.pseudonym-key".
func PseudonymKeyPath(dir string) string { return filepath.Clean(dir) + ".pseudonym-key" }

// LoadOrCreateKey returns the ed25519 signing key stored at path in
// golang.org/x/mod/sumdb/note private key form ("PRIVATE+KEY+modgate-audit+
// <hash>+<key>"). When path does not exist it generates a key, writes it
// with mode 0600 (creating the directory with 0700 if needed) and writes
// the matching verifier key to path+".pub" (mode 0644), for
// `modgate audit verify` and for anyone checking checkpoints without the
// private key. A file that exists but does not hold a note private key is
// an error; it is never overwritten.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return parsePrivateKey(strings.TrimSpace(string(data)))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading audit signing key: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
	if err != nil {
		return nil, fmt.Errorf("generating audit signing key: %w", err)
	}
	if err := writeNewFile(path, []byte(skey+"\n"), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			return LoadOrCreateKey(path)
		}
		return nil, fmt.Errorf("writing audit signing key: %w", err)
	}
	if err := os.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("writing audit verifier key: %w", err)
	}
	return parsePrivateKey(skey)
}

// LoadPublicKey reads the public key from a file holding a note verifier
// key ("modgate-audit+<hash>+<key>", as in KeyPath(dir)+".pub") or a note
// private key (the signing key file itself).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit key: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if strings.HasPrefix(s, "PRIVATE+KEY+") {
		priv, err := parsePrivateKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return priv.Public().(ed25519.PublicKey), nil
	}
	if _, err := note.NewVerifier(s); err != nil {
		return nil, fmt.Errorf("%s: not a verifier key: %w", path, err)
	}
	// name+hash+key; the base64 key itself may contain "+".
	parts := strings.SplitN(s, "+", 3)
	key, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(key) != 1+ed25519.PublicKeySize || key[0] != algEd25519 {
		return nil, fmt.Errorf("%s: not an ed25519 verifier key", path)
	}
	return ed25519.PublicKey(key[1:]), nil
}

// LoadSecret reads the pseudonymisation key stored at path (hex, at least
// 16 bytes), as LoadOrCreateSecret writes it.
func LoadSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit pseudonym key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("audit pseudonym key %s: want at least 16 bytes in hex", path)
	}
	return key, nil
}

// LoadOrCreateSecret returns the pseudonymisation key stored at path (see
// LoadSecret), creating a random 32-byte key with mode 0600 when path does
// not exist.
func LoadOrCreateSecret(path string) ([]byte, error) {
	key, err := LoadSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, 32)
	rand.Read(key)
	if err := writeNewFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return LoadSecret(path)
		}
		return nil, fmt.Errorf("writing audit pseudonym key: %w", err)
	}
	return key, nil
}

// writeNewFile creates path with data, failing with fs.ErrExist if it
// exists. The content is complete before the name appears.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-key-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A hard link fails if path exists, unlike rename.
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// algEd25519 is the note key algorithm byte for ed25519.
const algEd25519 = 1

// parsePrivateKey decodes a note private key.
func parsePrivateKey(skey string) (ed25519.PrivateKey, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("not an audit signing key (want a note private key): %w", err)
	}
	// PRIVATE+KEY+name+hash+key; the base64 key itself may contain "+".
	parts := strings.SplitN(skey, "+", 5)
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != algEd25519 {
		return nil, errors.New("not an ed25519 audit signing key")
	}
	return ed25519.NewKeyFromSeed(key[1:]), nil
}

// newSigner returns a note signer for priv under KeyName.
func newSigner(priv ed25519.PrivateKey) (note.Signer, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit signing key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	vkey, err := note.NewEd25519VerifierKey(KeyName, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	hash := strings.Split(vkey, "+")[1]
	seed := append([]byte{algEd25519}, priv.Seed()...)
	return note.NewSigner("PRIVATE+KEY+" + KeyName + "+" + hash + "+" + base64.StdEncoding.EncodeToString(seed))
}

// newVerifier returns a note verifier for pub under KeyName.
func newVerifier(pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(KeyName, pub)
	if err != nil {
		return nil, fmt.Errorf("audit public key: %w", err)
	}
	return note.NewVerifier(vkey)
}

// A checkpoint is one line of the checkpoints file: a signed chain head.
// Seq, Hash, Time, Interval and Final repeat the note's text for readers;
// Verify trusts only the signed text and requires the fields to agree
// with it.
//
// Interval is the writer's checkpoint interval, so that Verify can tell a
// tail that a running writer has not signed yet from one cut off; Final
// marks the checkpoint Close signs on a clean shutdown. Checkpoints
// written before they existed have neither (the note's text has 4 lines
// instead of 5 or 6).
type checkpoint struct {
	Seq      int64         `json:"seq"`
	Hash     string        `json:"hash"`
	Time     time.Time     `json:"time"`
	Interval time.Duration `json:"interval_ns,omitempty"`
	Final    bool          `json:"final,omitempty"`
	Note     string        `json:"note"`
}

// A checkpointHead is what a checkpoint signs.
type checkpointHead struct {
	head     head
	time     time.Time
	interval time.Duration
	final    bool
}

func checkpointText(c checkpointHead) string {
	text := fmt.Sprintf("%s\nseq %d\nhash %s\ntime %s\n", checkpointTitle, c.head.seq, c.head.hash, c.time.UTC().Format(time.RFC3339Nano))
	if c.interval > 0 {
		text += "interval " + c.interval.String() + "\n"
	}
	if c.final {
		text += "final\n"
	}
	return text
}

// signCheckpoint signs c.
func signCheckpoint(s note.Signer, c checkpointHead) (checkpoint, error) {
	msg, err := note.Sign(&note.Note{Text: checkpointText(c)}, s)
	if err != nil {
		return checkpoint{}, fmt.Errorf("signing audit checkpoint: %w", err)
	}
	return checkpoint{Seq: c.head.seq, Hash: c.head.hash, Time: c.time.UTC(), Interval: c.interval, Final: c.final, Note: string(msg)}, nil
}

// signature returns the signature lines of a signed note, for the log.
func (c checkpoint) signature() string {
	_, sig, _ := strings.Cut(c.Note, "\n\n")
	return strings.TrimSpace(sig)
}

// errBadSignature is a checkpoint whose note does not verify.
var errBadSignature = errors.New("bad signature")

// parseCheckpoint decodes and verifies one line of the checkpoints file,
// or of an outside copy of it: anything before the first "{" (a syslog
// prefix) is ignored. The error matches errBadSignature when the note is
// not signed by v or its text does not say what the line's fields say.
func parseCheckpoint(line []byte, v note.Verifier) (checkpoint, error) {
	if i := bytes.IndexByte(line, '{'); i > 0 {
		line = line[i:]
	}
	var c checkpoint
	if err := json.Unmarshal(line, &c); err != nil {
		return checkpoint{}, fmt.Errorf("not a checkpoint: %v", err)
	}
	n, err := note.Open([]byte(c.Note), note.VerifierList(v))
	if err != nil {
		return checkpoint{}, fmt.Errorf("%w: %v", errBadSignature, err)
	}
	s, err := parseCheckpointText(n.Text)
	if err != nil {
		return checkpoint{}, err
	}
	if s.head.seq != c.Seq || s.head.hash != c.Hash || !s.time.Equal(c.Time) || s.interval != c.Interval || s.final != c.Final {
		return checkpoint{}, fmt.Errorf("%w: the signed text says seq %d hash %s, the line says seq %d hash %s", errBadSignature, s.head.seq, s.head.hash, c.Seq, c.Hash)
	}
	return c, nil
}

func parseCheckpointText(text string) (checkpointHead, error) {
	bad := func(why string) (checkpointHead, error) {
		return checkpointHead{}, fmt.Errorf("signed text is not a checkpoint: %s", why)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 4 || len(lines) > 6 || lines[0] != checkpointTitle {
		return bad("want 4 to 6 lines starting with " + strconv.Quote(checkpointTitle))
	}
	seqText, ok1 := strings.CutPrefix(lines[1], "seq ")
	hash, ok2 := strings.CutPrefix(lines[2], "hash ")
	timeText, ok3 := strings.CutPrefix(lines[3], "time ")
	if !ok1 || !ok2 || !ok3 {
		return bad("want seq, hash and time lines")
	}
	var c checkpointHead
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		return bad("seq is not a number")
	}
	c.head = head{seq: seq, hash: hash}
	if c.time, err = time.Parse(time.RFC3339Nano, timeText); err != nil {
		return bad("time is not RFC 3339")
	}
	rest := lines[4:]
	if len(rest) > 0 {
		ivText, ok := strings.CutPrefix(rest[0], "interval ")
		if !ok {
			return bad("want an interval line after the time")
		}
		if c.interval, err = time.ParseDuration(ivText); err != nil || c.interval <= 0 {
			return bad("interval is not a positive duration")
		}
		rest = rest[1:]
	}
	if len(rest) > 0 {
		if rest[0] != "final" {
			return bad(`want "final" as the last line`)
		}
		c.final = true
	}
	return c, nil
}

// marshalCheckpoint returns the checkpoints-file line of c, without "\n".
func marshalCheckpoint(c checkpoint) ([]byte, error) {
	return json.Marshal(c)
}

// appendCheckpoint appends line (a marshalled checkpoint) to the
// checkpoints file in dir and syncs it.
func appendCheckpoint(dir string, line []byte) error {
	return appendLine(filepath.Join(dir, CheckpointsFile), line)
}

// appendLine appends line and "\n" to the file at path, creating it, and
// syncs it. A failed write is cut back, so the file never holds half a line.
func appendLine(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("writing audit checkpoint: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("writing audit checkpoint: %w", err)
	}
	if _, err := f.Write(append(slices.Clip(line), '\n')); err != nil {
		// Never leave half a line: cut back to where we started.
		f.Truncate(fi.Size())
		f.Close()
		return fmt.Errorf("writing audit checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing audit checkpoint: %w", err)
	}
	return f.Close()
}

// readCheckpoints returns the lines of the checkpoints file in dir (nil if
// there is none). A final line without "\n" (a torn write) is left out.
func readCheckpoints(dir string) ([][]byte, error) {
	lines, err := readLines(filepath.Join(dir, CheckpointsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return lines, err
}

// readLines returns the complete lines of the file at path; a final line
// without "\n" (a torn write) is left out. A missing file is an error
// matching fs.ErrNotExist.
func readLines(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading audit checkpoints: %w", err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if len(data) > 0 && data[len(data)-1] != '\n' && len(lines) > 0 {
		lines = lines[:len(lines)-1]
	}
	return lines, sc.Err()
}
