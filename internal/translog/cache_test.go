package translog

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHandlerCacheControl: full tiles and entry bundles are immutable; the checkpoint
// and partial tiles are revalidated.
func TestHandlerCacheControl(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	l := open(t, t.TempDir(), key)
	defer l.Close(context.Background())
	leaves := make([][]byte, 257)
	for i := range leaves {
		leaves[i] = leaf(i)
	}
	if _, err := l.AppendAll(context.Background(), leaves); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, l, pub, 257)
	srv := httptest.NewServer(http.StripPrefix("/v1/log", l.Handler()))
	defer srv.Close()
	for path, want := range map[string]string{
		"/v1/log/checkpoint":           CacheRevalidate,
		"/v1/log/tile/0/000":           CacheImmutable,
		"/v1/log/tile/entries/000":     CacheImmutable,
		"/v1/log/tile/0/001.p/1":       CacheRevalidate,
		"/v1/log/tile/entries/001.p/1": CacheRevalidate,
		"/v1/log/tile/1/000.p/1":       CacheRevalidate,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != want {
			t.Errorf("%s: %d, Cache-Control %q; want 200, %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"), want)
		}
	}
}
