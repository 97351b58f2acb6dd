package storagetest

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/modgate/modgate/internal/storage"
)

const (
	raceVersions = 4  // distinct contents the writer cycles through
	raceWrites   = 24 // replacements per writer
	raceReaders  = 8  // concurrent readers
	raceReads    = 40 // Gets per reader
)

// testConcurrentReaders replaces one name over and over while readers
// Get it, and checks that every reader sees one whole version, never a mix
// or a truncated file. It runs once with Put and, for a FilePutter, once
// with PutFile.
func testConcurrentReaders(t *testing.T, s storage.Store) {
	// Each version is one repeated byte with its own length, so a reader
	// can tell which version it got and whether it got all of it.
	versions := make([][]byte, raceVersions)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 40_000*(i+1)+i)
	}

	type putFunc func(t *testing.T, name string, data []byte) error
	puts := []struct {
		name string
		put  putFunc
	}{
		{"Put", func(t *testing.T, name string, data []byte) error {
			return s.Put(t.Context(), name, bytes.NewReader(data))
		}},
	}
	if fp, ok := s.(storage.FilePutter); ok {
		puts = append(puts, struct {
			name string
			put  putFunc
		}{"PutFile", func(t *testing.T, name string, data []byte) error {
			return fp.PutFile(t.Context(), name, writeLocal(t, data))
		}})
	}

	for i, p := range puts {
		t.Run(p.name, func(t *testing.T) {
			name := fmt.Sprintf("example.com/race%d/@v/list", i)
			if err := p.put(t, name, versions[0]); err != nil {
				t.Fatalf("%s(%q) = %v", p.name, name, err)
			}

			var wg sync.WaitGroup
			for range raceReaders {
				wg.Go(func() {
					for range raceReads {
						if !readVersion(t, s, name, versions) {
							return
						}
					}
				})
			}
			for w := 1; w <= raceWrites; w++ {
				if err := p.put(t, name, versions[w%raceVersions]); err != nil {
					t.Errorf("%s(%q) while reading = %v", p.name, name, err)
					break
				}
			}
			wg.Wait()
			checkContent(t, s, name, versions[raceWrites%raceVersions])
			checkList(t, s, fmt.Sprintf("example.com/race%d/@v/", i), []string{"list"})
		})
	}
}

// readVersion reads name once and reports whether it is exactly one of
// versions, failing t if not. It may run on any goroutine.
func readVersion(t *testing.T, s storage.Store, name string, versions [][]byte) bool {
	r, err := s.Get(t.Context(), name)
	if err != nil {
		t.Errorf("Get(%q) during Puts = %v", name, err)
		return false
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Errorf("Get(%q) during Puts: reading = %v", name, err)
		return false
	}
	if len(got) == 0 {
		t.Errorf("Get(%q) during Puts read an empty file, want one whole version", name)
		return false
	}
	v := int(got[0]) - 'a'
	if v < 0 || v >= len(versions) {
		t.Errorf("Get(%q) during Puts read content starting with %q, not any version", name, got[0])
		return false
	}
	if !bytes.Equal(got, versions[v]) {
		t.Errorf("Get(%q) during Puts read %s, want all %d bytes of version %d",
			name, describe(got, versions[v]), len(versions[v]), v)
		return false
	}
	return true
}
