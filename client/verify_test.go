package client

import (
	"errors"
	"testing"

	"github.com/polyroot/polyroot/internal/wire"
)

func TestIssuanceReceipts(t *testing.T) {
	e := newEnv(t)
	if _, _, err := IssuanceReceipts(e.dir); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("before enrolment: %v, want ErrNotEnrolled", err)
	}
	e.enroll(t, "alice@example.com", []byte("4921"))
	b, receipts, err := IssuanceReceipts(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Domain != e.d.Name || len(receipts) == 0 {
		t.Fatalf("bundle %q, %d receipts", b.Domain, len(receipts))
	}
	clients := map[uint32]int{}
	for _, r := range receipts {
		rec := b.DTAs[r.DTA-1]
		pub, err := rec.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if r.Promise.Origin != rec.LogOrigin || r.Promise.Verify(pub, r.Entry) != nil {
			t.Fatalf("receipt %+v does not verify with DTA %d's key", r, r.DTA)
		}
		if e, err := wire.ParseEntry(r.Entry); err != nil || e.DTA != r.DTA || e.Kind != r.Kind {
			t.Fatalf("receipt entry %+v, %v", e, err)
		}
		if r.Kind == wire.KindClient {
			clients[r.DTA]++
		}
	}
	if len(clients) != len(b.DTAs) {
		t.Fatalf("client-share receipts from %d DTAs, want %d", len(clients), len(b.DTAs))
	}
}
