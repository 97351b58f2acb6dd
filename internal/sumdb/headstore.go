package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// A HeadStore keeps the latest verified tree head of each checksum
// database where every replica reads and advances it (package
// state/postgres), in place of {StateDir}/{name}/latest. The verified
// partial tiles stay in StateDir, per replica: they are a cache of what
// the database proves again on demand.
//
// Implementations must be safe for concurrent use by several processes.
type HeadStore interface {
	// ReadHead returns the stored tree head of database name (a signed
	// note), nil when there is none.
	ReadHead(ctx context.Context, name string) ([]byte, error)
	// SwapHead replaces the head of name with new if it is still old
	// (nil old: if there is none), and returns an error matching
	// xsumdb.ErrWriteConflict otherwise, so that the client reads the
	// newer head and verifies against it. It never moves the head
	// backwards: a new head of a smaller tree than the stored one is
	// refused with an error matching ErrHeadRegress, even when the
	// stored head is old.
	SwapHead(ctx context.Context, name string, old, new []byte) error
}

// ErrHeadRegress is the error of a tree head that would move the stored
// one backwards (a smaller tree): a replica may never roll back what
// another verified.
var ErrHeadRegress = errors.New("tree head would move backwards")

// headStoreTimeout bounds one HeadStore operation.
const headStoreTimeout = 10 * time.Second

// HeadSize returns the tree size of a tree head note ("go.sum database
// tree\nN\nHASH\n", then a blank line and signatures), for HeadStores
// that compare sizes. The signature is not checked: only heads the client
// verified are ever stored.
func HeadSize(head []byte) (int64, error) {
	body, _, ok := bytes.Cut(head, []byte("\n\n"))
	if !ok {
		return 0, errors.New("tree head: not a signed note")
	}
	tree, err := tlog.ParseTree(append(body, '\n'))
	if err != nil {
		return 0, fmt.Errorf("tree head: %w", err)
	}
	return tree.N, nil
}

// checkAdvance refuses new when it is a smaller tree than cur.
func checkAdvance(cur, new []byte) error {
	if len(cur) == 0 {
		return nil
	}
	curN, err := HeadSize(cur)
	if err != nil {
		return nil // an unreadable stored head is replaced by a verified one
	}
	newN, err := HeadSize(new)
	if err != nil {
		return err
	}
	if newN < curN {
		return fmt.Errorf("%w: tree of %d records after one of %d", ErrHeadRegress, newN, curN)
	}
	return nil
}

// fileHeads is the HeadStore over the state files in a directory, the
// default of one modgate, for the conformance suite.
type fileHeads struct {
	dir    string
	mu     sync.Mutex
	states map[string]*state
}

// NewFileHeadStore returns the state files under dir as a HeadStore: what
// a Verifier without one uses. It is safe for use by one process.
func NewFileHeadStore(dir string) HeadStore { return &fileHeads{dir: dir, states: map[string]*state{}} }

func (f *fileHeads) get(name string) *state {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.states[name]; ok {
		return s
	}
	s := newState(f.dir, name)
	f.states[name] = s
	return s
}

func (f *fileHeads) ReadHead(_ context.Context, name string) ([]byte, error) {
	return f.get(name).readLatest()
}

func (f *fileHeads) SwapHead(_ context.Context, name string, old, new []byte) error {
	return f.get(name).swapLatest(old, new)
}
