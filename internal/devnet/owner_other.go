//go:build !unix

package devnet

import "os"

// ownedByOther cannot tell owners apart on this system.
func ownedByOther(os.FileInfo) bool { return false }
