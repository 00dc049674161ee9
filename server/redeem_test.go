package server

import (
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
)

// TestRedeemAgain: the same redemption sent again (its answer lost to a crash or the
// network) gets the same answer, tickets included; a redemption for any other key is
// refused, and so is the same one once the identity is revoked or the answer's tickets
// have expired, when the pruner deletes the used code. A code not yet used stays.
func TestRedeemAgain(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newEnv(t, 3600).start(t, t.TempDir(), false, func(c *Config) { c.Now = clock })
	create := func(id string) wire.EnrolmentCreated {
		t.Helper()
		var created wire.EnrolmentCreated
		if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: id}, &created); st != 200 {
			t.Fatalf("create %s: %d %s", id, st, body)
		}
		return created
	}
	redeem := func(req *wire.RedeemRequest, status int) *wire.EnrolPackage {
		t.Helper()
		var pkg wire.EnrolPackage
		st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", req, &pkg)
		if st != status || (st == http.StatusNotFound && !strings.Contains(string(body), "unknown_code")) {
			t.Fatalf("redeem: %d %s, want %d", st, body, status)
		}
		return &pkg
	}

	carol, dave, erin := create("carol"), create("dave"), create("erin")
	req := h.redeemRequest(t, carol.Code)
	first := redeem(req, 200)
	if again := redeem(req, 200); !reflect.DeepEqual(first, again) || first.ClientTicket == "" || first.PermitTicket == "" {
		t.Fatalf("the same redemption again: another answer:\n%+v\n%+v", first, again)
	}
	redeem(h.redeemRequest(t, carol.Code), 404)

	daveReq := h.redeemRequest(t, dave.Code)
	redeem(daveReq, 200)
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: dave.IDHash}, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	redeem(daveReq, 404)

	// After the tickets expire: refused, and the pruner deletes the used codes only.
	mu.Lock()
	now = now.Add(h.srv.cfg.TicketTTL)
	mu.Unlock()
	redeem(req, 404)
	if n, err := h.srv.store.pruneCodes(clock()); err != nil || n != 2 {
		t.Fatalf("pruned %d codes (%v), want the 2 used ones", n, err)
	}
	redeem(h.redeemRequest(t, erin.Code), 200)
}
