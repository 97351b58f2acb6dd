package git

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/upstream"
)

// Sources is an ordered list of Sources that is itself an upstream.Source:
// a path goes to the first Source whose patterns match its module, and a
// module no Source matches is "not found". It is safe for concurrent use.
type Sources struct {
	list []*Source
}

// NewSources returns the Sources over list, tried in order.
func NewSources(list ...*Source) *Sources {
	return &Sources{list: slices.Clone(list)}
}

// String names the sources, comma-separated.
func (ss *Sources) String() string {
	names := make([]string, len(ss.list))
	for i, s := range ss.list {
		names[i] = s.String()
	}
	return strings.Join(names, ",")
}

// Lookup returns the Source named name, or nil.
func (ss *Sources) Lookup(name string) *Source {
	for _, s := range ss.list {
		if s.String() == name {
			return s
		}
	}
	return nil
}

// Matches reports whether any Source serves modulePath.
func (ss *Sources) Matches(modulePath string) bool { return ss.match(modulePath) != nil }

func (ss *Sources) match(modulePath string) *Source {
	for _, s := range ss.list {
		if s.Matches(modulePath) {
			return s
		}
	}
	return nil
}

// Fetch routes path to the first Source matching its module (see
// Source.Fetch). A module no Source matches gives an error matching
// fs.ErrNotExist; a path that is not a module protocol path fs.ErrInvalid.
func (ss *Sources) Fetch(ctx context.Context, path string) (*upstream.Response, error) {
	escMod, _, err := splitProtocolPath(path)
	if err != nil {
		return nil, fmt.Errorf("git sources: %w", err)
	}
	modPath, err := module.UnescapePath(escMod)
	if err != nil {
		return nil, fmt.Errorf("git sources: path %q: %v: %w", path, err, fs.ErrInvalid)
	}
	s := ss.match(modPath)
	if s == nil {
		return nil, fmt.Errorf("git sources: %s: %w", modPath, notExist("no private source matches the module path"))
	}
	return s.Fetch(ctx, path)
}

// Forget calls Forget on every Source and returns every module path
// served from the repository, sorted.
func (ss *Sources) Forget(repoURL string) []string {
	var all []string
	for _, s := range ss.list {
		all = append(all, s.Forget(repoURL)...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}
