package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadinessFollowsDTAs: /readyz turns 503 naming a stopped DTA, the DTA's metric
// drops to 0, and both come back by themselves when the DTA restarts.
func TestReadinessFollowsDTAs(t *testing.T) {
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.DTAProbeInterval = 50 * time.Millisecond })
	get := func(path string) (int, string) {
		resp, err := h.http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	await := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
		}
	}
	var code int
	var body string
	await("ready with every DTA up", func() bool { code, body = get("/readyz"); return code == http.StatusOK })

	down := e.d.DTAs[1]
	down.Stop()
	await("503 with DTA 2 stopped", func() bool { code, body = get("/readyz"); return code == http.StatusServiceUnavailable })
	want := "dtas: 2 of 3 DTAs ready, 3 needed: DTA 2 (" + down.URL + ") unreachable"
	if !strings.Contains(body, `"code":"not_ready"`) || !strings.Contains(body, want) {
		t.Fatalf("readyz with DTA 2 stopped: %s, want %q", body, want)
	}
	metrics := h.metrics(t)
	for _, line := range []string{`polyroot_server_dta_up{dta="1"} 1`, `polyroot_server_dta_up{dta="2"} 0`, `polyroot_server_dta_up{dta="3"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}

	down.Start()
	await("ready again after DTA 2 restarted", func() bool { code, body = get("/readyz"); return code == http.StatusOK })
	if metrics = h.metrics(t); !strings.Contains(metrics, `polyroot_server_dta_up{dta="2"} 1`) {
		t.Error("DTA 2 still down in the metrics")
	}
	if !strings.Contains(logBuf.String(), "DTA ready again") {
		t.Error("no log line when DTA 2 came back")
	}
}
