package dkgnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/dkg"
	"github.com/polyroot/polyroot/pairing"
)

// A testDTA is one party: its key, its board and its loopback server.
type testDTA struct {
	key   ed25519.PrivateKey
	board *Board
	srv   *httptest.Server
}

// handlerSlot lets a server start before its board exists (the board needs the
// session file, which needs the server's URL).
type handlerSlot struct{ h atomic.Pointer[Board] }

func (s *handlerSlot) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.Load().ServeHTTP(w, r) }

type ceremony struct {
	file *SessionFile
	dtas []*testDTA
}

func testKey(name string, i int) ed25519.PrivateKey {
	seed := sha256.Sum256(fmt.Appendf(nil, "dkgnet test %s %d", name, i))
	return ed25519.NewKeyFromSeed(seed[:])
}

// newCeremony starts n boards on loopback and the session file of a t-of-n key
// generation among them.
func newCeremony(t testing.TB, name string, n, thr int) *ceremony {
	c := &ceremony{file: &SessionFile{Version: 1, Domain: "example.org", Epoch: 1, Threshold: thr}}
	nonce := sha256.Sum256([]byte(name))
	c.file.Nonce = hex.EncodeToString(nonce[:])
	var slots []*handlerSlot
	for i := 1; i <= n; i++ {
		s := &handlerSlot{}
		d := &testDTA{key: testKey(name, i), srv: httptest.NewServer(s)}
		t.Cleanup(d.srv.Close)
		slots, c.dtas = append(slots, s), append(c.dtas, d)
		c.file.Members = append(c.file.Members, SessionMember{Index: uint32(i),
			SigningKey: hex.EncodeToString(d.key.Public().(ed25519.PublicKey)), URL: d.srv.URL})
	}
	for k, d := range c.dtas {
		b, err := NewBoard(c.file, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.board = b
		slots[k].h.Store(b)
	}
	return c
}

// run runs every party but those in skip, concurrently; cfg adjusts each Config.
func (c *ceremony) run(timeout time.Duration, skip map[int]bool, cfg func(k int, cfg *Config)) ([]*Result, []error) {
	res, errs := make([]*Result, len(c.dtas)), make([]error, len(c.dtas))
	var wg sync.WaitGroup
	for k, d := range c.dtas {
		if skip[k] {
			continue
		}
		wg.Go(func() {
			cf := Config{Session: c.file, Key: d.key, RoundTimeout: timeout}
			if cfg != nil {
				cfg(k, &cf)
			}
			res[k], errs[k] = Run(context.Background(), cf, d.board)
		})
	}
	wg.Wait()
	return res, errs
}

func combineShares(t *testing.T, res []*Result, ks ...int) *pairing.G1 {
	t.Helper()
	var idx []uint32
	for _, k := range ks {
		idx = append(idx, res[k].Index)
	}
	l, err := pairing.LagrangeCoefficients(idx)
	if err != nil {
		t.Fatal(err)
	}
	s := new(pairing.Scalar)
	for n, k := range ks {
		s.Add(s, new(pairing.Scalar).Mul(l[n], res[k].Share))
	}
	return pairing.G1Generator().Mul(s)
}

// checkResults checks that the parties in ks completed with the same transcript and
// that their shares combine, any t of them, to the public key.
func checkResults(t *testing.T, res []*Result, errs []error, thr int, ks ...int) *dkg.Result {
	t.Helper()
	var first []byte
	var out *dkg.Result
	for _, k := range ks {
		if errs[k] != nil {
			t.Fatalf("DTA %d: %v", k+1, errs[k])
		}
		js, err := json.Marshal(res[k].Transcript)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = js
		} else if string(js) != string(first) {
			t.Fatalf("DTA %d holds another transcript", k+1)
		}
		tr, err := ParseTranscript(js)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = tr.Verify(); err != nil {
			t.Fatal(err)
		}
		if !pairing.G1Generator().Mul(res[k].Share).Equal(res[k].Commitment) {
			t.Fatalf("DTA %d: share does not match its commitment", k+1)
		}
		if !res[k].Commitment.Equal(out.Commitments[k]) {
			t.Fatalf("DTA %d: commitment is not the transcript's C_%d", k+1, k+1)
		}
	}
	for start := 0; start+thr <= len(ks); start++ {
		if !combineShares(t, res, ks[start:start+thr]...).Equal(out.PublicKey) {
			t.Fatalf("shares %v do not combine to the public key", ks[start:start+thr])
		}
	}
	if thr > 1 && combineShares(t, res, ks[:thr-1]...).Equal(out.PublicKey) {
		t.Fatal("t-1 shares give the key")
	}
	return out
}

func TestDKGOverHTTP(t *testing.T) {
	c := newCeremony(t, "3 of 5", 5, 3)
	res, errs := c.run(20*time.Second, nil, nil)
	out := checkResults(t, res, errs, 3, 0, 1, 2, 3, 4)
	if len(out.Qualified) != 5 || len(out.Faults) != 0 {
		t.Fatalf("qualified %v, faults %v", out.Qualified, out.Faults)
	}
	if !combineShares(t, res, 0, 2, 4).Equal(out.PublicKey) {
		t.Fatal("shares 1, 3, 5 do not combine")
	}
}

// badShareTo corrupts the share sealed to member `to` in a deal, re-signed, and drops
// the answer: the dealer must be excluded by name.
func badShareTo(key ed25519.PrivateKey, to uint32) func(dkg.Kind, *dkg.Message) []*dkg.Message {
	return func(k dkg.Kind, m *dkg.Message) []*dkg.Message {
		switch k {
		case dkg.KindAnswer:
			return nil
		case dkg.KindDeal:
			for n := range m.Sealed {
				if m.Sealed[n].To == to {
					m.Sealed[n].Box[len(m.Sealed[n].Box)-1] ^= 1
				}
			}
			raw := m.Bytes()
			body := raw[:len(raw)-ed25519.SignatureSize]
			m.Signature = ed25519.Sign(key, append([]byte("polyroot/v1 dkg message\x00"), body...))
		}
		return []*dkg.Message{m}
	}
}

func TestDKGOverHTTPExcludesBadDealer(t *testing.T) {
	c := newCeremony(t, "bad dealer", 5, 3)
	res, errs := c.run(20*time.Second, nil, func(k int, cfg *Config) {
		if k == 1 { // DTA 2
			cfg.tamper = badShareTo(cfg.Key, 4)
		}
	})
	out := checkResults(t, res, errs, 3, 0, 1, 2, 3, 4)
	excluded := false
	for _, f := range out.Faults {
		excluded = excluded || f.DTA == 2 && f.Excluded && strings.Contains(f.Reason, "did not answer the complaint of DTA 4")
	}
	if !excluded || len(out.Qualified) != 4 {
		t.Fatalf("DTA 2 not excluded by name: qualified %v, faults %v", out.Qualified, out.Faults)
	}
}

func TestDKGOverHTTPMemberNeverStarts(t *testing.T) {
	c := newCeremony(t, "absent", 3, 2)
	c.dtas[2].srv.Close() // DTA 3 never starts: its board does not answer either
	res, errs := c.run(5*time.Second, map[int]bool{2: true}, nil)
	for k := range 2 {
		if res[k] != nil || errs[k] == nil || !strings.Contains(errs[k].Error(), "no hello from DTA 3") {
			t.Fatalf("DTA %d: result %v, error %v", k+1, res[k], errs[k])
		}
	}
}

func TestDKGOverHTTPEchoSpreadsPartialBroadcast(t *testing.T) {
	// DTA 1 gives its deal only to DTA 2's board; the echo brings it to everyone, so
	// DTA 1 qualifies and all transcripts agree.
	c := newCeremony(t, "partial broadcast", 4, 2)
	res, errs := c.run(20*time.Second, nil, func(k int, cfg *Config) {
		if k == 0 {
			cfg.skipPost = func(round string, to, _ int) bool { return round == "deal" && to != 1 }
		}
	})
	out := checkResults(t, res, errs, 2, 0, 1, 2, 3)
	if len(out.Qualified) != 4 {
		t.Fatalf("qualified %v, faults %v", out.Qualified, out.Faults)
	}
}

func TestDKGOverHTTPMemberStopsMidway(t *testing.T) {
	// DTA 3 stops (as after kill -9) when it should complain: the others abort naming
	// it, and nobody gets a share. It stops once the others have posted their
	// complaints to its board, so after they have read its deal round: stopping while
	// one of them still reads it would hold that one in the deal round's echo until
	// the round timeout, and the third would then name it as well (an abort all the
	// same, but not the one this test is about).
	c := newCeremony(t, "midway", 3, 2)
	ctx3, stop := context.WithCancel(context.Background())
	defer stop()
	res, errs := make([]*Result, 3), make([]error, 3)
	var wg sync.WaitGroup
	for k, d := range c.dtas {
		wg.Go(func() {
			cfg := Config{Session: c.file, Key: d.key, RoundTimeout: 5 * time.Second} // long enough for the live DTAs on a loaded machine
			ctx := context.Background()
			if k == 2 {
				ctx = ctx3
				cfg.tamper = func(kind dkg.Kind, m *dkg.Message) []*dkg.Message {
					if kind == dkg.KindComplaint {
						wctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						d.board.await(wctx, func() bool { return len(d.board.missing(doneSlot(dkg.KindComplaint))) == 1 })
						cancel()
						stop()
						d.srv.Close()
					}
					return []*dkg.Message{m}
				}
			}
			res[k], errs[k] = Run(ctx, cfg, d.board)
		})
	}
	wg.Wait()
	for k := range 3 {
		if res[k] != nil || errs[k] == nil {
			t.Fatalf("DTA %d completed: %v", k+1, errs[k])
		}
	}
	for k := range 2 {
		if !strings.Contains(errs[k].Error(), "round complaint: no done notice from DTA 3") {
			t.Fatalf("DTA %d: %v", k+1, errs[k])
		}
	}
}

func TestReshareOverHTTP(t *testing.T) {
	c := newCeremony(t, "reshare", 5, 3)
	res, errs := c.run(20*time.Second, nil, nil)
	old := checkResults(t, res, errs, 3, 0, 1, 2, 3, 4)

	// The same five DTAs reshare 3 of 5 → 3 of 4, DTA 5 retired (it deals, holds nothing after).
	f := *c.file
	f.Epoch, f.Nonce, f.Members = 2, strings.Repeat("ab", 32), c.file.Members[:4]
	f.Reshare = &SessionReshare{Threshold: 3, Dealers: c.file.Members, PublicKey: hex.EncodeToString(old.PublicKey.Bytes())}
	for _, cm := range old.Commitments {
		f.Reshare.Commitments = append(f.Reshare.Commitments, hex.EncodeToString(cm.Bytes()))
	}
	c2 := &ceremony{file: &f, dtas: c.dtas}
	for _, d := range c.dtas {
		b, err := NewBoard(&f, nil)
		if err != nil {
			t.Fatal(err)
		}
		d.board = b
		d.srv.Config.Handler.(*handlerSlot).h.Store(b)
	}
	res2, errs2 := c2.run(20*time.Second, nil, func(k int, cfg *Config) { cfg.OldShare = res[k].Share })
	out := checkResults(t, res2, errs2, 3, 0, 1, 2, 3)
	if !out.PublicKey.Equal(old.PublicKey) {
		t.Fatal("the resharing changed the public key")
	}
	if errs2[4] != nil || res2[4].Index != 0 || res2[4].Share != nil {
		t.Fatalf("retired DTA 5: %+v, %v", res2[4], errs2[4])
	}
	mixed := []*Result{res[0], res2[1], res2[2]}
	if combineShares(t, mixed, 0, 1, 2).Equal(out.PublicKey) {
		t.Fatal("an old share combines with new ones")
	}
}

func TestDKGOverHTTPOwnBoardUnreachable(t *testing.T) {
	// DTA 1's URL in the session does not reach its board: the error says so.
	c := newCeremony(t, "own board", 3, 2)
	c.dtas[0].srv.Close()
	_, errs := c.run(5*time.Second, map[int]bool{1: true}, nil)
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "is this DTA: its own posts did not reach its board") {
		t.Fatalf("error %v", errs[0])
	}
}

func TestDKGOverHTTPEquivocatingDealerExcluded(t *testing.T) {
	// DTA 1 gives one deal to DTAs 1 and 3 and another to DTAs 2 and 4: the boards keep
	// both as evidence, the echo brings both to everyone, and all exclude DTA 1.
	c := newCeremony(t, "equivocation", 4, 2)
	res, errs := c.run(20*time.Second, nil, func(k int, cfg *Config) {
		if k != 0 {
			return
		}
		cfg.tamper = func(kind dkg.Kind, m *dkg.Message) []*dkg.Message {
			if kind != dkg.KindDeal {
				return []*dkg.Message{m}
			}
			m2, _ := dkg.DecodeMessage(m.Bytes())
			m2.Points[1] = m2.Points[1].Add(pairing.G1Generator())
			resign(m2, cfg.Key)
			return []*dkg.Message{m, m2}
		}
		cfg.skipPost = func(round string, to, n int) bool { return round == "deal" && to%2 != n }
	})
	out := checkResults(t, res, errs, 2, 0, 1, 2, 3)
	excluded := false
	for _, f := range out.Faults {
		excluded = excluded || f.DTA == 1 && f.Excluded && strings.Contains(f.Reason, "equivocation")
	}
	if !excluded {
		t.Fatalf("DTA 1 not excluded for equivocation: qualified %v, faults %v", out.Qualified, out.Faults)
	}
}

func TestDKGOverHTTPConfirmationMismatchAborts(t *testing.T) {
	c := newCeremony(t, "mismatch", 3, 2)
	res, errs := c.run(20*time.Second, nil, func(k int, cfg *Config) { cfg.confirmOther = k == 1 })
	for k := range 3 {
		if res[k] != nil || errs[k] == nil {
			t.Fatalf("DTA %d completed", k+1)
		}
		if k != 1 && !strings.Contains(errs[k].Error(), "confirm: DTA 2 ") {
			t.Fatalf("DTA %d: %v", k+1, errs[k])
		}
	}
}

// readerHeader names the party of a request, for a board that answers one reader
// differently (TestDKGOverHTTPBoardServesTwoViews).
const readerHeader = "X-Test-Reader"

type namedReader struct{ k int }

func (n namedReader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(readerHeader, fmt.Sprint(n.k))
	return http.DefaultTransport.RoundTrip(r)
}

// TestDKGOverHTTPBoardServesTwoViews: DTA 3's board serves DTA 1 a closed deal round
// with a second deal of DTA 3 in it (validly signed) and DTA 2 the round as it holds
// it. The confirmations disagree and everyone aborts, the honest DTAs naming each
// other; but the digests of what each read from each board, in their errors, differ
// for DTA 3's board alone.
func TestDKGOverHTTPBoardServesTwoViews(t *testing.T) {
	c := newCeremony(t, "two views", 3, 2)
	m := c.dtas[2]
	honest := m.srv.Config.Handler
	m.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != PathRounds+"deal" || r.Header.Get(readerHeader) != "0" {
			honest.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		honest.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for _, it := range m.board.items("deal") {
			if it.party != 2 {
				continue
			}
			other, err := dkg.DecodeMessage(it.raw)
			if err != nil {
				t.Error(err)
				return
			}
			other.Points[1] = other.Points[1].Add(pairing.G1Generator())
			body = append(body, encodeItems([][]byte{resign(other, m.key)})...)
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
	_, errs := c.run(5*time.Second, nil, func(k int, cfg *Config) { cfg.HTTPClient = &http.Client{Transport: namedReader{k}} })
	digests := func(k int) map[string]string {
		if errs[k] == nil || !strings.Contains(errs[k].Error(), "confirmed another transcript") {
			t.Fatalf("DTA %d: %v", k+1, errs[k])
		}
		out := map[string]string{}
		for _, m := range regexp.MustCompile(`(DTA \d) \(\S+\) ([0-9a-f]{16})`).FindAllStringSubmatch(errs[k].Error(), -1) {
			out[m[1]] = m[2]
		}
		if len(out) != 3 {
			t.Fatalf("DTA %d names no digest of each board: %v", k+1, errs[k])
		}
		return out
	}
	first, second := digests(0), digests(1)
	for _, board := range []string{"DTA 1", "DTA 2", "DTA 3"} {
		if (first[board] != second[board]) != (board == "DTA 3") {
			t.Errorf("the digests of %s's board as DTA 1 and DTA 2 read it: %s, %s", board, first[board], second[board])
		}
	}
}

func TestDKGOverHTTPConfirmationWithheld(t *testing.T) {
	// DTA 2 saw the key and withholds its confirmation: the others abort naming it, and
	// say to rerun without it (with it, each rerun is another draw of the key for it).
	c := newCeremony(t, "withheld", 3, 2)
	res, errs := c.run(3*time.Second, nil, func(k int, cfg *Config) { cfg.withholdConfirm = k == 1 })
	for k := range 3 {
		if res[k] != nil || errs[k] == nil {
			t.Fatalf("DTA %d completed", k+1)
		}
		if k != 1 && (!strings.Contains(errs[k].Error(), "round confirm: no confirm from DTA 2") ||
			!strings.Contains(errs[k].Error(), "rerun the ceremony without it (it has seen the key")) {
			t.Fatalf("DTA %d: %v", k+1, errs[k])
		}
	}
}

// failPosts answers status, as a proxy in front of a board would, to a party's posts
// of its messages of one kind: the first `times` of them, or all if times is 0.
type failPosts struct {
	base   http.RoundTripper
	kind   dkg.Kind
	status int
	times  int32
	n      atomic.Int32
}

func (f *failPosts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, PathMessages) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		if m, err := dkg.DecodeMessage(b); err == nil && m.Kind == f.kind && (f.times == 0 || f.n.Add(1) <= f.times) {
			return &http.Response{StatusCode: f.status, Status: fmt.Sprintf("%d %s", f.status, http.StatusText(f.status)),
				Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
	}
	return f.base.RoundTrip(r)
}

func TestDKGOverHTTPPostsFail(t *testing.T) {
	// DTA 1 sends DTA 3 a bad share and does not answer; DTA 3's posts of one kind of
	// message fail at every board. A post that fails for a while (a proxy's 502 or 504)
	// is retried; one that fails for good or until the deadline makes DTA 3 abort,
	// naming the boards, with no done notice anywhere, so the others abort naming DTA 3
	// rather than go on without its message (before: DTA 3's complaint was lost and it
	// panicked in the disclose round, or its deal was and it was excluded).
	for _, tc := range []struct {
		name    string
		kind    dkg.Kind
		status  int
		times   int32
		want3   string // DTA 3's error; "" if the ceremony completes
		wantAll string // the others' error
	}{
		{name: "ok/502 for a while", kind: dkg.KindComplaint, status: http.StatusBadGateway, times: 4},
		{name: "ok/504 for a while", kind: dkg.KindComplaint, status: http.StatusGatewayTimeout, times: 4},
		{name: "fail/502 until the deadline", kind: dkg.KindComplaint, status: http.StatusBadGateway,
			want3: "did not take this DTA's posts", wantAll: "round complaint: no done notice from DTA 3"},
		{name: "fail/complaint refused", kind: dkg.KindComplaint, status: http.StatusForbidden,
			want3: "round complaint: ", wantAll: "round complaint: no done notice from DTA 3"},
		{name: "fail/deal refused", kind: dkg.KindDeal, status: http.StatusBadRequest,
			want3: "refused this DTA's posts", wantAll: "round deal: no done notice from DTA 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCeremony(t, "posts fail "+tc.name, 3, 2)
			res, errs := c.run(5*time.Second, nil, func(k int, cfg *Config) {
				switch k {
				case 0:
					cfg.tamper = badShareTo(cfg.Key, 3)
				case 2:
					cfg.HTTPClient = &http.Client{Transport: &failPosts{base: http.DefaultTransport, kind: tc.kind, status: tc.status, times: tc.times}}
				}
			})
			if tc.want3 == "" {
				out := checkResults(t, res, errs, 2, 0, 1, 2)
				if len(out.Qualified) != 2 || out.Qualified[0] != 2 {
					t.Fatalf("qualified %v, faults %v", out.Qualified, out.Faults)
				}
				return
			}
			for k := range 3 {
				want := tc.wantAll
				if k == 2 {
					want = tc.want3
				}
				if res[k] != nil || errs[k] == nil || !strings.Contains(errs[k].Error(), want) {
					t.Fatalf("DTA %d: result %v, error %v, want %q", k+1, res[k] != nil, errs[k], want)
				}
			}
			t.Log(errs[2])
		})
	}
}

func TestDKGOverHTTPNoRedirects(t *testing.T) {
	// DTA 2's board answers with a redirect elsewhere: DTA 1 must not follow it, with
	// its own client or one given, even one that follows redirects itself; it aborts
	// at once naming that board.
	var hits atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	for _, tc := range []struct {
		name   string
		client *http.Client
	}{
		{"fail/default client", nil},
		{"fail/given client", &http.Client{}},
		{"fail/given client that follows redirects", &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCeremony(t, "redirect "+tc.name, 3, 2)
			f := *c.file
			f.Members = append([]SessionMember(nil), c.file.Members...)
			f.Members[1].URL = redirect.URL
			var b *Board
			for _, k := range []int{2, 0} { // the boards that are not DTA 2's, on this session file
				var err error
				if b, err = NewBoard(&f, nil); err != nil {
					t.Fatal(err)
				}
				c.dtas[k].srv.Config.Handler.(*handlerSlot).h.Store(b)
			}
			_, err := Run(context.Background(), Config{Session: &f, Key: c.dtas[0].key, RoundTimeout: 5 * time.Second, HTTPClient: tc.client}, b)
			if err == nil || !strings.Contains(err.Error(), "round hello: the board of DTA 2 ("+redirect.URL+") (307 Temporary Redirect") || hits.Load() != 0 {
				t.Fatalf("error %v, %d requests redirected", err, hits.Load())
			}
			if tc.client != nil && (tc.name == "fail/given client") != (tc.client.CheckRedirect == nil) {
				t.Fatal("Run changed the given client")
			}
		})
	}
}

// lostAnswer delivers a party's first notice of one type (in one round, for a done
// notice) to the board at url, and then tells the party 502: a proxy whose upstream
// answered too late, or a connection reset after the board took the post.
type lostAnswer struct {
	base  http.RoundTripper
	url   string
	typ   noticeType
	round string
	n     atomic.Int32
}

func (f *lostAnswer) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, PathNotices) || !strings.HasPrefix(r.URL.String(), f.url) {
		return f.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	n, err := decodeNotice(body)
	if err != nil || n.typ != f.typ || f.round != "" && n.round.String() != f.round || f.n.Add(1) != 1 {
		return f.base.RoundTrip(r)
	}
	resp, err := f.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	time.Sleep(300 * time.Millisecond) // the others post theirs: the board closes the round
	return &http.Response{StatusCode: http.StatusBadGateway, Status: "502 Bad Gateway", Header: http.Header{},
		Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// TestDKGOverHTTPLostAnswer: a board that took a post whose answer was lost answers
// the retry 200 even once it has closed the round, so the ceremony completes (before,
// the retry got round_closed and the poster aborted; in the confirm round, alone,
// while the others stored their shares).
func TestDKGOverHTTPLostAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		typ   noticeType
		round string
	}{
		{"ok/done-notice", noticeDone, "deal"},
		{"ok/confirmation", noticeConfirm, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCeremony(t, "lost answer "+tc.name, 3, 2)
			res, errs := c.run(5*time.Second, nil, func(k int, cfg *Config) {
				if k == 2 {
					cfg.HTTPClient = &http.Client{Transport: &lostAnswer{base: http.DefaultTransport, url: c.dtas[0].srv.URL, typ: tc.typ, round: tc.round}}
				}
			})
			checkResults(t, res, errs, 2, 0, 1, 2)
		})
	}
}
