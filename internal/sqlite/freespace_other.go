//go:build !unix

package sqlite

// freeSpace is not known here: the main file keeps its checkpoint budget.
func freeSpace(string) (uint64, bool) { return 0, false }
