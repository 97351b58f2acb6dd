package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Channels of the notifications replicas send each other (LISTEN/NOTIFY).
// The payload names what changed; an empty payload, which Listen also
// delivers after its connection was lost, means "anything may have
// changed".
const (
	// ChannelTokens: a token was created or revoked (payload: its id).
	ChannelTokens = "modgate_tokens"
	// ChannelPolicy: a replica reloaded the policy.
	ChannelPolicy = "modgate_policy"
	// ChannelWebhook: a webhook asked to refresh a repository (payload:
	// the module path prefix it covers).
	ChannelWebhook = "modgate_webhook"
	// ChannelVulnDB: a replica stored a newer vulnerability database.
	ChannelVulnDB = "modgate_vulndb"
)

// Notify sends payload on channel to every replica listening, this one
// included. It is delivered when the surrounding work has committed.
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	_, err := db.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return wrap("notifying "+channel, err)
}

// notify is Notify where a lost notification only delays the other
// replicas until their next periodic check.
func (db *DB) notify(ctx context.Context, channel, payload string) {
	if err := db.Notify(ctx, channel, payload); err != nil {
		db.log.Warn("notification not sent", "channel", channel, "err", err)
	}
}

// Listen calls handle for every notification on channels until ctx ends.
// It holds one connection of its own. When that connection is lost it
// reconnects (waiting up to retryMax between attempts) and, once
// listening again, calls handle(channel, "") for every channel, since
// notifications sent meanwhile are lost: the receiver re-reads everything.
// handle runs on Listen's goroutine, one call at a time.
func (db *DB) Listen(ctx context.Context, channels []string, handle func(channel, payload string)) {
	const retryMin, retryMax = 100 * time.Millisecond, 5 * time.Second
	wait := retryMin
	first := true
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, channels, func() {
			wait = retryMin
			if !first {
				db.log.Info("listening for notifications again")
				for _, ch := range channels {
					handle(ch, "")
				}
			}
			first = false
		}, handle)
		if ctx.Err() != nil {
			return
		}
		db.log.Warn("notification connection lost; replicas' changes are seen at the next periodic check until it is back", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// listenOnce listens on one connection until it fails.
func (db *DB) listenOnce(ctx context.Context, channels []string, ready func(), handle func(channel, payload string)) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return wrap("connecting to PostgreSQL", err)
	}
	// The connection carries LISTEN state: never give it back to the pool.
	defer destroy(conn)
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, `LISTEN "`+ch+`"`); err != nil {
			return wrap("listening on "+ch, err)
		}
	}
	ready()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			return wrap("waiting for notifications", err)
		}
		handle(n.Channel, n.Payload)
	}
}

func destroy(conn *pgxpool.Conn) {
	conn.Conn().Close(context.Background())
	conn.Release()
}
