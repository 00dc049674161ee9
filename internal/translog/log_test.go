package translog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/klog/v2"

	"golang.org/x/mod/sumdb/note"
)

const origin = "polyroot/api.example.com/dta-1"

func open(t *testing.T, dir string, key ed25519.PrivateKey) *Log {
	t.Helper()
	l, err := Open(context.Background(), dir, origin, key, Options{CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMain(m *testing.M) {
	silenceTessera()
	os.Exit(m.Run())
}

func leaf(i int) []byte { return []byte(fmt.Sprintf("leaf %d", i)) }

// waitCheckpoint waits until a published checkpoint covers size entries.
func waitCheckpoint(t *testing.T, l *Log, pub ed25519.PublicKey, size uint64) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		raw, err := l.Checkpoint(context.Background())
		if err == nil {
			cp, err := ParseCheckpoint(raw, origin, pub)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size >= size {
				return raw
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no checkpoint of size %d within 10 s", size)
	return nil
}

func TestAppendReopenProve(t *testing.T) {
	ctx := context.Background()
	pub, key, _ := ed25519.GenerateKey(nil)
	dir := t.TempDir()
	l := open(t, dir, key)
	const n = 300 // more than one entry bundle
	var wg sync.WaitGroup
	indices := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, err := l.Append(ctx, leaf(i))
			if err != nil {
				t.Error(err)
			}
			indices[i] = idx
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, idx := range indices {
		if seen[idx] || idx >= n {
			t.Fatalf("index %d repeated or out of range", idx)
		}
		seen[idx] = true
	}
	waitCheckpoint(t, l, pub, n)
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A reopened log has every entry, at the index Append returned.
	l = open(t, dir, key)
	defer l.Close(ctx)
	size, err := l.Size(ctx)
	if err != nil || size != n {
		t.Fatalf("size %d, %v", size, err)
	}
	got := map[uint64][]byte{}
	if err := l.ScanLeaves(ctx, 0, size, func(i uint64, b []byte) error { got[i] = b; return nil }); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !bytes.Equal(got[indices[i]], leaf(i)) {
			t.Fatalf("leaf %d at %d is %q", i, indices[i], got[indices[i]])
		}
	}
	var partial []uint64
	if err := l.ScanLeaves(ctx, 250, 260, func(i uint64, _ []byte) error { partial = append(partial, i); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(partial) != 10 || partial[0] != 250 || partial[9] != 259 {
		t.Fatalf("ScanLeaves(250, 260) gave %v", partial)
	}
	if err := l.ScanLeaves(ctx, 0, size+1, func(uint64, []byte) error { return nil }); err == nil {
		t.Fatal("scan beyond the size succeeded")
	}

	cp, err := ParseCheckpoint(waitCheckpoint(t, l, pub, n), origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 7, 255, 256, n - 1} {
		proof, err := l.InclusionProof(ctx, indices[i], cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(leaf(i), indices[i], cp.Size, proof, cp.Hash); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if err := VerifyInclusion([]byte("not in the log"), indices[i], cp.Size, proof, cp.Hash); err == nil {
			t.Fatal("a foreign leaf verified")
		}
	}
}

func TestCheckpointSignature(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	l := open(t, t.TempDir(), key)
	defer l.Close(context.Background())
	if _, err := l.Append(context.Background(), leaf(0)); err != nil {
		t.Fatal(err)
	}
	raw := waitCheckpoint(t, l, pub, 1)
	if _, err := ParseCheckpoint(raw, origin, otherPub); err == nil {
		t.Fatal("checkpoint verified under another key")
	}
	if _, err := ParseCheckpoint(raw, "polyroot/other", pub); err == nil {
		t.Fatal("checkpoint verified under another origin")
	}
	// The signer we build verifies with the library's own verifier key.
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	if _, err := note.Open(raw, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
}

func TestHandler(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	l := open(t, t.TempDir(), key)
	defer l.Close(context.Background())
	if _, err := l.Append(context.Background(), leaf(0)); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, l, pub, 1)
	srv := httptest.NewServer(http.StripPrefix("/v1/log", l.Handler()))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/log/checkpoint"); code != 200 || !strings.HasPrefix(body, origin+"\n1\n") {
		t.Fatalf("checkpoint: %d %q", code, body)
	}
	if code, body := get("/v1/log/tile/entries/000.p/1"); code != 200 || !strings.Contains(body, "leaf 0") {
		t.Fatalf("entry bundle: %d %q", code, body)
	}
	// Files only: no directory listing, no redirect, nothing outside the tiles.
	http.DefaultClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer func() { http.DefaultClient.CheckRedirect = nil }()
	for _, p := range []string{"/v1/log/.state/treeState", "/v1/log/", "/v1/log/tile/../.state/treeState",
		"/v1/log/tile/entries/", "/v1/log/tile/entries", "/v1/log/tile/0/", "/v1/log/tile//entries/000.p/1", "/v1/log/checkpoint/"} {
		if code, body := get(p); code != 404 {
			t.Errorf("%s: %d, want 404\n%s", p, code, body)
		}
	}
}

// silenceTessera drops Tessera's log lines; tests use it.
func silenceTessera() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

// TestCloseStopsWriting: once Close returns, nothing writes into the log's directory
// (Tessera's checkpoint publisher outlives its context), so the directory can be
// removed or reopened at once.
func TestCloseStopsWriting(t *testing.T) {
	ctx := context.Background()
	_, key, _ := ed25519.GenerateKey(nil)
	for i := range 8 {
		dir := t.TempDir()
		l := open(t, dir, key)
		if _, err := l.Append(ctx, leaf(i)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 { // let a publish start: the append just integrated
			time.Sleep(time.Duration(i) * time.Millisecond)
		}
		if err := l.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := l.signer.Sign([]byte("a checkpoint published late\n")); err != errClosed {
			t.Fatalf("round %d: a closed log signs a checkpoint (%v)", i, err)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Fatalf("round %d: removing the closed log: %v", i, err)
		}
		time.Sleep(150 * time.Millisecond) // past a checkpoint interval
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("round %d: the closed log's directory came back (%v)", i, err)
		}
	}
}
