package ledger

import "strings"

// A keyLister is a Backend that can list its keys (the ledger file can;
// a database backend may).
type keyLister interface {
	keys() []string
}

func (b *fileBackend) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, len(b.records))
	for k := range b.records {
		keys = append(keys, k)
	}
	return keys
}

// Records calls fn for every recorded hash: file is "mod" for a go.mod
// and "zip" for a zip, as the store names them. fn must not call the
// Ledger. It is for reporting recorded files the store has lost; a
// backend that cannot list its keys reports none.
func (l *Ledger) Records(fn func(path, version, file string)) {
	kl, ok := l.backend.(keyLister)
	if !ok {
		return
	}
	for _, k := range kl.keys() {
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
