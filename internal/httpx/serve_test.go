package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeGracefulShutdown: once Serve's context is cancelled it accepts no new
// connection, lets the request in flight finish with its answer, and returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		w.Write([]byte("finished"))
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ServeOptions{Listen: "127.0.0.1:0", Handler: h, ShutdownTimeout: 10 * time.Second,
			Ready: func(u string) { urls <- u }})
	}()
	url := <-urls
	type answer struct {
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{string(b), err}
	}()
	<-entered
	cancel()
	addr := strings.TrimPrefix(url, "http://")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break // the listener is closed while the request is still in flight
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5 s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) before the request in flight finished", err)
	default:
	}
	close(release)
	if a := <-answered; a.err != nil || a.body != "finished" {
		t.Fatalf("the request in flight got %q, %v", a.body, a.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestServeMetricsListener: the metrics are served on the operations listener only,
// at GET /metrics; the public listener's handler never sees /metrics routed to them,
// and both listeners close at shutdown.
func TestServeMetricsListener(t *testing.T) {
	public := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("polyroot_test 1\n")) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls, metricsURLs := make(chan string, 1), make(chan string, 1)
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ServeOptions{Listen: "127.0.0.1:0", Handler: public, MetricsListen: "127.0.0.1:0", Metrics: metrics,
			MetricsReady: func(u string) { metricsURLs <- u }, Ready: func(u string) { urls <- u }})
	}()
	var url, murl string
	select {
	case murl = <-metricsURLs:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	}
	url = <-urls
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	base, ok := strings.CutSuffix(murl, MetricsPath)
	if !ok || base == url {
		t.Fatalf("metrics URL %s, API URL %s", murl, url)
	}
	if code, body := get(murl); code != 200 || body != "polyroot_test 1\n" {
		t.Fatalf("GET %s: %d %q", murl, code, body)
	}
	if code, _ := get(url + MetricsPath); code != 404 {
		t.Fatalf("GET /metrics on the public listener: %d, want 404", code)
	}
	if code, _ := get(base + "/readyz"); code != 404 {
		t.Fatalf("the operations listener serves /readyz: %d", code)
	}
	if resp, err := http.Post(murl, "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /metrics: %v %v", resp, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for _, u := range []string{url, base} {
		if c, err := net.Dial("tcp", strings.TrimPrefix(u, "http://")); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after shutdown", u)
		}
	}

	// A metrics address without a handler, or one that is taken, is refused.
	if err := Serve(context.Background(), ServeOptions{Listen: "127.0.0.1:0", Handler: public, MetricsListen: "127.0.0.1:0"}); err == nil {
		t.Error("an operations listener without a metrics handler was accepted")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = Serve(context.Background(), ServeOptions{Listen: "127.0.0.1:0", Handler: public, MetricsListen: l.Addr().String(), Metrics: metrics})
	if err == nil || !strings.Contains(err.Error(), "metrics listen") {
		t.Errorf("a taken metrics address: %v", err)
	}
}

// TestServeConnectionLimit: past MaxConnections, a new connection waits until one of
// the open ones closes: idle connections cannot take the process's file descriptors.
func TestServeConnectionLimit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	go Serve(ctx, ServeOptions{Listen: "127.0.0.1:0", MaxConnections: 2,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }),
		Ready:   func(u string) { urls <- u }})
	url := <-urls
	addr := strings.TrimPrefix(url, "http://")
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a third connection was served while two were open (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	idle[0].Close()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connection was not served after another closed")
	}
}

// TestDefaultMaxConnections: the bound leaves a quarter of the open-file limit to the
// process, besides what the admin and operations listeners may hold, within 64 and
// 65,536.
func TestDefaultMaxConnections(t *testing.T) {
	limit, ok := openFileLimit()
	if !ok {
		if got := DefaultMaxConnections(); got != 4096 {
			t.Fatalf("DefaultMaxConnections = %d with no known limit, want 4096", got)
		}
		return
	}
	got := DefaultMaxConnections()
	if want := int(min(max(int64(limit/4*3)-2*maxOperatorConnections, 64), 65536)); got != want || got < 64 || got > 65536 {
		t.Fatalf("DefaultMaxConnections = %d with RLIMIT_NOFILE %d, want %d", got, limit, want)
	}
	if limit >= 1024 && uint64(got+2*maxOperatorConnections) > limit*3/4 {
		t.Fatalf("DefaultMaxConnections = %d: with the operator listeners past 3/4 of %d", got, limit)
	}
}

// TestServerErrorLogSampled: net/http's own error lines (one per failed TLS handshake,
// which anyone can cause) reach the log at most serverErrorBurst times a minute; the
// first line of the next minute counts those left out.
func TestServerErrorLogSampled(t *testing.T) {
	var buf bytes.Buffer
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	el := &serverErrorLog{log: slog.New(slog.NewJSONHandler(&buf, nil)), now: clock.now}
	l := stdlog.New(el, "", 0)
	for i := range 1000 {
		l.Printf("http: TLS handshake error from 192.0.2.1:%d: EOF", i)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != serverErrorBurst {
		t.Fatalf("%d lines for 1000 errors", n)
	}
	clock.add(time.Minute)
	buf.Reset()
	l.Print("http: TLS handshake error from 192.0.2.2:1: " + strings.Repeat("x", 2000))
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["unlogged_before"] != float64(1000-serverErrorBurst) || m["level"] != "WARN" || len(m["msg"].(string)) > 520 {
		t.Fatalf("next minute's line: %s", buf.Bytes())
	}
}
