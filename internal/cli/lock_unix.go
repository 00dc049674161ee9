//go:build unix

package cli

import (
	"errors"
	"os"
	"syscall"
)

// lockHeld reports whether another open file holds the exclusive lock that bbolt
// takes on its database (flock): a DTA's state.db, a server's server.db. The lock is
// taken and let go at once; a missing file is not held.
func lockHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
