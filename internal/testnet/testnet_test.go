package testnet

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// instance is a backend whose /readyz the test switches.
type instance struct {
	name  string
	ready atomic.Bool
	srv   *httptest.Server
}

func newInstance(t *testing.T, name string) *instance {
	in := &instance{name: name}
	in.ready.Store(true)
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" && !in.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, in.name)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

// TestReadyProxy: connections go only to the backends whose /readyz is 200, round
// robin; with none in rotation they are closed; one that leaves the rotation loses
// its connections, and one that comes back gets traffic again.
func TestReadyProxy(t *testing.T) {
	a, b := newInstance(t, "a"), newInstance(t, "b")
	p := NewReadyProxy(t, &http.Client{Timeout: time.Second}, 10*time.Millisecond, a.srv.URL, b.srv.URL)
	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") {
		t.Fatalf("proxy URL %q", p.URL)
	}
	// A fresh connection per request, so that each one is routed.
	fresh := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(c *http.Client) (string, error) {
		resp, err := c.Get(p.URL + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	seen := func(n int) map[string]int {
		t.Helper()
		out := map[string]int{}
		for range n {
			name, err := get(fresh)
			if err != nil {
				t.Fatal(err)
			}
			out[name]++
		}
		return out
	}
	await := func(what string, ok func([]BackendState) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(p.Backends()); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s: %+v", what, p.Backends())
			}
		}
	}

	if got := seen(4); got["a"] != 2 || got["b"] != 2 {
		t.Fatalf("both ready: %v, want round robin", got)
	}

	// b leaves the rotation: its kept-alive connection is closed, traffic goes to a.
	var kept *http.Client
	for name := ""; name != "b"; {
		kept = &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
		var err error
		if name, err = get(kept); err != nil {
			t.Fatal(err)
		}
	}
	b.ready.Store(false)
	await("b out of rotation", func(s []BackendState) bool { return !s[1].InRotation && s[1].Left == 1 && s[1].Current == 0 })
	if got := seen(4); got["a"] != 4 {
		t.Fatalf("b not ready: %v, want every request at a", got)
	}
	if name, err := get(kept); err != nil || name != "a" {
		t.Fatalf("the kept-alive client after b left: %q %v, want a new connection to a", name, err)
	}

	// None ready: connections are closed at once.
	a.ready.Store(false)
	await("none in rotation", func(s []BackendState) bool { return !s[0].InRotation })
	if name, err := get(fresh); err == nil {
		t.Fatalf("no backend ready, yet %q answered", name)
	}

	// b comes back by itself.
	b.ready.Store(true)
	await("b back", func(s []BackendState) bool { return s[1].InRotation })
	if got := seen(2); got["b"] != 2 {
		t.Fatalf("only b ready: %v", got)
	}
}

// TestRelay: a cut relay closes new connections and drops those it carried; restored,
// it carries new ones on the same address.
func TestRelay(t *testing.T) {
	in := newInstance(t, "target")
	r := NewRelay(t, strings.TrimPrefix(in.srv.URL, "http://"))
	c := &http.Client{Timeout: time.Second}
	get := func() error {
		resp, err := c.Get("http://" + r.Addr + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	r.Cut()
	if err := get(); err == nil {
		t.Fatal("a request went through the cut relay")
	}
	r.Restore()
	if err := get(); err != nil {
		t.Fatalf("after Restore: %v", err)
	}
}
