//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/kycd/kycd"
)

// lockFile takes an flock on path, creating the file, without waiting:
// ECONFLICT when a conflicting lock is held. flock locks belong to the open
// file, so two opens in one process conflict as two processes do.
func lockFile(path string, exclusive bool) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // G304: beside the database the operator named
	if err != nil {
		return nil, fmt.Errorf("sqlite: serving lock: %w", err)
	}
	how := syscall.LOCK_SH
	if exclusive {
		how = syscall.LOCK_EX
	}
	if err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, kycd.Errorf(kycd.ECONFLICT, "sqlite: %s is locked by another process", path)
		}
		return nil, fmt.Errorf("sqlite: serving lock %s: %w", path, err)
	}
	return f.Close, nil
}
