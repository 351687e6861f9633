//go:build !unix

package main

// openFileLimit is unknown here: maxConnections takes its maximum.
func openFileLimit() int { return 0 }
