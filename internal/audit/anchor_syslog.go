//go:build !windows && !plan9

package audit

import (
	"context"
	"fmt"
	"log/syslog"
	"sync"
)

// A SyslogAnchor sends every checkpoint line to a syslog daemon (facility
// auth, severity info, tag "modgate-audit"), prefixed by "audit
// checkpoint ". `modgate audit verify --checkpoints` reads the lines as
// the daemon stored them: it ignores everything before the "{".
type SyslogAnchor struct {
	Network, Addr string // as ParseSyslogAddress returns them

	mu sync.Mutex
	w  *syslog.Writer // dialled on first use and after a failure
}

// NewSyslogAnchor returns an anchor for address (see ParseSyslogAddress).
// It does not connect yet.
func NewSyslogAnchor(address string) (*SyslogAnchor, error) {
	network, addr, err := ParseSyslogAddress(address)
	if err != nil {
		return nil, err
	}
	return &SyslogAnchor{Network: network, Addr: addr}, nil
}

// Send writes one syslog message. The context bounds the attempt only
// between steps: log/syslog has no cancellation of its own.
func (a *SyslogAnchor) Send(ctx context.Context, line []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.w == nil {
		w, err := syslog.Dial(a.Network, a.Addr, syslog.LOG_INFO|syslog.LOG_AUTH, "modgate-audit")
		if err != nil {
			return fmt.Errorf("connecting to syslog: %w", err)
		}
		a.w = w
	}
	if err := a.w.Info("audit checkpoint " + string(line)); err != nil {
		a.w.Close()
		a.w = nil
		return fmt.Errorf("sending to syslog: %w", err)
	}
	return nil
}

func (a *SyslogAnchor) String() string { return "syslog " + a.Network + "://" + a.Addr }
