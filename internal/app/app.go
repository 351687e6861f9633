// Package app is kycd's application layer: every operator action and every
// read, written once and shared by the API (internal/server), the CLI
// (cmd/kycd) and, through the API, the dashboard, so no front end can do
// what another forbids. A use case opens a store transaction (kycd.Tx),
// reads rows, applies the rule the domain (package kycd) writes once,
// writes, and records its audit entry in the same transaction. Which role
// may call a use case is the front end's to decide (internal/server's
// routes, the CLI's local access); who called it is the Actor it is given.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kycd/kycd"
)

// Service holds kycd's use cases over one store.
type Service struct {
	Store  kycd.Store
	Now    func() time.Time // the clock; time.Now when nil
	Logger *slog.Logger     // slog.Default() when nil

	// Sinks are the routes of the sinks kycd serve is configured with;
	// the CLI reads them from the store's registered sinks.
	Sinks []kycd.SinkRoute
	// Wake tells the local dispatcher that deliveries of these sinks
	// became due; nil where no dispatcher runs (the CLI).
	Wake func(sinks ...string)
}

// Actor is who asks for a use case, as the audit trail names them: a
// token's name from the API, cli:USER from the CLI, with the address the
// request came from ("" for the CLI).
type Actor struct {
	Name   string
	Remote string
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC()
	}
	return s.Now().UTC()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Service) wake(sinks ...string) {
	if s.Wake != nil && len(sinks) > 0 {
		s.Wake(sinks...)
	}
}

// entry is the audit entry of action on target by a, ended by err: ok
// with detail, or failed with err's code and client-safe message.
func (s *Service) entry(a Actor, action, target string, err error, detail string) *kycd.AuditEntry {
	e := &kycd.AuditEntry{At: s.now(), Actor: kycd.Escaped(a.Name), Action: action, Target: target,
		Remote: a.Remote, Outcome: kycd.AuditOK, Detail: detail}
	if err != nil {
		// The message may quote what the request named: Escaped, like
		// the target (kycd.AuditTarget).
		e.Outcome, e.Detail = kycd.AuditFailed, kycd.Escaped(kycd.ErrorCode(err)+": "+kycd.ErrorMessage(err))
	}
	return e
}

// Audited runs change in one transaction and records, in that same
// transaction, that a did action to target (detail, which holds no
// personal data, says more). When change fails, the transaction is rolled
// back and the failure is recorded on its own, even if ctx is done: what
// was tried was tried. change returns the detail of a success. The error
// returned is change's, or the commit's.
func (s *Service) Audited(ctx context.Context, a Actor, action, target string, change func(tx kycd.Tx) (detail string, err error)) error {
	err := s.inTx(ctx, func(tx kycd.Tx) error {
		detail, err := change(tx)
		if err != nil {
			return err
		}
		return tx.AddAudit(ctx, s.entry(a, action, target, nil, detail))
	})
	if err != nil {
		if aerr := s.Store.AddAudit(context.WithoutCancel(ctx), s.entry(a, action, target, err, "")); aerr != nil {
			s.logger().ErrorContext(ctx, "could not record an audit entry", "action", action, "target", target, "err", aerr)
		}
	}
	return err
}

// AuditedRead records that a read action of target, then returns read's
// answer. The entry is written before the answer is returned and its
// failure fails the read: personal data is never shown unless its read is
// recorded: EUNAVAILABLE when it cannot be.
func AuditedRead[T any](ctx context.Context, s *Service, a Actor, action, target string, read func(ctx context.Context) (T, error)) (T, error) {
	v, err := read(ctx)
	if aerr := s.Store.AddAudit(context.WithoutCancel(ctx), s.entry(a, action, target, err, "")); aerr != nil {
		s.logger().ErrorContext(ctx, "could not record an audit entry", "action", action, "target", target, "err", aerr)
		var zero T
		if err != nil {
			return zero, err
		}
		return zero, &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "the read could not be recorded in the audit trail; try again",
			Err: fmt.Errorf("record %s of %s: %w", action, target, aerr)}
	}
	return v, err
}

// inTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise.
func (s *Service) inTx(ctx context.Context, fn func(tx kycd.Tx) error) (err error) {
	tx, err := s.Store.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := tx.Rollback(context.WithoutCancel(ctx)); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
