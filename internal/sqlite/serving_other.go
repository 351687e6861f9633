//go:build !unix

package sqlite

// lockFile does nothing where flock is missing: serve and rebuild are not
// kept apart there.
func lockFile(string, bool) (func() error, error) {
	return func() error { return nil }, nil
}
