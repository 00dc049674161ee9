package dta

import (
	"net/http"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/ticket"
)

// TestTicketVariantKeepsNonce: a variant of a ticket's string (the same signature
// bytes with a non-zero trailing bit, or a line break) is refused, so whoever sees a
// ticket cannot send a variant to the DTAs first and have the genuine request refused
// as a reuse of its nonce.
func TestTicketVariantKeepsNonce(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	tk := d.ticket(ticket.KindClient, newID(t, "erin@example.com"))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tk[len(tk)-1])
	cut := strings.LastIndexByte(tk, '.') + 10
	for name, v := range map[string]string{
		"fail/trailing-bit": tk[:len(tk)-1] + string(alphabet[last^1]), // an Ed25519 signature's last character has 4 unused bits
		"fail/crlf":         tk[:cut] + "\r\n" + tk[cut:],
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, e := post(t, nd.url, "/v1/shares/client", "application/json", ticketBody(v)); code != http.StatusUnauthorized || e["code"] != "invalid_ticket" {
				t.Fatalf("got %d %v, want 401 invalid_ticket", code, e)
			}
		})
	}
	d.issue(nd, "/v1/shares/client", tk)
}
