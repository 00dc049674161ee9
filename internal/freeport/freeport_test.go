package freeport

import (
	"net"
	"testing"
)

// TestListen: ports come from Range, below the ephemeral range, and differ while held.
func TestListen(t *testing.T) {
	lo, hi := Range()
	if lo < 1024 || hi <= lo {
		t.Fatalf("range [%d, %d)", lo, hi)
	}
	seen := map[int]bool{}
	for range 32 {
		l, err := Listen()
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		port := l.Addr().(*net.TCPAddr).Port
		if port < lo || port >= hi || seen[port] {
			t.Fatalf("port %d: outside [%d, %d) or twice", port, lo, hi)
		}
		seen[port] = true
	}
}
