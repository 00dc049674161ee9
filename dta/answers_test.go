package dta

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
)

// postRaw posts a ticket to a DTA and returns the status and the body as sent.
func postRaw(t *testing.T, url, path, tk string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url+path, "application/json", bytes.NewReader(ticketBody(tk)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestRetryServedFromMemory: a retry of a completed ticket is answered with the
// response kept from its first answer, byte for byte, without building it again (no
// promise is signed: issue returns the very value kept); after a restart the first
// retry builds it from the record, the same bytes, and keeps it. The checks still
// apply to an answer kept in memory: another ticket with the nonce is refused, and
// so is a retry once the identity is revoked.
func TestRetryServedFromMemory(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	id := newID(t, "judy@example.com")
	tk := d.ticket(ticket.KindPermit, id, func(t *ticket.Ticket) { t.FirstSlot, t.LastSlot = 10, 19 })
	nonce := func() string {
		parsed, err := ticket.Verify(tk, d.bundle.RegistrarPublicKey(), testDomain, ticket.KindPermit, d.now)
		if err != nil {
			t.Fatal(err)
		}
		return parsed.Nonce
	}()
	// issue as the handler calls it, so that the value it returns can be compared.
	issueDirect := func() *wire.DTAResponse {
		t.Helper()
		k := nd.svc.keys.Load()
		parsed, err := nd.svc.checkTicket(k.bundle, tk, ticket.KindPermit)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := nd.svc.issue(context.Background(), k, parsed, tk)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	code, first := postRaw(t, nd.url, "/v1/shares/permit", tk)
	if code != http.StatusOK {
		t.Fatalf("first request: %d %s", code, first)
	}
	kept := nd.svc.answers.get(nonce)
	if kept == nil || len(kept.resp.Shares) != 10 {
		t.Fatal("the first answer was not kept")
	}
	for _, tc := range []struct {
		name    string
		restart bool
	}{{"retry", false}, {"retry after a restart", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.restart {
				d.stop(nd)
				d.start(nd)
				if nd.svc.answers.get(nonce) != nil {
					t.Fatal("an answer survived the restart")
				}
			}
			code, again := postRaw(t, nd.url, "/v1/shares/permit", tk)
			if code != http.StatusOK || !bytes.Equal(again, first) {
				t.Fatalf("retry: %d, %d bytes, want the first answer's %d bytes", code, len(again), len(first))
			}
			a := nd.svc.answers.get(nonce)
			if a == nil {
				t.Fatal("the retry's answer is not kept")
			}
			if got := issueDirect(); got != a.resp {
				t.Fatal("a retry built its answer again instead of using the one kept")
			}
		})
	}

	reuse := d.ticket(ticket.KindPermit, newID(t, "mallory@example.com"), func(t *ticket.Ticket) { t.Nonce = nonce })
	if code, _, e := post(t, nd.url, "/v1/shares/permit", "application/json", ticketBody(reuse)); code != http.StatusConflict || e["code"] != "nonce_reused" {
		t.Fatalf("another ticket with the nonce of a kept answer: %d %v", code, e)
	}
	d.issue(nd, "/v1/revocations", d.ticket(ticket.KindRevoke, id))
	if code, _, e := post(t, nd.url, "/v1/shares/permit", "application/json", ticketBody(tk)); code != http.StatusForbidden || e["code"] != "revoked" {
		t.Fatalf("a retry with its answer kept, once the identity is revoked: %d %v", code, e)
	}
}

// TestAnswerCacheBounded: the kept answers stay within their bound, the least
// recently used going first; an answer larger than the bound is not kept.
func TestAnswerCacheBounded(t *testing.T) {
	resp := func(shares int) *wire.DTAResponse {
		r := &wire.DTAResponse{DTA: 1}
		for range shares {
			r.Shares = append(r.Shares, wire.DTAShare{Entry: make([]byte, 100), Sealed: make([]byte, 200),
				Promise: &wire.Promise{LeafHash: make([]byte, 32), Signature: make([]byte, 64)}})
		}
		return r
	}
	one := answerSize("n0", resp(1))
	c := newAnswerCache(3 * one)
	for i := range 3 {
		c.add(fmt.Sprint("n", i), "t", resp(1))
	}
	c.get("n0") // n1 is now the least recently used
	c.add("n3", "t", resp(1))
	for _, tc := range []struct {
		nonce string
		kept  bool
	}{{"n0", true}, {"n1", false}, {"n2", true}, {"n3", true}} {
		if kept := c.get(tc.nonce) != nil; kept != tc.kept {
			t.Errorf("%s kept %v, want %v", tc.nonce, kept, tc.kept)
		}
	}
	c.add("n2", "t", resp(1)) // again: counted once
	if c.size != 3*one || c.order.Len() != 3 || len(c.byKey) != 3 {
		t.Fatalf("size %d (want %d), %d answers in order, %d by key", c.size, 3*one, c.order.Len(), len(c.byKey))
	}
	c.add("big", "t", resp(4))
	if c.get("big") != nil || c.size != 3*one {
		t.Fatalf("an answer larger than the bound was kept (size %d)", c.size)
	}
}
