//go:build !unix

package cli

// lockHeld cannot probe bbolt's lock here: the database's own timeout reports it.
func lockHeld(string) (bool, error) { return false, nil }
