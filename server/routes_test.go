package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
