package ledger

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestEmbeddedRPC: the embedded chain served over JSON-RPC on loopback is the chain the
// process uses (same chain ID, same contract code), and a busy address is an error,
// not a panic.
func TestEmbeddedRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e, err := NewEmbeddedRPC(100*time.Millisecond, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	contract, err := Deploy(ctx, e.Chain(), e.Key())
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctx, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := c.ChainID(ctx)
	if err != nil || id.Int64() != 1337 {
		t.Fatalf("chain ID over JSON-RPC: %v %v", id, err)
	}
	if code, err := c.CodeAt(ctx, contract, nil); err != nil || len(code) == 0 {
		t.Fatalf("the contract over JSON-RPC: %d bytes, %v", len(code), err)
	}

	if _, err := NewEmbeddedRPC(time.Second, addr); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("a second chain on %s: %v", addr, err)
	}
}
