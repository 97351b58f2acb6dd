package policy

import (
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
)

// AgesExport is what an ages file holds: when each module was first
// watched, and the facts of every version, by module.
type AgesExport struct {
	Watched  map[string]time.Time
	Versions map[string]map[string]VersionAge
}

// ReadAgesDir reads the ages file in dir ({data_dir}/policy), for moving a
// single modgate's first-seen times into a shared AgeStore. A missing file
// holds nothing (and is not created); a torn last record is cut off, as
// at every start.
func ReadAgesDir(dir string) (AgesExport, error) {
	out := AgesExport{Watched: map[string]time.Time{}, Versions: map[string]map[string]VersionAge{}}
	if _, err := os.Stat(filepath.Join(dir, agesFile)); errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	a, err := OpenAges(dir, PublishInfo, nil)
	if err != nil {
		return AgesExport{}, err
	}
	defer a.Close()
	a.mu.Lock()
	defer a.mu.Unlock()
	for m := range maps.Keys(a.watched) {
		out.Watched[m] = time.Time{} // when does not matter: only that it is watched
	}
	for k, f := range a.versions {
		m, v, ok := strings.Cut(k, "@")
		if !ok {
			continue
		}
		if out.Versions[m] == nil {
			out.Versions[m] = map[string]VersionAge{}
		}
		out.Versions[m][v] = VersionAge{Listed: f.listed, FirstSeen: f.firstSeen, FirstRequest: f.firstRequest, Info: f.info}
	}
	return out, nil
}

// ReadLicenseDir returns every licence result under dir (the detector's
// directory, {data_dir}/policy/licenses), for moving them into a shared
// LicenseStore. Files that do not parse are skipped: a scan redoes them.
func ReadLicenseDir(dir string) (map[module.Version]License, error) {
	out := make(map[module.Version]License)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == dir {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		escPath, file, ok := strings.Cut(filepath.ToSlash(rel), "/@v/")
		escVersion, isResult := strings.CutSuffix(file, ".license.json")
		if !ok || !isResult {
			return nil
		}
		path, err1 := module.UnescapePath(escPath)
		version, err2 := module.UnescapeVersion(escVersion)
		if err1 != nil || err2 != nil {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var lic License
		if json.Unmarshal(data, &lic) != nil {
			return nil
		}
		out[module.Version{Path: path, Version: version}] = lic
		return nil
	})
	return out, err
}
