package goproxy

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/modgate/modgate/internal/mirror"
)

// TestFileHeader: the shared values are the ones Header.Set would have
// put, a change to one response's header does not reach the next, and
// setting them allocates nothing.
func TestFileHeader(t *testing.T) {
	fh := newFileHeader()
	for _, k := range []Kind{KindInfo, KindMod, KindZip} {
		for _, res := range []mirror.Result{mirror.Hit, mirror.Miss, mirror.Stale, mirror.Result("other")} {
			want := http.Header{}
			want.Set("Content-Type", contentType(k))
			want.Set("Cache-Control", immutableCacheControl)
			want.Set("X-Modgate-Cache", string(res))
			got := http.Header{}
			fh.set(got, k, res)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("set(%v, %q) (-want +got):\n%s", k, res, diff)
			}
		}
	}
	first := http.Header{}
	fh.set(first, KindZip, mirror.Hit)
	first.Add("Cache-Control", "no-transform")
	first.Add("X-Modgate-Cache", "changed")
	first.Set("Content-Type", "text/html")
	next := http.Header{}
	fh.set(next, KindZip, mirror.Hit)
	want := http.Header{"Content-Type": {"application/zip"}, "Cache-Control": {immutableCacheControl}, "X-Modgate-Cache": {"hit"}}
	if diff := cmp.Diff(want, next); diff != "" {
		t.Errorf("after changing an earlier response's header (-want +got):\n%s", diff)
	}
	hdr := http.Header{}
	if n := testing.AllocsPerRun(100, func() { fh.set(hdr, KindMod, mirror.Hit) }); n != 0 {
		t.Errorf("set allocates %v times, want 0", n)
	}
}

// BenchmarkFileHeader is the header cost of a served file, against the
// Header.Set calls it replaces.
func BenchmarkFileHeader(b *testing.B) {
	fh := newFileHeader()
	b.Run("shared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fh.set(make(http.Header, 4), KindMod, mirror.Hit)
		}
	})
	b.Run("Set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			hdr := make(http.Header, 4)
			hdr.Set("Content-Type", contentType(KindMod))
			hdr.Set("Cache-Control", immutableCacheControl)
			hdr.Set("X-Modgate-Cache", string(mirror.Hit))
		}
	})
}
