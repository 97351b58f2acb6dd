package audit

// SetMaxBatch makes transactions (and spool drains) small, for tests of
// drains that take several steps; the returned func restores it.
func SetMaxBatch(n int) func() {
	old := maxBatch
	maxBatch = n
	return func() { maxBatch = old }
}
