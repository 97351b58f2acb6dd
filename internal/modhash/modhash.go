// Package modhash computes the go command's "h1:" hash of a module zip
// (golang.org/x/mod/sumdb/dirhash.HashZip with dirhash.Hash1) with less
// garbage: dirhash copies each file through a new 32 KB buffer, which in a
// cold fill of a few hundred zips (tens of thousands of files) is a good
// part of what the garbage collector has to do. The result is the same
// hash, byte for byte, for every zip dirhash accepts, and the same errors
// where it refuses one (TestZipMatchesDirhash, FuzzZip).
package modhash

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
)

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Zip returns the h1: hash of the module zip file at path.
func Zip(path string) (string, error) {
	z, err := zip.OpenReader(path)
	if err != nil {
		return "", err
	}
	defer z.Close()
	return hashFiles(z.File)
}

// hashFiles hashes files as dirhash.HashZip does: sorted by name, a name
// that appears twice hashed twice as its last entry.
func hashFiles(zfiles []*zip.File) (string, error) {
	byName := make(map[string]*zip.File, len(zfiles))
	names := make([]string, 0, len(zfiles))
	for _, f := range zfiles {
		names = append(names, f.Name)
		byName[f.Name] = f
	}
	slices.Sort(names)

	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	h := sha256.New()
	hf := sha256.New()
	var sum [sha256.Size]byte
	var line []byte
	for _, name := range names {
		if strings.Contains(name, "\n") {
			return "", errors.New("dirhash: filenames with newlines are not supported")
		}
		r, err := byName[name].Open()
		if err != nil {
			return "", err
		}
		hf.Reset()
		_, err = io.CopyBuffer(hf, onlyReader{r}, *bp)
		r.Close()
		if err != nil {
			return "", err
		}
		line = hex.AppendEncode(line[:0], hf.Sum(sum[:0]))
		line = append(line, "  "...)
		line = append(line, name...)
		line = append(line, '\n')
		h.Write(line)
	}
	return "h1:" + base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// onlyReader hides any WriterTo of the file reader, so that CopyBuffer
// uses the pooled buffer.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }
