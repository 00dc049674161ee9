package servercmd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/server"
)

// readyWriter hands the URL of Serve's ready line to a channel.
type readyWriter struct {
	once sync.Once
	url  chan string
}

var readyLine = regexp.MustCompile(`ready at (\S+) `)

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Contains(l.b.Bytes(), []byte(s))
}

func (w *readyWriter) Write(p []byte) (int, error) {
	if m := readyLine.FindSubmatch(p); m != nil {
		w.once.Do(func() { w.url <- string(m[1]) })
	}
	return len(p), nil
}

// TestServeReloadsBundleOnSIGHUP: after a resharing, the registrar's successor bundle
// written over the bundle file reaches the running server on SIGHUP (GET /v1/bundle
// serves it); a bundle that is no successor (the old one again) is refused on the next
// SIGHUP and the successor stays.
func TestServeReloadsBundleOnSIGHUP(t *testing.T) {
	d := testdomain.New(t, "api.example.com", 2, 3600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sQ, err := server.Provision(ctx, d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ks, err := keystore.OpenFile(filepath.Join(dir, "keys"), []byte("servercmd test"), keystore.WithScryptWorkFactor(10))
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Put(ctx, server.SecretServerKey, sQ.Bytes()); err != nil {
		t.Fatal(err)
	}
	bundlePath := d.WriteBundle(dir)
	old := d.BundleFile
	rw := &readyWriter{url: make(chan string, 1)}
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, Config{Listen: "127.0.0.1:0", BundleFile: bundlePath, RegistrarKey: d.Registrar, Keys: ks,
			AdminToken: "admin-token-0123456789abcdef", DataDir: t.TempDir(), Ready: rw, ShutdownTimeout: 5 * time.Second,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
	}()
	var url string
	select {
	case url = <-rw.url:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not get ready")
	}
	served := func() []byte {
		resp, err := http.Get(url + "/v1/bundle")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	// hup writes file over the bundle file, sends SIGHUP and waits for a reload to
	// have run (the served bundle is want, and stays so).
	hup := func(file, want []byte) {
		t.Helper()
		if err := os.WriteFile(bundlePath, file, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !bytes.Equal(served(), want) {
			if time.Now().After(deadline) {
				t.Fatal("GET /v1/bundle does not serve the expected bundle after SIGHUP")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !bytes.Equal(served(), old) {
		t.Fatal("the server does not serve its bundle")
	}
	d.Reshare()
	hup(d.BundleFile, d.BundleFile)
	// The old bundle is no successor of the one in use: refused, the successor stays.
	hup(old, d.BundleFile)
	for deadline := time.Now().Add(10 * time.Second); !logs.contains("not a successor"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no refused reload in the log")
		}
	}
	if !logs.contains("trust bundle replaced by its successor") || !bytes.Equal(served(), d.BundleFile) {
		t.Fatal("a SIGHUP with the old bundle replaced the successor")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
