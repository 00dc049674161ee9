//go:build !unix

package httpx

// openFileLimit is unknown here: DefaultMaxConnections falls back to a fixed bound.
func openFileLimit() (uint64, bool) { return 0, false }
