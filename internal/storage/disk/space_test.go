package disk

import "testing"

func TestSpace(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	free, size, err := s.Space()
	if err != nil {
		t.Fatalf("Space() error: %v", err)
	}
	if size == 0 || free > size {
		t.Errorf("Space() = free %d, size %d; want 0 < free <= size", free, size)
	}
}
