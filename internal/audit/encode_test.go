package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAppendEntryMatchesJSON checks the hand-written encoder against
// encoding/json: the same bytes for ordinary records (json.Marshal escapes
// <, > and & too), and for hostile strings a valid line that decodes to
// what json.Marshal's line decodes to.
func TestAppendEntryMatchesJSON(t *testing.T) {
	ts := time.Date(2026, 11, 21, 15, 4, 5, 123456789, time.UTC)
	tests := []struct {
		name string
		e    entry
	}{
		{"minimal", entry{Seq: 1, Prev: Genesis, Record: Record{Time: ts, Result: ResultHit}}},
		{"every field", entry{Seq: 42, Prev: strings.Repeat("ab", 32), Record: Record{
			Time: ts.In(time.FixedZone("x", 3600)), RequestID: "r-1", Identity: "ci", ClientIP: "127.0.0.1",
			UserAgent: "Go-http-client/1.1", Module: "example.com/!upper", Version: "v1.2.3+incompatible",
			File: "zip", Result: ResultBlocked, Rule: "no-evil", Detail: `blocked by rule "no-evil": a <b> & c`,
			Bytes: 1234, Upstream: "https://proxy.example", Duration: 1500 * time.Microsecond, Action: "token.create", Replica: "host-1:42",
		}}},
		{"hostile strings", entry{Seq: 3, Prev: Genesis, Record: Record{Time: ts, Result: ResultError,
			UserAgent: "a\x00b\x1fc\u007fd\n\r\t\"\\", Detail: "bad utf8 \xff\xfe end \u2028\u2029 é 世界 🙂",
			Identity: "\xed\xa0\x80surrogate"}}},
		{"zero time", entry{Seq: 4, Prev: Genesis, Record: Record{Result: ResultAdmin, Action: ActionDropped}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendEntry(nil, &tt.e)
			want, err := json.Marshal(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name != "hostile strings" && string(got) != string(want) {
				t.Errorf("appendEntry =\n%s\njson.Marshal =\n%s", got, want)
			}
			var fromGot, fromWant entry
			if err := json.Unmarshal(got, &fromGot); err != nil {
				t.Fatalf("appendEntry wrote invalid JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal(want, &fromWant); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(fromWant, fromGot); diff != "" {
				t.Errorf("decoded lines differ (-json.Marshal +appendEntry):\n%s", diff)
			}
		})
	}
}

func BenchmarkEncodeLine(b *testing.B) {
	e := entry{Seq: 42, Prev: Genesis, Record: Record{Time: time.Now(), RequestID: "ab12cd34-1f", Identity: "anonymous",
		ClientIP: "127.0.0.1", UserAgent: "Go-http-client/1.1", Module: "example.com/hello", Version: "v1.0.0",
		File: "zip", Result: ResultHit, Bytes: 1234, Duration: 5 * time.Microsecond}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := encodeLine(e); err != nil {
			b.Fatal(err)
		}
	}
}
