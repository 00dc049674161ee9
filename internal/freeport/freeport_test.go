package freeport

import (
	"net"
	"testing"
)

// TestListen: ports come from Range, below the ephemeral range, and a process is not
// given a port again after it released it (a stopped devnet keeps its ports).
func TestListen(t *testing.T) {
	lo, hi := Range()
	if lo < 1024 || hi <= lo {
		t.Fatalf("range [%d, %d)", lo, hi)
	}
	seen := map[int]bool{}
	for round := range 2 {
		var ls []net.Listener
		for range 32 {
			l, err := Listen()
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
			port := l.Addr().(*net.TCPAddr).Port
			if port < lo || port >= hi || seen[port] {
				t.Fatalf("round %d: port %d: outside [%d, %d) or given twice", round, port, lo, hi)
			}
			seen[port] = true
		}
		for _, l := range ls {
			l.Close() // released: still not handed out again in the next round
		}
	}
}
