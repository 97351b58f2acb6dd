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

// ReadFile returns the records of the ledger file in dir (what Open without
// a Backend keeps there) by key ("path version" or "path version/go.mod"),
// for copying them into a shared Backend. It only reads: a torn last line
// (an append a crash interrupted) is left out, not cut off. A missing file
// holds no records.
func ReadFile(dir string) (map[string]Record, error) {
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
		if prev, ok := out[k]; ok {
			if prev.Hash != rec.hash {
				return nil, fmt.Errorf("ledger: %s:%d: %s recorded again with hash %s, but an earlier line records %s", name, i+1, k, rec.hash, prev.Hash)
			}
			continue
		}
		out[k] = Record{Hash: rec.hash, At: rec.at}
	}
	return out, nil
}
