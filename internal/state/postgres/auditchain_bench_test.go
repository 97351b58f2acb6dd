package postgres_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// BenchmarkAuditChainAppend is the throughput of one replica's audit
// pipeline into PostgreSQL: b.N records written as fast as Write takes
// them, until Close has appended them all (ns/op is the time per record,
// the database's work on the same CPUs included).
func BenchmarkAuditChainAppend(b *testing.B) {
	db, err := postgres.Open(b.Context(), testenv.PostgresDSN(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := audit.Open(audit.Config{Dir: b.TempDir(), Chain: db.AuditChain(), SigningKey: key, Replica: "bench:1", MaxWait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	r := audit.Record{Result: audit.ResultHit, Identity: "anonymous", ClientIP: "127.0.0.1", UserAgent: "Go-http-client/1.1",
		Module: "example.com/hello", Version: "v1.0.0", File: "zip", Bytes: 1234, Duration: time.Millisecond, RequestID: "0123456789abcdef"}
	b.ResetTimer()
	for range b.N {
		l.Write(r)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if d := l.Dropped(); d != 0 {
		b.Fatalf("%d dropped", d)
	}
}
