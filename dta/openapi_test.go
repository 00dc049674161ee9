package dta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/polyroot/polyroot/internal/openapitest"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestOpenAPIRoutes compares the route table with openapi.yaml both ways: a route the
// document lacks fails, and so does a documented operation that no route serves.
func TestOpenAPIRoutes(t *testing.T) {
	doc := openapitest.Load(t, openAPI)
	d := newDomain(t, 1, 3600)
	openapitest.CheckRoutes(t, d.dtas[0].svc.routes(), doc)
}

// TestOpenAPIResponses runs a DTA and checks real answers of every kind, successes and
// errors, against the responses openapi.yaml documents for them; and that the DTA
// serves the committed document.
func TestOpenAPIResponses(t *testing.T) {
	doc := openapitest.Load(t, openAPI)
	committed, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	v := openapitest.NewValidator(t, doc)
	c := v.Client(nil)
	send := func(method, path, contentType string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, nd.url+path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	expect := func(method, path, contentType string, body []byte, status int) []byte {
		t.Helper()
		got, b := send(method, path, contentType, body)
		if got != status {
			t.Fatalf("%s %s: got %d %s, want %d", method, path, got, b, status)
		}
		return b
	}
	// post sends a ticket; on success it also checks each log entry in the answer
	// against the Entry schema, which the response schema names but does not apply to
	// the base64 content.
	entry := doc.Components.Schemas["Entry"].Value
	post := func(path, tk string, status int) {
		t.Helper()
		body := expect("POST", path, "application/json", ticketBody(tk), status)
		if status != 200 {
			return
		}
		var resp wire.DTAResponse
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatal(err)
		}
		for _, sh := range resp.Shares {
			var e any
			if err := json.Unmarshal(sh.Entry, &e); err != nil {
				t.Fatal(err)
			}
			if err := entry.VisitJSON(e, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s: the log entry %s does not match the Entry schema: %v", path, sh.Entry, err)
			}
		}
	}

	if served := expect("GET", "/v1/openapi.yaml", "", nil, 200); !bytes.Equal(served, committed) {
		t.Error("GET /v1/openapi.yaml is not the committed openapi.yaml")
	}

	id := newID(t, "olga@example.com")
	slot := pairing.Domain{Name: testDomain, PermitPeriod: 3600}.Slot(d.now)
	client := d.ticket(ticket.KindClient, id)
	post("/v1/shares/client", client, 200)
	post("/v1/shares/permit", d.ticket(ticket.KindPermit, id, func(tk *ticket.Ticket) { tk.FirstSlot, tk.LastSlot = slot, slot+2 }), 200)
	post("/v1/shares/server", d.ticket(ticket.KindServer, id), 200)
	post("/v1/revocations", d.ticket(ticket.KindRevoke, id), 200)
	post("/v1/shares/client", d.ticket(ticket.KindClient, id), 403) // revoked
	post("/v1/shares/client", d.ticket(ticket.KindClient, id, func(tk *ticket.Ticket) { tk.Domain = "other.example" }), 403)
	post("/v1/shares/client", d.ticket(ticket.KindClient, id, func(tk *ticket.Ticket) { tk.NotAfter = d.now.Add(-time.Minute) }), 401)
	post("/v1/shares/client", "not.a-ticket.at-all", 401)
	post("/v1/shares/permit", client, 400) // wrong kind
	post("/v1/shares/server", d.ticket(ticket.KindServer, id, func(tk *ticket.Ticket) { tk.SealKey = strings.Repeat("00", 32) }), 400)
	other := newID(t, "pat@example.com")
	reused := d.ticket(ticket.KindClient, other, func(tk *ticket.Ticket) { tk.Nonce = strings.Repeat("ab", 16) })
	post("/v1/shares/client", reused, 200)
	post("/v1/shares/client", reused, 200) // a retry
	post("/v1/shares/client", d.ticket(ticket.KindClient, other, func(tk *ticket.Ticket) {
		tk.Nonce, tk.NotAfter = strings.Repeat("ab", 16), d.now.Add(2*time.Hour)
	}), 409)
	expect("POST", "/v1/shares/client", "application/json", []byte(`{"ticket":`), 400)
	expect("POST", "/v1/shares/client", "application/json", bytes.Repeat([]byte(" "), 17<<10), 413)
	expect("POST", "/v1/revocations", "text/plain", ticketBody(client), 415)
	expect("GET", "/v1/record", "", nil, 200)
	for _, p := range []struct {
		path, method string
		status       int
	}{{"/v1/shares/client", "POST", 204}, {"/v1/shares/permit", "POST", 204}, {"/v1/shares/client", "PUT", 403}} {
		req, _ := http.NewRequest("OPTIONS", nd.url+p.path, nil)
		req.Header.Set("Origin", "https://auth.example")
		req.Header.Set("Access-Control-Request-Method", p.method)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != p.status {
			t.Fatalf("OPTIONS %s for %s: %d, want %d", p.path, p.method, resp.StatusCode, p.status)
		}
	}

	// The log: wait for a checkpoint that covers the entries, then fetch its tiles.
	rec, _ := d.bundle.Find(nd.index)
	key, _ := rec.PublicKey()
	var size uint64
	for deadline := time.Now().Add(10 * time.Second); size < 7; {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers the 7 entries (size %d)", size)
		}
		time.Sleep(50 * time.Millisecond)
		cp, err := translog.ParseCheckpoint(expect("GET", "/v1/log/checkpoint", "", nil, 200), rec.LogOrigin, key)
		if err != nil {
			t.Fatal(err)
		}
		size = cp.Size
	}
	expect("HEAD", "/v1/log/checkpoint", "", nil, 200)
	expect("GET", fmt.Sprintf("/v1/log/tile/0/000.p/%d", size), "", nil, 200)
	expect("GET", fmt.Sprintf("/v1/log/tile/entries/000.p/%d", size), "", nil, 200)
	expect("GET", "/v1/log/tile/0/000", "", nil, 404)
	expect("GET", "/v1/log/tile/entries/000", "", nil, 404)

	expect("GET", "/livez", "", nil, 200)
	expect("GET", "/readyz", "", nil, 200)
	nd.svc.ready.Store(false)
	expect("GET", "/readyz", "", nil, 503)
	nd.svc.ready.Store(true)

	// The rate limit, on a restart with a low one.
	d.stop(nd)
	nd.rate = 1
	d.start(nd)
	limited := false
	for i := 0; i < 20 && !limited; i++ {
		got, _ := send("GET", "/v1/record", "", nil)
		limited = got == http.StatusTooManyRequests
	}
	if !limited {
		t.Fatal("20 requests at once were not rate limited at 1/s")
	}

	v.RequireSeen(
		"POST /v1/shares/client 200", "POST /v1/shares/permit 200", "POST /v1/shares/server 200", "POST /v1/revocations 200",
		"POST /v1/shares/client 400", "POST /v1/shares/client 401", "POST /v1/shares/client 403", "POST /v1/shares/client 409",
		"POST /v1/shares/client 413", "POST /v1/revocations 415", "POST /v1/shares/permit 400", "POST /v1/shares/server 400",
		"GET /v1/record 200", "GET /v1/record 429",
		"OPTIONS /v1/shares/client 204", "OPTIONS /v1/shares/permit 204", "OPTIONS /v1/shares/client 403", "GET /v1/openapi.yaml 200",
		"GET /v1/log/checkpoint 200", "GET /v1/log/tile/{level}/{index}.p/{width} 200",
		"GET /v1/log/tile/entries/{index}.p/{width} 200", "GET /v1/log/tile/{level}/{index} 404",
		"GET /v1/log/tile/entries/{index} 404",
		"GET /livez 200", "GET /readyz 200", "GET /readyz 503",
	)
}
