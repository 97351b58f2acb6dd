package mirror

import (
	"testing"
	"time"

	"golang.org/x/mod/semver"
)

// FuzzUpstreamAnswers feeds arbitrary upstream bodies to the parsers of
// untrusted upstream data: version lists, .info JSON, and the go.mod
// requirement parsing behind prefetch. None may panic; a parsed list holds
// only valid versions, and merging yields a sorted list without duplicates.
func FuzzUpstreamAnswers(f *testing.F) {
	for _, s := range []string{
		"v1.0.0\nv1.1.0\n", "v1.0.0 2024-01-01T00:00:00Z\nnot-a-version\n\n", "\x00\xff", "v2.0.0+incompatible\nv1.0.0-rc.1",
		`{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`, `{"Version":""}`, `{"Version":1}`, "{",
		"module example.com/a\nrequire (\n\texample.com/b v1.0.0\n\texample.com/c v1\n)\n", "require example.com/x v1.0.0 // indirect",
	} {
		f.Add([]byte(s))
	}
	m := &Mirror{prefetchQ: make(chan prefetchJob, 16), prefetched: newTTLCache[bool](64, time.Now)}
	f.Fuzz(func(t *testing.T, data []byte) {
		vs := parseList(data)
		for _, v := range vs {
			if !semver.IsValid(v) {
				t.Fatalf("parseList(%q) returned invalid version %q", data, v)
			}
		}
		merged := mergeVersions(vs, vs)
		for i := 1; i < len(merged); i++ {
			if semver.Compare(merged[i-1], merged[i]) > 0 || merged[i-1] == merged[i] {
				t.Fatalf("mergeVersions is not sorted and unique: %q", merged)
			}
		}
		if in, err := parseInfo(data); err == nil && in.Version == "" {
			t.Fatalf("parseInfo(%q) accepted an empty Version", data)
		}
		m.queueRequirements(data, 0)
		for len(m.prefetchQ) > 0 {
			j := <-m.prefetchQ
			if semver.Canonical(j.version) == "" {
				t.Fatalf("queued a requirement with invalid version %q from %q", j.version, data)
			}
		}
	})
}
