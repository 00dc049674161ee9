package dta

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
)

// TestBadInput sends malformed requests; each gets its error code and the DTA keeps
// serving.
func TestBadInput(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	good := ticketBody(d.ticket(ticket.KindClient, newID(t, "erin@example.com")))
	cases := []struct {
		name, method, path, contentType string
		body                            []byte
		status                          int
		code                            string
	}{
		{"fail/truncated-json", "POST", "/v1/shares/client", "application/json", good[:len(good)/2], 400, "bad_json"},
		{"fail/garbage", "POST", "/v1/shares/client", "application/json", []byte("\x00\xff garbage"), 400, "bad_json"},
		{"fail/empty-body", "POST", "/v1/shares/client", "application/json", nil, 400, "bad_json"},
		{"fail/oversized", "POST", "/v1/shares/client", "application/json", append(append([]byte(`{"ticket":"`), bytes.Repeat([]byte("a"), 20000)...), `"}`...), 413, "body_too_large"},
		{"fail/unknown-field", "POST", "/v1/shares/client", "application/json", []byte(`{"ticket":"x","admin":true}`), 400, "bad_json"},
		{"fail/trailing-data", "POST", "/v1/shares/client", "application/json", append(append([]byte{}, good...), []byte(`{}`)...), 400, "bad_json"},
		{"fail/wrong-type", "POST", "/v1/shares/client", "application/json", []byte(`{"ticket":42}`), 400, "bad_json"},
		{"fail/text-plain", "POST", "/v1/shares/client", "text/plain", good, 415, "unsupported_media_type"},
		{"fail/form", "POST", "/v1/shares/client", "application/x-www-form-urlencoded", []byte("ticket=x"), 415, "unsupported_media_type"},
		{"fail/no-content-type", "POST", "/v1/shares/client", "", good, 415, "unsupported_media_type"},
		{"fail/get-on-post-route", "GET", "/v1/shares/client", "", nil, 405, "method_not_allowed"},
		{"fail/unknown-route", "GET", "/v1/master-share", "", nil, 404, "not_found"},
		{"fail/log-state", "GET", "/v1/log/.state/treeState", "", nil, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, nd.url+tc.path, bytes.NewReader(tc.body))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var e map[string]string
			json.Unmarshal(raw, &e)
			if resp.StatusCode != tc.status || (tc.code != "" && e["code"] != tc.code) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, raw, tc.status, tc.code)
			}
			if tc.code != "" && (resp.Header.Get("Content-Type") != "application/json" || e["message"] == "") {
				t.Fatalf("error is not JSON {code, message}: %q", raw)
			}
		})
	}
	// Still serving.
	d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, newID(t, "erin@example.com")))
}

func TestRateLimit(t *testing.T) {
	d := newDomainWithRate(t, 1)
	nd := d.dtas[0]
	var limited *http.Response
	for range 20 {
		resp, err := http.Get(nd.url + "/v1/record")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp
			break
		}
	}
	if limited == nil {
		t.Fatal("20 requests at once were not rate limited at 1/s")
	}
	if s, err := strconv.Atoi(limited.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", limited.Header.Get("Retry-After"))
	}
	// Health checks are not rate limited.
	if resp, err := http.Get(nd.url + "/livez"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("livez under rate limit: %v %v", resp, err)
	}
}

// metrics scrapes the DTA's metrics as the operations listener serves them.
func (nd *node) metrics(t testing.TB) string {
	t.Helper()
	rec := httptest.NewRecorder()
	nd.svc.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// newDomainWithRate is a one-DTA domain with a low rate limit.
func newDomainWithRate(t *testing.T, perSecond float64) *domain {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd)
	nd.rate = perSecond
	d.start(nd)
	return d
}

func TestHealthMetricsRecordLog(t *testing.T) {
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, newID(t, "frank@example.com")))
	get := func(path string) (int, string) {
		resp, err := http.Get(nd.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/livez"); code != 200 {
		t.Fatalf("livez %d", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	// The metrics are on the operations listener only, never on the public API.
	if code, body := get("/metrics"); code != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("public /metrics: %d %s, want 404 not_found", code, body)
	}
	if body := nd.metrics(t); !strings.Contains(body, `polyroot_dta_issuance_total{kind="client",result="ok"} 1`) ||
		!strings.Contains(body, `polyroot_dta_http_requests_total{route="/v1/shares/client",status="200"} 1`) {
		t.Fatalf("metrics:\n%s", body)
	}
	code, body := get("/v1/record")
	var rec struct{ Index uint32 }
	if code != 200 || json.Unmarshal([]byte(body), &rec) != nil || rec.Index != 1 {
		t.Fatalf("record %d %s", code, body)
	}
	// The log's checkpoint is served and verifies with the DTA's key.
	r, _ := d.bundle.Find(1)
	pub, _ := r.PublicKey()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body = get("/v1/log/checkpoint")
		if code == 200 {
			cp, err := translog.ParseCheckpoint([]byte(body), r.LogOrigin, pub)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size >= 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering the entry: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Readiness names what is missing and comes back by itself.
	logDir := filepath.Join(nd.dir, "log")
	if err := os.Rename(logDir, logDir+".away"); err != nil {
		t.Fatal(err)
	}
	// The directory is probed at most once a second (writableProbeEvery).
	readyzWithin := func(want int) (int, string) {
		deadline := time.Now().Add(3 * writableProbeEvery)
		for {
			code, body := get("/readyz")
			if code == want || time.Now().After(deadline) {
				return code, body
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	code, body = readyzWithin(503)
	if err := os.Rename(logDir+".away", logDir); err != nil {
		t.Fatal(err)
	}
	if code != 503 || !strings.Contains(body, `"not_ready"`) || !strings.Contains(body, "storage: the log directory is not writable") {
		t.Fatalf("readyz without a log directory: %d %s", code, body)
	}
	if code, body := readyzWithin(200); code != 200 {
		t.Fatalf("readyz once the log directory is back: %d %s", code, body)
	}
	nd.svc.storageFailed.Store(time.Now().UnixNano())
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "storage: writing an issuance failed at") {
		t.Fatalf("readyz after a failed append: %d %s", code, body)
	}
	nd.svc.storageFailed.Store(time.Now().Add(-storageFailureWindow).UnixNano())
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz once the failed append is %s old: %d %s", storageFailureWindow, code, body)
	}
	nd.svc.ready.Store(false)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "keys: not loaded, or the DTA is stopping") {
		t.Fatalf("readyz while stopping: %d %s", code, body)
	}
}

// FuzzIssueHandler posts arbitrary bodies to the real handler of a real DTA: no panic,
// only documented statuses, and every error is JSON {code, message}.
func FuzzIssueHandler(f *testing.F) {
	f.Add([]byte(`{"ticket":"a.b.c"}`))
	f.Add([]byte(`{"ticket":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"ticket":"eyJhbGciOiJFZERTQSJ9.e30.AAAA"}`))
	h := newDomain(f, 1, 3600).dtas[0].svc.Handler()
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 409: true, 413: true, 415: true, 429: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/shares/client", "/v1/shares/permit", "/v1/shares/server", "/v1/revocations"} {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if !allowed[rec.Code] {
				t.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
			}
			if rec.Code != 200 {
				var e map[string]string
				if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e["code"] == "" {
					t.Fatalf("%s: error body %q", path, rec.Body)
				}
			}
		}
	})
}

// TestSecretsStayInside runs a DTA with debug logging, makes good and bad requests of
// every kind, and checks that neither its log output, its responses, its errors nor its
// metrics contain the master share or the signing key, in any usual encoding.
func TestSecretsStayInside(t *testing.T) {
	var logs bytes.Buffer
	d := newDomain(t, 1, 3600)
	nd := d.dtas[0]
	d.stop(nd)
	d.logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d.start(nd)

	var seen bytes.Buffer
	id := newID(t, "heidi@example.com")
	bodies := map[string][]byte{
		"/v1/shares/client": ticketBody(d.ticket(ticket.KindClient, id)),
		"/v1/shares/permit": ticketBody(d.ticket(ticket.KindPermit, id, func(tk *ticket.Ticket) { tk.FirstSlot, tk.LastSlot = 1, 3 })),
		"/v1/shares/server": ticketBody(d.ticket(ticket.KindServer, id)),
		"/v1/revocations":   ticketBody(d.ticket(ticket.KindRevoke, id)),
	}
	for path, body := range bodies {
		for _, b := range [][]byte{body, body[:len(body)/2], []byte(`{"ticket":"x"}`)} {
			resp, err := http.Post(nd.url+path, "application/json", bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(&seen, resp.Body)
			resp.Body.Close()
		}
	}
	for _, path := range []string{"/v1/record", "/readyz", "/v1/log/checkpoint"} {
		resp, err := http.Get(nd.url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&seen, resp.Body)
		resp.Body.Close()
	}
	seen.WriteString(nd.metrics(t))
	seen.Write(logs.Bytes())
	for _, name := range []string{SecretMasterShare, SecretSigningKey} {
		secret, err := nd.keys.Get(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret),
			base64.RawURLEncoding.EncodeToString(secret)} {
			if bytes.Contains(seen.Bytes(), []byte(enc)) {
				t.Fatalf("the %s appears in the DTA's output", name)
			}
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no log output was captured; the test would prove nothing")
	}
}
