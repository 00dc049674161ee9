package devnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
)

// portPicker hands out loopback addresses that differ from each other and from those
// already taken: it keeps each picked port's listener open until close, so that the
// system cannot give the same free port twice.
type portPicker struct {
	taken map[string]bool
	held  []net.Listener
}

// pick returns a loopback address on port, or on a free port when port is 0.
//
// A free port is drawn from below the kernel's ephemeral range (freePortRange), not
// asked of the kernel with port 0: the devnet releases its ports between picking
// them and starting its services, and a port of the ephemeral range can be taken in
// that moment by any outgoing connection on the machine (a test run saw "DTA 1:
// metrics listen: bind: address already in use" so). Below that range only a
// listener that names the port can take it.
func (p *portPicker) pick(port int) (string, error) {
	lo, hi := freePortRange()
	for range 200 {
		try := port
		if port == 0 {
			try = lo + rand.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(try))
		if err != nil {
			if port != 0 {
				return "", err
			}
			continue // in use: draw another
		}
		p.held = append(p.held, l)
		if a := l.Addr().String(); !p.taken[a] {
			p.taken[a] = true
			return a, nil
		}
		if port != 0 {
			return "", fmt.Errorf("devnet: port %d is already used by this devnet", port)
		}
	}
	return "", errors.New("devnet: no free loopback port")
}

// freePortRange is the range [lo, hi) of ports the devnet picks free ones from: the
// 12,768 ports below the start of Linux's ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, 32768 by default), or 20000 to 32767
// where that file cannot be read.
func freePortRange() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(b), &first, &last); err == nil && first > 2048 {
			hi = first
		}
	}
	return max(1024, hi-12768), hi
}

// hold checks that addr, one of this devnet's, is free, and keeps it until close.
func (p *portPicker) hold(addr, what string) error {
	p.taken[addr] = true
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("devnet: port %d (%s, kept in devnet.json since the devnet's first start) is not free (%w): "+
			"is this devnet already running? Stop what uses the port, or start a new devnet in another --dir "+
			"(with another --base-port)", portOf("tcp://"+addr), what, cause(err))
	}
	p.held = append(p.held, l)
	return nil
}

func (p *portPicker) close() {
	for _, l := range p.held {
		l.Close()
	}
}
