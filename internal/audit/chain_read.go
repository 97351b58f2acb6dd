package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
)

// VerifyChain is VerifyWith for a shared chain: it checks every row of c,
// in seq order, against the checkpoints stored in c (and opts.Checkpoints),
// exactly as VerifyWith checks files, and also that each row's seq, hash
// and replica columns say what its record says. A problem in a row is
// named by its seq and its replica ("replica h1:4242: seq 17: edited
// record: ..."). Report.Replicas lists the replicas whose records the
// chain holds.
func VerifyChain(ctx context.Context, c Chain, pub ed25519.PublicKey, opts VerifyOptions) (Report, error) {
	rep := Report{Dir: c.Name(), Chain: c.Name()}
	var lines [][]byte
	if err := c.Checkpoints(ctx, func(line []byte) error {
		lines = append(lines, bytes.Clone(line))
		return nil
	}); err != nil {
		return rep, fmt.Errorf("verifying audit log: reading the checkpoints of %s: %w", c.Name(), err)
	}
	replicas := make(map[string]bool)
	walk := func(visit visitFunc, add addFunc) error {
		err := c.Rows(ctx, func(row ChainRow) error {
			where := "replica " + row.Replica
			if row.Replica == "" {
				where = "row"
			}
			e, hashOK, err := decodeLine(row.Line)
			if err != nil {
				add(where, 0, row.Seq, ProblemMalformed, "%v", err)
				return nil
			}
			replicas[e.Replica] = true
			switch {
			case e.Seq != row.Seq:
				add(where, 0, row.Seq, ProblemEdited, "the row's seq column says %d, its record says %d", row.Seq, e.Seq)
			case e.Hash != row.Hash:
				add(where, 0, row.Seq, ProblemEdited, "the row's hash column does not match its record's hash")
			case e.Replica != row.Replica:
				add(where, 0, row.Seq, ProblemEdited, "the row's replica column says %q, its record says %q", row.Replica, e.Replica)
			}
			visit(location{file: where, hash: e.Hash}, e, hashOK)
			return nil
		})
		if err != nil {
			return fmt.Errorf("verifying audit log: reading %s: %w", c.Name(), err)
		}
		return nil
	}
	rep, err := verify(rep, lines, walk, pub, opts)
	for r := range replicas {
		if r != "" {
			rep.Replicas = append(rep.Replicas, r)
		}
	}
	slices.Sort(rep.Replicas)
	return rep, err
}

// QueryChain is Query for a shared chain: it calls fn, in chain order, for
// every record of c that f selects. It does not verify the chain.
func QueryChain(ctx context.Context, c Chain, f Filter, fn func(Record) error) error {
	err := c.Rows(ctx, func(row ChainRow) error {
		e, _, err := decodeLine(row.Line)
		if err != nil {
			return fmt.Errorf("querying audit log: %s seq %d: %w", c.Name(), row.Seq, err)
		}
		if !f.match(e.Record) {
			return nil
		}
		return fn(e.Record)
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}
