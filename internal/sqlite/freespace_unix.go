//go:build unix

package sqlite

import "syscall"

// freeSpace is the space an unprivileged process may still take on the
// file system of dir.
func freeSpace(dir string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true //nolint:gosec // G115: a block size is positive
}
