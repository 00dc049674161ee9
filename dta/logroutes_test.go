package dta

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/polyroot/polyroot/internal/openapitest"
)

// TestLogRoutesOwnRateLimit: the log's routes and the others have separate limits per
// client address; an auditor throttled on the log can still be told so in JSON with
// Retry-After, and exhausting one limit leaves the other whole. The answers are checked
// against openapi.yaml.
func TestLogRoutesOwnRateLimit(t *testing.T) {
	v := openapitest.NewValidator(t, openapitest.Load(t, openAPI))
	c := v.Client(nil)
	d := newDomain(t, 1, 0)
	nd := d.dtas[0]
	if c := nd.svc.cfg; c.LogRatePerSecond != DefaultLogRatePerSecond || c.LogRateBurst != DefaultLogRateBurst {
		t.Fatalf("log route limit %g/s burst %d by default, want %d/s burst %d", c.LogRatePerSecond, c.LogRateBurst,
			DefaultLogRatePerSecond, DefaultLogRateBurst)
	}
	d.stop(nd)
	d.start(nd, func(c *Config) {
		c.RatePerSecond, c.RateBurst = 0.01, 2
		c.LogRatePerSecond, c.LogRateBurst = 0.01, 5
	})
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := c.Get(nd.url + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			var e map[string]string
			if json.Unmarshal(raw, &e) != nil || e["code"] != "rate_limited" {
				t.Fatalf("%s: 429 %q", path, raw)
			}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("%s: 429 with Retry-After %q", path, resp.Header.Get("Retry-After"))
			}
		}
		return resp
	}
	for i := range 2 {
		if resp := get("/v1/record"); resp.StatusCode != http.StatusOK {
			t.Fatalf("record %d: %d", i, resp.StatusCode)
		}
	}
	if resp := get("/v1/record"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("record beyond the burst: %d, want 429", resp.StatusCode)
	}
	// The log's burst is whole.
	for i := range 5 {
		if resp := get("/v1/log/checkpoint"); resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("checkpoint %d: %d, Cache-Control %q", i, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	if resp := get("/v1/log/tile/0/000"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("log beyond its burst: %d, want 429", resp.StatusCode)
	}
	// Health checks are limited by neither.
	if resp := get("/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz: %d", resp.StatusCode)
	}
	v.RequireSeen("GET /v1/record 200", "GET /v1/record 429", "GET /v1/log/checkpoint 200", "GET /v1/log/tile/{level}/{index} 429")
}
