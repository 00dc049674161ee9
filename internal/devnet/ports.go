package devnet

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/polyroot/polyroot/internal/freeport"
)

// portPicker hands out loopback addresses that differ from each other and from those
// already taken: it keeps each picked port's listener open until close, so that the
// system cannot give the same free port twice.
type portPicker struct {
	taken map[string]bool
	held  []net.Listener
}

// pick returns a loopback address on port, or on a free port when port is 0: one
// from below the kernel's ephemeral range (package freeport), since the devnet
// releases its ports between picking them and starting its services (a test run saw
// "DTA 1: metrics listen: bind: address already in use" when they came from port 0).
func (p *portPicker) pick(port int) (string, error) {
	for range 100 {
		var l net.Listener
		var err error
		if port == 0 {
			l, err = freeport.Listen()
		} else {
			l, err = net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		}
		if err != nil {
			return "", err
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
