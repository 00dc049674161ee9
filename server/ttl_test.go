package server

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestEnrolmentTTLBounds: ttl_seconds beyond ten years (which used to overflow into an
// expiry in the past, with a 200) is refused with a 400 that says the range.
func TestEnrolmentTTLBounds(t *testing.T) {
	h := newEnv(t, 3600).start(t, t.TempDir(), false)
	cases := []struct {
		name   string
		ttl    any
		status int
		msg    string
	}{
		{"ok/one-day", 86400, 200, ""},
		{"ok/ten-years", maxTTLSeconds, 200, ""},
		{"fail/ten-years-and-a-second", maxTTLSeconds + 1, 400, "ttl_seconds must be 0 (a permanent identity) to 315360000 (ten years)"},
		{"fail/duration-overflow", int64(9223372037), 400, "ttl_seconds must be 0"},
		{"fail/max-int64", int64(9223372036854775807), 400, "ttl_seconds must be 0"},
		{"fail/negative", -1, 400, "ttl_seconds must be 0"},
		{"fail/beyond-int64", json.Number("9223372036854775808"), 400, `ttl_seconds\" must be a whole number`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := map[string]any{"id": "temp" + string(rune('a'+i)), "ttl_seconds": tc.ttl}
			var created wire.EnrolmentCreated
			st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, req, &created)
			if st != tc.status {
				t.Fatalf("got %d %s, want %d", st, body, tc.status)
			}
			if tc.msg != "" && !strings.Contains(string(body), tc.msg) {
				t.Fatalf("answer %s does not say %q", body, tc.msg)
			}
			if st == 200 {
				e, err := h.srv.store.enrolment(mustIDHash(t, created.IDHash))
				if err != nil || e.NotAfter == nil || !e.NotAfter.After(time.Now()) {
					t.Fatalf("enrolment expires at %v (%v), want in the future", e.NotAfter, err)
				}
			}
		})
	}
	// An ID with a control character (a NUL, which PostgreSQL's text refuses) is refused
	// by every store alike.
	for _, id := range []string{"a\x00b", "a\nb"} {
		if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: id}, nil); st != 400 ||
			!strings.Contains(string(body), "without control characters") {
			t.Fatalf("id %q: %d %s, want 400", id, st, body)
		}
	}
}

func mustIDHash(t *testing.T, s string) pairing.IDHash {
	t.Helper()
	var id pairing.IDHash
	if b, err := hex.DecodeString(s); err != nil || len(b) != len(id) {
		t.Fatalf("idhash %q", s)
	} else {
		copy(id[:], b)
	}
	return id
}
