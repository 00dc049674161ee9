//go:build unix

package devnet

import (
	"os"
	"syscall"
)

// ownedByOther reports whether fi's file belongs to another user than this process's.
func ownedByOther(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Getuid()
}
