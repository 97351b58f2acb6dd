package ledger

import "strings"

// Records calls fn for every recorded hash: file is "mod" for a go.mod
// and "zip" for a zip, as the store names them. fn must not call the
// Ledger. It is for reporting recorded files the store has lost.
func (l *Ledger) Records(fn func(path, version, file string)) {
	l.mu.Lock()
	keys := make([]string, 0, len(l.records))
	for k := range l.records {
		keys = append(keys, k)
	}
	l.mu.Unlock()
	for _, k := range keys {
		path, vers, ok := strings.Cut(k, " ")
		if !ok {
			continue
		}
		if v, isMod := strings.CutSuffix(vers, "/go.mod"); isMod {
			fn(path, v, "mod")
		} else {
			fn(path, vers, "zip")
		}
	}
}
