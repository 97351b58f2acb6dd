package sumdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/modgate/modgate/internal/upstream"
)

const (
	// fetchTimeout bounds one upstream fetch of a checksum database file.
	// The fetch is shared by every request waiting for the same file, so it
	// does not follow any one request's context.
	fetchTimeout = 30 * time.Second
	// maxBody bounds a checksum database answer. Real answers are small
	// (a full hash tile is 8 KiB, a data tile some tens of KiB); anything
	// bigger is not a checksum database.
	maxBody = 10 << 20
)

// fetchAll fetches the protocol path from source and returns the whole body.
//
// The error is classified with the upstream sentinels: it matches
// fs.ErrNotExist when the upstream does not have the file, upstream.ErrTimeout
// when it (or ctx) timed out, and upstream.ErrUnavailable for every other
// failure, including a body larger than maxBody.
func fetchAll(ctx context.Context, source upstream.Source, path string) ([]byte, error) {
	resp, err := source.Fetch(ctx, path)
	if err != nil {
		return nil, classifyFetch(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, classifyFetch(ctx, fmt.Errorf("reading %s from %s: %w", path, resp.Upstream, err))
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("reading %s from %s: %w: answer larger than %d bytes", path, resp.Upstream, upstream.ErrUnavailable, maxBody)
	}
	return data, nil
}

// classifyFetch makes sure err matches exactly one of fs.ErrNotExist,
// upstream.ErrTimeout or upstream.ErrUnavailable.
func classifyFetch(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, upstream.ErrTimeout), errors.Is(err, upstream.ErrUnavailable):
		return err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", upstream.ErrTimeout, err)
	default:
		return fmt.Errorf("%w: %w", upstream.ErrUnavailable, err)
	}
}
