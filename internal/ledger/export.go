package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ReadDir returns the records of the ledger file in dir by key, for moving
// a single modgate's ledger into a shared Backend. A missing file holds
// none; a torn last line is ignored; any other malformed line, or two
// hashes for one key, is an error naming the line. It changes nothing.
func ReadDir(dir string) (map[string]Record, error) {
	name := filepath.Join(dir, FileName)
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	out := make(map[string]Record)
	complete := data[:bytes.LastIndexByte(data, '\n')+1]
	for i, line := range strings.Split(strings.TrimSuffix(string(complete), "\n"), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, rec, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("ledger: %s:%d: %w", name, i+1, err)
		}
		if prev, ok := out[k]; ok && prev.Hash != rec.hash {
			return nil, fmt.Errorf("ledger: %s:%d: %s recorded again with hash %s, but an earlier line records %s", name, i+1, k, rec.hash, prev.Hash)
		} else if ok {
			continue
		}
		out[k] = Record{Hash: rec.hash, At: rec.at}
	}
	return out, nil
}
