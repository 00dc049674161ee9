package httpx

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRequestIDInLogs: a line logged with the request's context carries the ID the
// response names in X-Request-Id, once, also when the line names it itself.
func TestRequestIDInLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(RequestIDHandler(slog.NewJSONHandler(&buf, nil))).With("service", "test")
	h := WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "issued", "kind", "client")
		log.InfoContext(r.Context(), "explicit", "request_id", RequestID(r))
		log.Info("no context")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	id := rec.Header().Get("X-Request-Id")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if id == "" || len(lines) != 3 {
		t.Fatalf("X-Request-Id %q, log:\n%s", id, buf.String())
	}
	for i, want := range []string{id, id, ""} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		got, _ := m["request_id"].(string)
		if got != want || strings.Count(lines[i], `"request_id"`) > 1 || m["service"] != "test" {
			t.Errorf("line %d: request_id %q, want %q: %s", i, got, want, lines[i])
		}
	}
}
