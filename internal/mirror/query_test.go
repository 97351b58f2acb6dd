package mirror

import (
	"errors"
	"strings"
	"testing"
)

// TestExactVersionQuery: an exact version that is not valid for the path
// (v2.0.0 of a module without /v2) is a query the upstream may resolve only
// to itself with +incompatible; any other version is refused.
func TestExactVersionQuery(t *testing.T) {
	f := newFixture(t)
	f.src.set("example.com/a/@v/v2.0.0.info", []byte(`{"Version":"v2.0.0+incompatible","Time":"2024-01-01T00:00:00Z"}`))
	f.src.set("example.com/a/@v/v3.0.0.info", []byte(`{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}`))
	f.src.set("example.com/a/@v/v4.0.0.info", []byte(`{"Version":"v4.0.1+incompatible","Time":"2024-01-01T00:00:00Z"}`))
	ctx := t.Context()
	a, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/v2.0.0.info", Options{})
	if err != nil || !strings.Contains(string(a.Data), "v2.0.0+incompatible") {
		t.Errorf("Query(v2.0.0) = %v, %v; want v2.0.0+incompatible", a, err)
	}
	for _, v := range []string{"v3.0.0", "v4.0.0"} {
		if _, err := f.m.Query(ctx, "example.com/a", "example.com/a/@v/"+v+".info", Options{}); !errors.Is(err, ErrVerification) {
			t.Errorf("Query(%s) answered with another version: err = %v, want ErrVerification", v, err)
		}
	}
}
