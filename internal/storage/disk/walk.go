package disk

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/modgate/modgate/internal/storage"
)

var _ storage.Walker = (*Store)(nil)

// Walk calls fn with the name of every regular file under prefix ("" for
// the whole store, else a directory key ending in "/"). Temporary files,
// directories starting with a dot and symbolic links are skipped, as List
// skips them. A missing prefix walks nothing.
func (s *Store) Walk(ctx context.Context, prefix string, fn func(name string) error) error {
	root := s.root
	if prefix != "" {
		if err := storage.CheckDir(prefix); err != nil {
			return err
		}
		root = s.path(strings.TrimSuffix(prefix, "/"))
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && p != root {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		name := filepath.ToSlash(strings.TrimPrefix(p, s.prefix))
		return fn(name)
	})
	return err
}
