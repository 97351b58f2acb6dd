package disk

import "testing"

func TestSpace(t *testing.T) {
	free, size, err := Space(t.TempDir())
	if err != nil {
		t.Fatalf("Space() error: %v", err)
	}
	if size == 0 || free > size {
		t.Errorf("Space() = free %d, size %d; want 0 < free <= size", free, size)
	}
	if _, _, err := Space("/nonexistent/modgate"); err == nil {
		t.Errorf("Space of a missing directory: no error")
	}
}
