// Package audittest holds the conformance suite every audit.Chain
// implementation passes (RunChain) and an in-memory Chain for tests.
package audittest

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/modgate/modgate/internal/audit"
)

// ErrDown is what a MemChain returns while it is down.
var ErrDown = errors.New("audittest: chain is down")

// A MemChain is an audit.Chain in memory, for tests: it can be taken down
// (every call fails with ErrDown) and its rows changed behind its back.
type MemChain struct {
	mu    sync.Mutex
	down  bool
	rows  []audit.ChainRow
	cps   [][]byte
	marks map[string]int64
	// lostAcks is how many of the next appends commit and then fail, as
	// when the connection breaks before the commit is confirmed.
	lostAcks int
}

// LoseAcks makes the next n appends commit and then report ErrDown.
func (m *MemChain) LoseAcks(n int) {
	m.mu.Lock()
	m.lostAcks = n
	m.mu.Unlock()
}

// Has implements audit.Chain.
func (m *MemChain) Has(ctx context.Context, h audit.ChainHead) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return false, ErrDown
	}
	for _, r := range m.rows {
		if r.Seq == h.Seq {
			return r.Hash == h.Hash, nil
		}
	}
	return false, nil
}

// NewMemChain returns an empty MemChain.
func NewMemChain() *MemChain { return &MemChain{marks: make(map[string]int64)} }

// SetDown makes every call fail (true) or work again (false).
func (m *MemChain) SetDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}

// Name implements audit.Chain.
func (m *MemChain) Name() string { return "memory chain" }

func (m *MemChain) head() audit.ChainHead {
	if len(m.rows) == 0 {
		return audit.ChainHead{Hash: audit.Genesis}
	}
	r := m.rows[len(m.rows)-1]
	return audit.ChainHead{Seq: r.Seq, Hash: r.Hash}
}

// Append implements audit.Chain.
func (m *MemChain) Append(ctx context.Context, mark audit.SpoolMark, link func(audit.ChainHead) ([]audit.ChainRow, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrDown
	}
	rows, err := link(m.head())
	if err != nil {
		return err
	}
	for _, r := range rows {
		r.Line = bytes.Clone(r.Line)
		m.rows = append(m.rows, r)
	}
	if mark.File != "" {
		m.marks[mark.File] = mark.Lines
	}
	if m.lostAcks > 0 {
		m.lostAcks--
		return ErrDown
	}
	return nil
}

// SpoolProgress implements audit.Chain.
func (m *MemChain) SpoolProgress(ctx context.Context, file string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return 0, ErrDown
	}
	return m.marks[file], nil
}

// Checkpoint implements audit.Chain.
func (m *MemChain) Checkpoint(ctx context.Context, sign func(audit.ChainHead) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrDown
	}
	line, err := sign(m.head())
	if err != nil || line == nil {
		return err
	}
	m.cps = append(m.cps, bytes.Clone(line))
	return nil
}

// Rows implements audit.Chain.
func (m *MemChain) Rows(ctx context.Context, fn func(audit.ChainRow) error) error {
	m.mu.Lock()
	rows := append([]audit.ChainRow(nil), m.rows...)
	down := m.down
	m.mu.Unlock()
	if down {
		return ErrDown
	}
	for _, r := range rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoints implements audit.Chain.
func (m *MemChain) Checkpoints(ctx context.Context, fn func([]byte) error) error {
	m.mu.Lock()
	cps := append([][]byte(nil), m.cps...)
	down := m.down
	m.mu.Unlock()
	if down {
		return ErrDown
	}
	for _, c := range cps {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// EditRow replaces old with new in the line of the row with seq.
func (m *MemChain) EditRow(seq int64, old, new string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.rows {
		if m.rows[i].Seq == seq && bytes.Contains(m.rows[i].Line, []byte(old)) {
			m.rows[i].Line = bytes.Replace(m.rows[i].Line, []byte(old), []byte(new), 1)
			return true
		}
	}
	return false
}

// DeleteRow removes the row with seq.
func (m *MemChain) DeleteRow(seq int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.rows {
		if m.rows[i].Seq == seq {
			m.rows = append(m.rows[:i], m.rows[i+1:]...)
			return true
		}
	}
	return false
}
