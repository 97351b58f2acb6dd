package metrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRequestSeries checks that the remembered children count what the
// label lookups did: the same series, the same values, and no series
// before its first request.
func TestRequestSeries(t *testing.T) {
	m := New()
	if got := series(t, m, "modgate_requests_total"); len(got) != 0 {
		t.Fatalf("modgate_requests_total before any request = %v, want no series", got)
	}
	reqs := []struct {
		artifact string
		status   int
		cache    string
		bytes    int64
	}{
		{"zip", 200, "hit", 100},
		{"zip", 200, "hit", 50},
		{"zip", 200, "miss", 10},
		{"mod", 200, "hit", 7},
		{"zip", 404, "miss", 0},
		{"other", 200, "", 3},
		{"list", 200, "", 0},
		{"weird", 200, "odd", 1},
	}
	for _, r := range reqs {
		m.Request(r.artifact, r.status, r.cache, r.bytes, time.Millisecond)
	}
	want := map[string]float64{
		`artifact="list",cache="",status="200"`:     1,
		`artifact="mod",cache="hit",status="200"`:   1,
		`artifact="other",cache="",status="200"`:    1,
		`artifact="weird",cache="odd",status="200"`: 1,
		`artifact="zip",cache="hit",status="200"`:   2,
		`artifact="zip",cache="miss",status="200"`:  1,
		`artifact="zip",cache="miss",status="404"`:  1,
	}
	if diff := cmp.Diff(want, series(t, m, "modgate_requests_total")); diff != "" {
		t.Errorf("modgate_requests_total (-want +got):\n%s", diff)
	}
	wantBytes := map[string]float64{`artifact="mod"`: 7, `artifact="other"`: 3, `artifact="weird"`: 1, `artifact="zip"`: 160}
	if diff := cmp.Diff(wantBytes, series(t, m, "modgate_bytes_served_total")); diff != "" {
		t.Errorf("modgate_bytes_served_total (-want +got):\n%s", diff)
	}
	wantCounts := map[string]float64{`artifact="list"`: 1, `artifact="mod"`: 1, `artifact="other"`: 1, `artifact="weird"`: 1, `artifact="zip"`: 4}
	if diff := cmp.Diff(wantCounts, series(t, m, "modgate_request_duration_seconds")); diff != "" {
		t.Errorf("modgate_request_duration_seconds sample counts (-want +got):\n%s", diff)
	}
}

// series returns the samples of the metric family name by their labels
// (a histogram's by its sample count).
func series(t *testing.T, m *Metrics, name string) map[string]float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := s.GetCounter().GetValue()
			if h := s.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

// BenchmarkRequest is the metrics cost of one cache hit.
func BenchmarkRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.Request("zip", 200, "hit", 12345, time.Millisecond)
	}
}
