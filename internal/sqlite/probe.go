package sqlite

import (
	"context"
	"fmt"

	"github.com/kycd/kycd"
)

// ProbeWrite commits a one-page write to the event log's file and changes
// nothing: it fails as an append would when the file cannot take a write
// (a full disk, a read-only file system), and succeeds once it can again.
// Errors are EUNAVAILABLE.
func (s *Store) ProbeWrite(ctx context.Context) (err error) {
	if s.closed.Load() {
		return kycd.Errorf(kycd.EUNAVAILABLE, "store is closed")
	}
	// user_version is a field of the file's header that kycd does not use;
	// setting it to the value it has still writes and syncs the header page
	// through the WAL, on the log's one write connection.
	conn, err := s.lw.Conn(ctx)
	if err != nil {
		return probeFailed(s, err)
	}
	// Closing hands the connection back to the pool; it fails only when
	// the connection is already gone, which the probe then reports too.
	defer func() {
		if cerr := conn.Close(); cerr != nil && err == nil {
			err = probeFailed(s, cerr)
		}
	}()
	var v int64
	if err := conn.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return probeFailed(s, err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		return probeFailed(s, err)
	}
	return nil
}

func probeFailed(s *Store, err error) error {
	return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "the event log cannot be written", Err: fmt.Errorf("sqlite: write probe: %w", translate(s, err))}
}
