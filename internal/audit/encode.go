package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEntry appends the JSON object of e without its hash, the way
// json.Marshal writes it (same field names, order and omissions), for an
// entry without a Retention part. It exists because json.Marshal's
// reflection was most of a record's cost on the request path (the server's
// BenchmarkCacheHit profile). Verify and Query read lines with
// json.Unmarshal, and the hash covers the bytes as written, so what
// matters is that the line is valid JSON that decodes to e; a test checks
// that against json.Marshal.
func appendEntry(b []byte, e *entry) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"prev":`...)
	b = appendString(b, e.Prev)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "request_id", e.RequestID)
	b = appendField(b, "identity", e.Identity)
	b = appendField(b, "client_ip", e.ClientIP)
	b = appendField(b, "user_agent", e.UserAgent)
	b = appendField(b, "module", e.Module)
	b = appendField(b, "version", e.Version)
	b = appendField(b, "file", e.File)
	b = append(b, `,"result":`...)
	b = appendString(b, string(e.Result))
	b = appendField(b, "rule", e.Rule)
	b = appendField(b, "detail", e.Detail)
	if e.Bytes != 0 {
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, e.Bytes, 10)
	}
	b = appendField(b, "upstream", e.Upstream)
	if e.Duration != 0 {
		b = append(b, `,"duration_ns":`...)
		b = strconv.AppendInt(b, int64(e.Duration), 10)
	}
	b = appendField(b, "action", e.Action)
	b = appendField(b, "replica", e.Replica)
	return append(b, '}')
}

// appendField appends `,"name":"value"`, or nothing for an empty value
// (omitempty).
func appendField(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Like json.Marshal it replaces
// invalid UTF-8 with U+FFFD and escapes control characters, and also <, >
// and & and U+2028/U+2029, so the line stays safe to embed anywhere.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
