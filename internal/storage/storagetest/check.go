package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/modgate/modgate/internal/storage"
)

// statter is the optional Stat method of the readers Get returns.
type statter interface {
	Stat() (fs.FileInfo, error)
}

// mustPut stores data under name and stops the test if that fails.
func mustPut(t *testing.T, s storage.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), name, bytes.NewReader(data)); err != nil {
		t.Fatalf("Put(%q) = %v", name, err)
	}
}

// checkContent checks that Get(name) returns exactly want, and that the
// reader's optional Stat and Seek methods agree with it.
func checkContent(t *testing.T, s storage.Store, name string, want []byte) {
	t.Helper()
	r, err := s.Get(t.Context(), name)
	if err != nil {
		t.Errorf("Get(%q) = %v, want %d bytes", name, err, len(want))
		return
	}
	defer r.Close()
	size := int64(len(want))

	if st, ok := r.(statter); ok {
		fi, err := st.Stat()
		switch {
		case err != nil:
			t.Errorf("Get(%q): Stat() = %v", name, err)
		case fi.Size() != size:
			t.Errorf("Get(%q): Stat().Size() = %d, want %d", name, fi.Size(), size)
		case !fi.Mode().IsRegular():
			t.Errorf("Get(%q): Stat().Mode() = %v, want a regular file", name, fi.Mode())
		}
	}

	if sk, ok := r.(io.Seeker); ok {
		if end, err := sk.Seek(0, io.SeekEnd); err != nil || end != size {
			t.Errorf("Get(%q): Seek(0, io.SeekEnd) = %d, %v, want %d, nil", name, end, err, size)
		}
		mid := size / 2
		if off, err := sk.Seek(mid, io.SeekStart); err != nil || off != mid {
			t.Errorf("Get(%q): Seek(%d, io.SeekStart) = %d, %v, want %d, nil", name, mid, off, err, mid)
		} else if tail, err := io.ReadAll(r); err != nil || !bytes.Equal(tail, want[mid:]) {
			t.Errorf("Get(%q): reading after Seek(%d, io.SeekStart) = %s, %v, want the last %d bytes",
				name, mid, describe(tail, want[mid:]), err, size-mid)
		}
		if _, err := sk.Seek(0, io.SeekStart); err != nil {
			t.Errorf("Get(%q): Seek(0, io.SeekStart) = %v", name, err)
			return
		}
	}

	got, err := io.ReadAll(r)
	if err != nil {
		t.Errorf("Get(%q): reading = %v", name, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Get(%q) read %s, want %d bytes", name, describe(got, want), len(want))
	}
}

// checkAbsent checks that Get(name) reports fs.ErrNotExist.
func checkAbsent(t *testing.T, s storage.Store, name string) {
	t.Helper()
	r, err := s.Get(t.Context(), name)
	if err == nil {
		got, _ := io.ReadAll(r)
		r.Close()
		t.Errorf("Get(%q) returned %d bytes, want an error matching fs.ErrNotExist", name, len(got))
		return
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get(%q) error = %v, want one matching fs.ErrNotExist", name, err)
	}
}

// checkList checks that List(dir) returns want, if the store is a Lister.
// Listing is also how the suite sees temporary files a failed Put left.
func checkList(t *testing.T, s storage.Store, dir string, want []string) {
	t.Helper()
	l, ok := s.(storage.Lister)
	if !ok {
		return
	}
	got, err := l.List(t.Context(), dir)
	if err != nil {
		t.Errorf("List(%q) = %v", dir, err)
		return
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("List(%q) mismatch (-want +got):\n%s", dir, diff)
	}
}

// writeLocal writes data to a new file in a temporary directory, the way a
// caller of PutFile would, and returns its path.
func writeLocal(t *testing.T, data []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "local-*")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// describe summarises got for a failure message without printing megabytes.
func describe(got, want []byte) string {
	n := min(len(got), len(want))
	for i := range n {
		if got[i] != want[i] {
			return fmt.Sprintf("%d bytes differing first at offset %d", len(got), i)
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes (equal up to offset %d)", len(got), n)
	}
	return fmt.Sprintf("%d equal bytes", len(got))
}
