package sqlite

import (
	"context"

	"github.com/kycd/kycd"
)

var _ kycd.Serving = (*Store)(nil)

// ServingLockSuffix names the file beside the database that serve holds a
// shared lock on, and kycd rebuild an exclusive one. The operating system
// drops the lock when the process ends, however it ends.
const ServingLockSuffix = ".serving.lock"

// HoldServing takes the shared lock on the database's serving lock file.
func (s *Store) HoldServing(context.Context) (func() error, error) {
	return lockFile(s.path+ServingLockSuffix, false)
}

// ExcludeServing takes the exclusive lock on the database's serving lock
// file.
func (s *Store) ExcludeServing(context.Context) (func() error, error) {
	return lockFile(s.path+ServingLockSuffix, true)
}

// ExcludeServingAt takes the exclusive lock of the database at path
// without opening it, for a command that replaces its files (kycd
// restore).
func ExcludeServingAt(path string) (func() error, error) {
	return lockFile(path+ServingLockSuffix, true)
}
