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
)

// Listen listens on 127.0.0.1 at a port drawn from Range, trying others while the
// drawn ones are in use.
func Listen() (net.Listener, error) {
	lo, hi := Range()
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo+rand.IntN(hi-lo)))
		if err == nil {
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
