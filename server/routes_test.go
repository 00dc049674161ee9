package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAdminToken: the admin API takes exactly the admin token, as a bearer token.
func TestAdminToken(t *testing.T) {
	const token = "admin-token-0123456789"
	s := &Server{cfg: Config{AdminToken: token, Logger: slog.New(slog.DiscardHandler)}}
	h := s.admin(func(http.ResponseWriter, *http.Request) {})
	for _, tc := range []struct {
		name, authorization string
		want                int
	}{
		{"ok/exact", "Bearer " + token, http.StatusOK},
		{"ok/scheme-case", "bearer " + token, http.StatusOK},
		{"fail/wrong-same-length", "Bearer " + strings.ToUpper(token), http.StatusUnauthorized},
		{"fail/prefix", "Bearer " + token[:len(token)-1], http.StatusUnauthorized},
		{"fail/longer", "Bearer " + token + "0", http.StatusUnauthorized},
		{"fail/basic", "Basic " + token, http.StatusUnauthorized},
		{"fail/empty", "Bearer ", http.StatusUnauthorized},
		{"fail/none", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/admin/enrolments", nil)
			if tc.authorization != "" {
				r.Header.Set("Authorization", tc.authorization)
			}
			w := httptest.NewRecorder()
			h(w, r)
			if w.Code != tc.want || (tc.want != http.StatusOK && !strings.Contains(w.Body.String(), `"unauthorized"`)) {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.want)
			}
		})
	}
}

// TestAdminTokenLengthHidden: refusing a wrong admin token takes as long whether or not
// it has the admin token's length (a comparison of the tokens themselves stops at once
// when the lengths differ, and so tells the length). The token is a megabyte, so that
// comparing it takes long enough to measure; each duration is the least of several
// tries, which other work on the machine can only lengthen.
func TestAdminTokenLengthHidden(t *testing.T) {
	token := strings.Repeat("a", 1<<20)
	s := &Server{cfg: Config{AdminToken: token, Logger: slog.New(slog.DiscardHandler)}}
	h := s.admin(func(http.ResponseWriter, *http.Request) { t.Fatal("a wrong token was accepted") })
	refuse := func(tok string) time.Duration {
		r := httptest.NewRequest(http.MethodGet, "/v1/admin/enrolments", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		start := time.Now()
		h(w, r)
		d := time.Since(start)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", w.Code)
		}
		return d
	}
	sameLength, otherLength := strings.Repeat("b", len(token)), strings.Repeat("b", len(token)+1)
	least := [2]time.Duration{time.Hour, time.Hour}
	for range 20 {
		least[0] = min(least[0], refuse(sameLength))
		least[1] = min(least[1], refuse(otherLength))
	}
	if least[0] > 2*least[1] || least[1] > 2*least[0] {
		t.Fatalf("refusing a token of the admin token's length takes %v, of another length %v", least[0], least[1])
	}
}
