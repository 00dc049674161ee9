// Package freeport listens on loopback ports that stay free for whoever released them.
//
// A port from the kernel (port 0) comes from its ephemeral range, which it also
// hands to every outgoing connection: a port picked that way and closed, to be
// listened on again later (by a service started afterwards, or by a relay put back),
// can be taken in between by any connection on the machine, and the later listen
// fails with "address already in use". Ports below that range are given to no one
// unasked; Listen draws from there.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
)

// next is the offset in Range of the next port Listen tries: a process starts at a
// random place and goes on from there, so it never hands out a port twice (until it
// has gone round the range) — a devnet stopped and restarted keeps its ports, and
// another devnet of the same process cannot have picked one of them meanwhile — and two
// processes meet only where their runs of ports overlap.
var next = struct {
	sync.Mutex
	off int
}{off: -1}

// Listen listens on 127.0.0.1 at the next port of Range that is free.
func Listen() (net.Listener, error) {
	lo, hi := Range()
	next.Lock()
	defer next.Unlock()
	if next.off < 0 {
		next.off = rand.IntN(hi - lo)
	}
	for range 200 {
		port := lo + next.off%(hi-lo)
		next.off = (next.off + 1) % (hi - lo)
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return l, nil
		}
	}
	return nil, errors.New("freeport: no free loopback port")
}

// Range is [lo, hi): the 12,768 ports below the start of Linux's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768 by default), or 20000 to 32767 where
// that file cannot be read.
func Range() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(b), &first, &last); err == nil && first > 2048 {
			hi = first
		}
	}
	return max(1024, hi-12768), hi
}
