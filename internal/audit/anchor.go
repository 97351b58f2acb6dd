package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"
)

// An Anchor keeps a copy of every checkpoint outside the log directory, so
// that someone who can rewrite the directory (and perhaps sign with the key
// kept there) cannot also rewrite the copy. `modgate audit verify
// --checkpoints FILE` checks the log against such a copy.
//
// Send delivers one checkpoints-file line (a JSON object, without "\n").
// It must give up when ctx ends. Send is called from one goroutine at a
// time.
type Anchor interface {
	Send(ctx context.Context, line []byte) error
	String() string
}

// Limits of anchor delivery.
const (
	anchorQueueLen       = 64 // checkpoints waiting for one anchor
	DefaultAnchorTimeout = 5 * time.Second
)

// A FileAnchor appends every checkpoint line to a file, typically on
// another mount than the data directory. The file has the format of the
// checkpoints file.
type FileAnchor struct{ Path string }

// Send appends line to the file and syncs it.
func (a FileAnchor) Send(ctx context.Context, line []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return appendLine(a.Path, line)
}

func (a FileAnchor) String() string { return "file " + a.Path }

// ParseSyslogAddress parses a syslog anchor address: udp://HOST:PORT,
// tcp://HOST:PORT or unix:///PATH (a datagram socket such as /dev/log).
// It returns the network and address for log/syslog.
func ParseSyslogAddress(s string) (network, addr string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("%q is not an address: %v", s, err)
	}
	switch u.Scheme {
	case "udp", "tcp":
		if u.Host == "" || u.Port() == "" || u.Path != "" {
			return "", "", fmt.Errorf("%q: want %s://HOST:PORT", s, u.Scheme)
		}
		return u.Scheme, u.Host, nil
	case "unix":
		if u.Host != "" || u.Path == "" {
			return "", "", fmt.Errorf("%q: want unix:///PATH", s)
		}
		return "unixgram", u.Path, nil
	}
	return "", "", fmt.Errorf("%q: scheme %q not supported (want udp, tcp or unix)", s, u.Scheme)
}

// anchorQueue delivers checkpoint lines to one anchor in the background,
// so that a slow anchor holds up neither the writer nor the other anchors.
type anchorQueue struct {
	anchor  Anchor
	timeout time.Duration
	log     *slog.Logger
	onError func(string, error)
	ch      chan []byte
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	failing bool // in a failure episode; guarded by mu
	mu      sync.Mutex
}

// anchorQueues is the set of queues of a Log.
type anchorQueues []*anchorQueue

func startAnchors(anchors []Anchor, timeout time.Duration, log *slog.Logger, onError func(string, error)) anchorQueues {
	var qs anchorQueues
	for _, a := range anchors {
		ctx, cancel := context.WithCancel(context.Background())
		q := &anchorQueue{
			anchor:  a,
			timeout: timeout,
			log:     log,
			onError: onError,
			ch:      make(chan []byte, anchorQueueLen),
			ctx:     ctx,
			cancel:  cancel,
			done:    make(chan struct{}),
		}
		go q.run()
		qs = append(qs, q)
	}
	return qs
}

// errAnchorQueueFull is the error for a checkpoint that found a queue full.
var errAnchorQueueFull = errors.New("the anchor's queue is full (the anchor is slow or hanging)")

// send queues line for every anchor without waiting; an anchor whose
// queue is full loses the copy, reported.
func (qs anchorQueues) send(line []byte) {
	for _, q := range qs {
		select {
		case q.ch <- line:
		default:
			q.failed(errAnchorQueueFull)
		}
	}
}

// close delivers what is queued, waiting at most the timeout for all the
// queues together, then cancels the rest and returns without waiting: an
// anchor stuck in a system call must not hold up shutdown.
func (qs anchorQueues) close() {
	for _, q := range qs {
		close(q.ch)
	}
	if len(qs) == 0 {
		return
	}
	deadline := time.NewTimer(qs[0].timeout)
	defer deadline.Stop()
	for _, q := range qs {
		select {
		case <-q.done:
		case <-deadline.C:
			for _, q := range qs {
				q.cancel()
			}
			return
		}
	}
	for _, q := range qs {
		q.cancel()
	}
}

func (q *anchorQueue) run() {
	defer close(q.done)
	for line := range q.ch {
		ctx, cancel := context.WithTimeout(q.ctx, q.timeout)
		err := q.anchor.Send(ctx, line)
		cancel()
		if err != nil {
			q.failed(err)
			continue
		}
		q.mu.Lock()
		was := q.failing
		q.failing = false
		q.mu.Unlock()
		if was {
			q.log.Info("audit checkpoint anchor works again", "anchor", q.anchor.String())
		}
	}
}

// failed reports a checkpoint the anchor did not receive: logged at Error
// once per failure episode, every time to onError.
func (q *anchorQueue) failed(err error) {
	q.mu.Lock()
	first := !q.failing
	q.failing = true
	q.mu.Unlock()
	if first {
		q.log.Error("audit checkpoint not copied to its anchor", "anchor", q.anchor.String(), "err", err)
	}
	if q.onError != nil {
		q.onError(q.anchor.String(), err)
	}
}
