package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"

	"github.com/modgate/modgate/internal/storage"
)

// Size limits for what an upstream may send. Zips and go.mod files use the
// go command's own limits; .info, list and latest are small JSON or text.
const (
	maxInfoSize  = 1 << 20
	maxListSize  = 16 << 20
	maxGoModSize = zip.MaxGoMod
	maxZipSize   = zip.MaxZipFile
)

// A prefetcher is a Checker that can start looking a version up before the
// file to check has arrived.
type prefetcher interface {
	Prefetch(path, version string)
}

// fill fetches one canonical versioned file from the upstream, verifies it
// and stores it, and returns the name of the upstream that sent it. It runs
// inside a flight, once per key at a time. A filled go.mod queues its
// requirements for prefetch, reqDepth levels deep (0: none; prefetch.go).
func (m *Mirror) fill(ctx context.Context, path, version, key string, reqDepth int) (src string, err error) {
	kind := artifact(key)
	if o := m.cfg.Observer; o != nil {
		o.FillStarted(kind)
		defer func() { o.FillDone(kind, err) }()
	}
	start := time.Now()
	resp, err := m.source(path).Fetch(ctx, key)
	if err != nil {
		return "", fmt.Errorf("fetching %s@%s %s: %w", path, version, kind, err)
	}
	defer resp.Body.Close()
	if p, ok := m.cfg.Checker.(prefetcher); ok {
		// The checksum database lookup overlaps the download of the body
		// instead of following it. A .info fill starts it too: the go
		// command asks for the .mod right after. It starts only once the
		// upstream has the version: the go command probes every prefix of
		// a package path (example.com/m/sub/pkg@v1.0.0.info), and a lookup
		// for each path that is not a module would only cost the database
		// round trips.
		p.Prefetch(path, version)
	}

	var size int64
	switch kind {
	case "zip":
		size, err = m.fillZip(ctx, path, version, key, resp.Body)
	case "mod":
		size, err = m.fillMod(ctx, path, version, key, resp.Body, reqDepth)
	case "info":
		size, err = m.fillInfo(ctx, path, version, key, resp.Body)
	default:
		return "", fmt.Errorf("fill: unexpected key %q", key)
	}
	if err != nil {
		// Not logged here: the request's access-log line carries the error,
		// and a checksum mismatch is also logged once, as a security event,
		// by the Checker.
		if errors.Is(err, ErrVerification) {
			if o := m.cfg.Observer; o != nil {
				o.VerificationFailed(kind)
			}
		}
		return "", fmt.Errorf("%w (from upstream %s)", err, resp.Upstream)
	}
	m.log.Info("stored", "module", path, "version", version, "file", kind, "upstream", resp.Upstream, "bytes", size, "duration", time.Since(start))
	return resp.Upstream, nil
}

// readSmall reads at most limit bytes of r, failing with ErrVerification when
// there are more.
func readSmall(r io.Reader, limit int64, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s from upstream: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrVerification, what, limit)
	}
	return data, nil
}

func (m *Mirror) fillInfo(ctx context.Context, path, version, key string, body io.ReadCloser) (int64, error) {
	what := path + "@" + version + " .info"
	data, err := readSmall(body, maxInfoSize, what)
	body.Close() // gives back the fill slot before storing
	if err != nil {
		return 0, err
	}
	info, err := parseInfo(data)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrVerification, what, err)
	}
	if info.Version != version {
		return 0, fmt.Errorf("%w: %s: upstream answered for version %q", ErrVerification, what, info.Version)
	}
	return int64(len(data)), m.cfg.Store.Put(ctx, key, bytes.NewReader(data))
}

func (m *Mirror) fillMod(ctx context.Context, path, version, key string, body io.ReadCloser, reqDepth int) (int64, error) {
	data, err := readSmall(body, maxGoModSize, path+"@"+version+" go.mod")
	// The fill slot goes back now, not after the checksum database
	// lookup: a slot bounds upstream downloads, and a lookup that the
	// database answers slowly must not hold one.
	body.Close()
	if err != nil {
		return 0, err
	}
	if m.cfg.Checker != nil {
		if err := m.cfg.Checker.CheckMod(ctx, path, version, data); err != nil {
			return 0, verificationError(err)
		}
	}
	if err := m.cfg.Store.Put(ctx, key, bytes.NewReader(data)); err != nil {
		return 0, err
	}
	if reqDepth > 0 {
		m.queueRequirements(data, reqDepth-1)
	}
	m.queueInfo(path, version, key)
	return int64(len(data)), nil
}

// fillZip streams the zip to a scratch file (never to memory: zips reach
// 500 MB), checks its layout and hash there, and only then moves it into the
// store.
func (m *Mirror) fillZip(ctx context.Context, path, version, key string, body io.ReadCloser) (int64, error) {
	tmp, err := os.CreateTemp(m.cfg.ScratchDir, "fill-*.zip")
	if err != nil {
		return 0, fmt.Errorf("creating scratch file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op once PutFile moved it
	n, err := io.Copy(tmp, io.LimitReader(body, maxZipSize+1))
	body.Close() // the slot goes back before hashing
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("downloading %s@%s zip: %w", path, version, err)
	}
	if n > maxZipSize {
		return 0, fmt.Errorf("%w: %s@%s zip is larger than %d bytes", ErrVerification, path, version, int64(maxZipSize))
	}
	if _, err := zip.CheckZip(module.Version{Path: path, Version: version}, tmpName); err != nil {
		return 0, fmt.Errorf("%w: %s@%s: upstream sent an invalid module zip: %v", ErrVerification, path, version, err)
	}
	if m.cfg.Checker != nil {
		if err := m.cfg.Checker.CheckZip(ctx, path, version, tmpName); err != nil {
			return 0, verificationError(err)
		}
	}
	if fp, ok := m.cfg.Store.(storage.FilePutter); ok {
		return n, fp.PutFile(ctx, key, tmpName)
	}
	f, err := os.Open(tmpName)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return n, m.cfg.Store.Put(ctx, key, f)
}

// verificationError classifies a Checker error: a database that is down or
// slow keeps its upstream class (502/504, retried later); anything else (a
// hash mismatch, a version the database does not know) is a failed
// verification.
func verificationError(err error) error {
	if isUpstreamFailure(err) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrVerification, err)
}

// info is the JSON of a .info file and of @latest.
type info struct {
	Version string
	Time    time.Time
}

func parseInfo(data []byte) (info, error) {
	var in info
	if err := json.Unmarshal(data, &in); err != nil {
		return info{}, fmt.Errorf("invalid JSON: %v", err)
	}
	if in.Version == "" {
		return info{}, errors.New("no Version field")
	}
	return in, nil
}
