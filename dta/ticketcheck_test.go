package dta

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/pairing"
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

// resign is tk with its claims changed by mutate and signed again with the registrar's
// key, without ticket.Sign's checks: what the registrar's key could sign.
func (d *domain) resign(tk string, mutate func(claims map[string]any)) string {
	d.t.Helper()
	parts := strings.Split(tk, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		d.t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		d.t.Fatal(err)
	}
	mutate(claims)
	if raw, err = json.Marshal(claims); err != nil {
		d.t.Fatal(err)
	}
	in := parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(d.registrar, []byte(in)))
}

// TestTicketFields: tickets the registrar's key signed with fields it never writes
// are refused: a subject on a server ticket (one too long made the DTA panic), an
// idhash in upper case (the revocation lookup, by string, missed it), another issuer.
func TestTicketFields(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	id := newID(t, "frank@example.com")
	d.issue(nd, "/v1/revocations", d.ticket(ticket.KindRevoke, id))
	idHex := hex.EncodeToString(id[:])
	set := func(key string, v any) func(map[string]any) { return func(c map[string]any) { c[key] = v } }
	cases := []struct {
		name, path, ticket string
	}{
		{"fail/server-long-subject", "/v1/shares/server", d.resign(d.ticket(ticket.KindServer, id), set("sub", strings.Repeat("ab", 33)))},
		{"fail/server-subject", "/v1/shares/server", d.resign(d.ticket(ticket.KindServer, id), set("sub", idHex))},
		{"fail/revoked-upper-case-idhash", "/v1/shares/client", d.resign(d.ticket(ticket.KindClient, id), set("sub", strings.ToUpper(idHex)))},
		{"fail/revoked-upper-case-idhash-permit", "/v1/shares/permit", d.resign(d.ticket(ticket.KindPermit, id), set("sub", strings.ToUpper(idHex)))},
		{"fail/other-issuer", "/v1/shares/client", d.resign(d.ticket(ticket.KindClient, newID(t, "grace@example.com")), set("iss", "someone-else"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, e := post(t, nd.url, tc.path, "application/json", ticketBody(tc.ticket))
			if code != http.StatusUnauthorized || e["code"] != "invalid_ticket" {
				t.Fatalf("got %d %v, want 401 invalid_ticket", code, e)
			}
		})
	}
}

// TestIDHashAnyInput: idHash decodes a valid idhash, and gives the zero IDHash for
// anything else rather than a panic.
func TestIDHashAnyInput(t *testing.T) {
	want := newID(t, "heidi@example.com")
	if got := idHash(&ticket.Ticket{IDHash: hex.EncodeToString(want[:])}); got != want {
		t.Fatalf("got %x, want %x", got, want)
	}
	for name, in := range map[string]string{
		"fail/empty":     "",
		"fail/odd":       "a",
		"fail/not-hex":   strings.Repeat("zz", 32),
		"fail/one-more":  strings.Repeat("ab", 33),
		"fail/long":      strings.Repeat("0", 1000),
		"fail/one-short": strings.Repeat("ab", 31),
	} {
		t.Run(name, func(t *testing.T) {
			if got := idHash(&ticket.Ticket{IDHash: in}); got != (pairing.IDHash{}) {
				t.Fatalf("got %x", got)
			}
		})
	}
}
