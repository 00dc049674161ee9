package ledger

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"

	"github.com/transparency-dev/tessera/client"

	"github.com/polyroot/polyroot/internal/translog"
)

const anchorOrigin = "polyroot/anchor.example/dta-1"

// anchorLog is a real transparency log in a temporary directory.
type anchorLog struct {
	t   *testing.T
	log *translog.Log
	dir string
	pub ed25519.PublicKey
	n   int
	// fork, when set, is written into every entry appended from then on: a log that
	// shares the entries before with another, not those after.
	fork string
}

func anchorNewLog(t *testing.T) *anchorLog {
	t.Helper()
	translog.RouteTesseraLogs(slog.New(slog.DiscardHandler))
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := translog.Open(context.Background(), dir, anchorOrigin, key, translog.Options{CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(context.Background()) })
	return &anchorLog{t: t, log: l, dir: dir, pub: pub}
}

// checkpoint is the Anchorer's Checkpoint: the log's latest checkpoint, verified.
func (al *anchorLog) checkpoint(ctx context.Context) (uint64, []byte, error) {
	raw, err := al.log.Checkpoint(ctx)
	if err != nil {
		return 0, nil, err
	}
	cp, err := translog.ParseCheckpoint(raw, anchorOrigin, al.pub)
	if err != nil {
		return 0, nil, err
	}
	return cp.Size, cp.Hash, nil
}

// grow appends n entries and waits until a checkpoint covers them; it returns the
// checkpoint's size and root.
func (al *anchorLog) grow(n int) (uint64, [32]byte) {
	al.t.Helper()
	ctx := context.Background()
	for range n {
		al.n++
		if _, err := al.log.Append(ctx, fmt.Appendf(nil, "entry %d%s", al.n, al.fork)); err != nil {
			al.t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		size, root, err := al.checkpoint(ctx)
		if err == nil && size == uint64(al.n) {
			var r [32]byte
			copy(r[:], root)
			return size, r
		}
		time.Sleep(20 * time.Millisecond)
	}
	al.t.Fatalf("no checkpoint of size %d within 10 s", al.n)
	return 0, [32]byte{}
}

// anchorSim is IssuanceLog on a simulated chain whose blocks the test seals, with an
// owner key and an anchorer key registered for anchorOrigin.
type anchorSim struct {
	t        *testing.T
	sim      *simulated.Backend
	client   simulated.Client
	contract common.Address
	owner    *ecdsa.PrivateKey
	anchorer *ecdsa.PrivateKey
}

func anchorNewSim(t *testing.T, register bool) *anchorSim {
	t.Helper()
	s := &anchorSim{t: t}
	var err error
	if s.owner, err = crypto.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if s.anchorer, err = crypto.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	balance := new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))
	s.sim = simulated.NewBackend(types.GenesisAlloc{
		Address(s.owner): {Balance: balance}, Address(s.anchorer): {Balance: balance},
	})
	t.Cleanup(func() { s.sim.Close() })
	s.client = s.sim.Client()
	s.sealing(func() {
		if s.contract, err = Deploy(anchorCtx(t), s.client, s.owner); err != nil {
			t.Fatal(err)
		}
		if register {
			if err := Register(anchorCtx(t), s.client, s.owner, s.contract, anchorOrigin, Address(s.anchorer)); err != nil {
				t.Fatal(err)
			}
		}
	})
	return s
}

func anchorCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sealing runs fn while a goroutine seals a block every 10 ms.
func (s *anchorSim) sealing(fn func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				s.sim.Commit()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	fn()
}

func (s *anchorSim) newAnchorer(al *anchorLog, backend Chain) *Anchorer {
	return &Anchorer{
		Backend: backend, Contract: s.contract, Key: s.anchorer, LogOrigin: anchorOrigin,
		Checkpoint: al.checkpoint, ReadTile: client.FileFetcher{Root: al.dir}.ReadTile, Confirmations: 2,
		Period: 50 * time.Millisecond, Poll: 10 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Logger: anchorTestLogger(s.t),
	}
}

func anchorTestLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(anchorTLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type anchorTLogWriter struct{ t *testing.T }

func (w anchorTLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (s *anchorSim) latest() LatestOutput {
	s.t.Helper()
	out, err := bind.Call(Binding().Instance(s.client, s.contract), &bind.CallOpts{Context: anchorCtx(s.t)},
		Binding().PackLatest(LogID(anchorOrigin)), Binding().UnpackLatest)
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// anchoredSizes lists the sizes of the Anchored events of anchorOrigin on the canonical chain.
func (s *anchorSim) anchoredSizes() []uint64 {
	s.t.Helper()
	it, err := bind.FilterEvents(Binding().Instance(s.client, s.contract), &bind.FilterOpts{Context: anchorCtx(s.t)},
		Binding().UnpackAnchoredEvent, []any{LogID(anchorOrigin)})
	if err != nil {
		s.t.Fatal(err)
	}
	defer it.Close()
	var sizes []uint64
	for it.Next() {
		sizes = append(sizes, it.Value().Size)
	}
	if err := it.Error(); err != nil {
		s.t.Fatal(err)
	}
	return sizes
}

func anchorStep(t *testing.T, a *Anchorer) {
	t.Helper()
	if err := a.Step(anchorCtx(t)); err != nil {
		t.Fatalf("Step: %v", err)
	}
}

func anchorWantStatus(t *testing.T, a *Anchorer, confirmed uint64, pending bool) AnchorStatus {
	t.Helper()
	st := a.Status()
	if st.Confirmed.Size != confirmed || (st.Pending != nil) != pending {
		t.Fatalf("status: confirmed size %d, pending %+v; want confirmed %d, pending %v", st.Confirmed.Size, st.Pending, confirmed, pending)
	}
	return st
}

func TestAnchorGrowingLog(t *testing.T) {
	s := anchorNewSim(t, true)
	al := anchorNewLog(t)
	a := s.newAnchorer(al, s.client)

	// An empty log: nothing to anchor.
	anchorStep(t, a)
	anchorWantStatus(t, a, 0, false)

	size, root := al.grow(3)
	anchorStep(t, a)
	st := anchorWantStatus(t, a, 0, true)
	if st.Pending.Size != 3 || st.Pending.Root != root || st.Lag != 3 || st.LogSize != 3 {
		t.Fatalf("after sending: %+v", st)
	}
	// Not mined yet: no second transaction.
	nonce, _ := s.client.PendingNonceAt(anchorCtx(t), Address(s.anchorer))
	anchorStep(t, a)
	if n, _ := s.client.PendingNonceAt(anchorCtx(t), Address(s.anchorer)); n != nonce {
		t.Fatalf("a second anchor was sent while the first was pending (nonce %d → %d)", nonce, n)
	}
	s.sim.Commit() // mined: one confirmation
	anchorStep(t, a)
	anchorWantStatus(t, a, 0, true)
	s.sim.Commit() // two confirmations
	anchorStep(t, a)
	st = anchorWantStatus(t, a, 3, false)
	if st.Confirmed.Root != root || st.Confirmed.Block == 0 || st.Confirmed.Tx == (common.Hash{}) || st.Lag != 0 {
		t.Fatalf("confirmed anchor %+v", st)
	}
	if got := s.latest(); got.Size != size || got.Root != root {
		t.Fatalf("latest on chain = %+v, want size %d root %x", got, size, root)
	}

	// The log did not grow: nothing is sent.
	nonce, _ = s.client.PendingNonceAt(anchorCtx(t), Address(s.anchorer))
	for range 3 {
		anchorStep(t, a)
		s.sim.Commit()
	}
	if n, _ := s.client.PendingNonceAt(anchorCtx(t), Address(s.anchorer)); n != nonce {
		t.Fatalf("an anchor was sent for a log that did not grow (nonce %d → %d)", nonce, n)
	}
	anchorWantStatus(t, a, 3, false)

	// It grows again.
	_, root5 := al.grow(2)
	anchorStep(t, a)
	if st := a.Status(); st.Lag != 2 {
		t.Fatalf("lag = %d, want 2 before the anchor is confirmed", st.Lag)
	}
	s.sim.Commit()
	s.sim.Commit()
	anchorStep(t, a)
	st = anchorWantStatus(t, a, 5, false)
	if st.Confirmed.Root != root5 {
		t.Fatalf("confirmed root %x, want %x", st.Confirmed.Root, root5)
	}
	if got := s.anchoredSizes(); !slices.Equal(got, []uint64{3, 5}) {
		t.Fatalf("Anchored events: sizes %v, want [3 5]", got)
	}

	// A new anchorer (a restarted DTA) starts from what the chain holds.
	b := s.newAnchorer(al, s.client)
	anchorStep(t, b)
	if st := b.Status(); st.Confirmed.Size != 5 || st.Pending != nil || st.Lag != 0 {
		t.Fatalf("restarted anchorer: %+v, want confirmed 5, nothing sent", st)
	}
}

// anchorFlaky is a Chain whose calls fail while failures remain.
type anchorFlaky struct {
	Chain
	mu       sync.Mutex
	failures map[string]int
	failed   int
}

var errAnchorInjected = errors.New("injected RPC failure: connection reset")

func (f *anchorFlaky) fail(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures[method] > 0 {
		f.failures[method]--
		f.failed++
		return errAnchorInjected
	}
	return nil
}

func (f *anchorFlaky) BlockNumber(ctx context.Context) (uint64, error) {
	if err := f.fail("BlockNumber"); err != nil {
		return 0, err
	}
	return f.Chain.BlockNumber(ctx)
}

func (f *anchorFlaky) CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error) {
	if err := f.fail("CallContract"); err != nil {
		return nil, err
	}
	return f.Chain.CallContract(ctx, call, block)
}

func (f *anchorFlaky) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if err := f.fail("SendTransaction"); err != nil {
		return err
	}
	return f.Chain.SendTransaction(ctx, tx)
}

func (f *anchorFlaky) TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	if err := f.fail("TransactionReceipt"); err != nil {
		return nil, err
	}
	return f.Chain.TransactionReceipt(ctx, h)
}

func TestAnchorRetriesRPCErrors(t *testing.T) {
	s := anchorNewSim(t, true)
	al := anchorNewLog(t)
	size, root := al.grow(4)
	flaky := &anchorFlaky{Chain: s.client, failures: map[string]int{
		"BlockNumber": 3, "CallContract": 2, "SendTransaction": 2, "TransactionReceipt": 2,
	}}
	a := s.newAnchorer(al, flaky)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s.sealing(func() {
		go func() { done <- a.Run(ctx) }()
		deadline := time.Now().Add(20 * time.Second)
		// Confirmed, and a clean round after it (LastError is the last round's).
		for st := a.Status(); st.Confirmed.Size != size || st.LastError != ""; st = a.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("not anchored within 20 s: %+v", a.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
	flaky.mu.Lock()
	defer flaky.mu.Unlock()
	if flaky.failed != 9 {
		t.Fatalf("%d injected failures happened, want all 9", flaky.failed)
	}
	if got := s.latest(); got.Size != size || got.Root != root {
		t.Fatalf("latest = %+v, want size %d", got, size)
	}
	if got := s.anchoredSizes(); !slices.Equal(got, []uint64{size}) {
		t.Fatalf("Anchored sizes %v, want one anchor [%d] despite the retries", got, size)
	}
	if st := a.Status(); st.LastError != "" || st.Lag != 0 {
		t.Fatalf("status after recovery: %+v", st)
	}
}

func TestAnchorReorg(t *testing.T) {
	// setup returns an anchorer with an anchor of size 3 sent, and the head before it.
	setup := func(t *testing.T) (*anchorSim, *anchorLog, *Anchorer, common.Hash) {
		s := anchorNewSim(t, true)
		al := anchorNewLog(t)
		a := s.newAnchorer(al, s.client)
		al.grow(3)
		parent, err := s.client.HeaderByNumber(anchorCtx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		anchorStep(t, a)
		anchorWantStatus(t, a, 0, true)
		return s, al, a, parent.Hash()
	}
	// reorg replaces the chain after parent with empty blocks: the anchor is dropped.
	reorg := func(t *testing.T, s *anchorSim, parent common.Hash, blocks int, tx common.Hash) {
		t.Helper()
		if err := s.sim.Fork(parent); err != nil {
			t.Fatalf("fork: %v", err)
		}
		s.sim.Rollback() // the dropped transaction went back to the pool: drop it there too
		for range blocks {
			s.sim.Commit()
		}
		if _, _, err := s.client.TransactionByHash(anchorCtx(t), tx); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("after the reorg the anchor transaction is still known: %v", err)
		}
		if got := s.latest(); got.Size != 0 {
			t.Fatalf("after the reorg latest = %+v, want none", got)
		}
	}

	t.Run("before-confirmation", func(t *testing.T) {
		s, _, a, parent := setup(t)
		tx := a.Status().Pending.Tx
		s.sim.Commit() // mined, one confirmation
		anchorStep(t, a)
		if st := anchorWantStatus(t, a, 0, true); st.Pending.Block == 0 {
			t.Fatalf("pending anchor not seen mined: %+v", st.Pending)
		}
		reorg(t, s, parent, 2, tx)
		anchorStep(t, a) // notices and sends again
		st := anchorWantStatus(t, a, 0, true)
		if st.Resent != 1 || st.Pending.Tx == tx || st.Pending.Size != 3 {
			t.Fatalf("after the reorg: %+v (first tx %s), want the anchor re-sent", st, tx)
		}
		s.sim.Commit()
		s.sim.Commit()
		anchorStep(t, a)
		anchorWantStatus(t, a, 3, false)
		if got := s.latest(); got.Size != 3 {
			t.Fatalf("latest = %+v, want size 3", got)
		}
	})

	t.Run("after-confirmation", func(t *testing.T) {
		s, _, a, parent := setup(t)
		tx := a.Status().Pending.Tx
		s.sim.Commit()
		s.sim.Commit()
		anchorStep(t, a)
		anchorWantStatus(t, a, 3, false)
		reorg(t, s, parent, 4, tx) // deeper than the confirmations
		anchorStep(t, a)
		st := anchorWantStatus(t, a, 0, true)
		if st.Resent != 1 || st.Pending.Tx == tx || st.Lag != 3 {
			t.Fatalf("after the reorg: %+v, want the anchor re-sent and a lag of 3", st)
		}
		s.sim.Commit()
		s.sim.Commit()
		anchorStep(t, a)
		anchorWantStatus(t, a, 3, false)
		if got := s.anchoredSizes(); !slices.Equal(got, []uint64{3}) {
			t.Fatalf("Anchored sizes on the canonical chain %v, want [3]", got)
		}
	})

	t.Run("moved-to-another-block", func(t *testing.T) {
		// The reorged-out transaction returns to the pool and is mined again: the
		// anchorer follows it to its new block rather than sending a second one.
		s, _, a, parent := setup(t)
		tx := a.Status().Pending.Tx
		s.sim.Commit()
		anchorStep(t, a)
		if err := s.sim.Fork(parent); err != nil {
			t.Fatal(err)
		}
		s.sim.Commit() // the fork's first block re-includes the transaction
		s.sim.Commit()
		s.sim.Commit()
		anchorStep(t, a)
		st := anchorWantStatus(t, a, 3, false)
		if st.Confirmed.Tx != tx || st.Resent != 0 {
			t.Fatalf("after the reorg: %+v, want the first transaction confirmed, none re-sent", st)
		}
	})
}

func TestAnchorNotAnchorer(t *testing.T) {
	s := anchorNewSim(t, false) // the anchorer's address is not registered
	al := anchorNewLog(t)
	al.grow(2)
	a := s.newAnchorer(al, s.client)
	err := a.Step(anchorCtx(t))
	if !errors.Is(err, ErrNotAnchorer) {
		t.Fatalf("Step = %v, want ErrNotAnchorer", err)
	}
	for _, want := range []string{Address(s.anchorer).Hex(), anchorOrigin, "register"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	st := a.Status()
	if st.Pending != nil || st.LastError != err.Error() || st.Lag != 2 {
		t.Fatalf("status %+v", st)
	}
}

// TestAnchorOtherChain: an anchorer told the trust bundle's chain sends nothing to
// another chain, and sends once told the right one.
func TestAnchorOtherChain(t *testing.T) {
	s := anchorNewSim(t, true)
	al := anchorNewLog(t)
	al.grow(2)
	a := s.newAnchorer(al, s.client)
	a.ChainID = 5 // the simulated chain is 1337
	err := a.Step(anchorCtx(t))
	if !errors.Is(err, ErrAnchoring) || !strings.Contains(err.Error(), "serves chain 1337, the trust bundle anchors on chain 5") {
		t.Fatalf("Step = %v, want ErrAnchoring", err)
	}
	if st := a.Status(); st.Pending != nil || st.Lag != 2 || len(s.anchoredSizes()) != 0 {
		t.Fatalf("an anchor went to another chain: status %+v, anchors %v", st, s.anchoredSizes())
	}
	a.ChainID = 1337
	anchorStep(t, a)
	if st := a.Status(); st.Pending == nil {
		t.Fatalf("no anchor sent to the bundle's chain: %+v", st)
	}
}

func TestAnchorLogMismatch(t *testing.T) {
	s := anchorNewSim(t, true)
	al := anchorNewLog(t)
	size, _ := al.grow(2)
	// The chain holds another root at the log's size (a forked log, as the chain sees it).
	s.sealing(func() {
		opts, err := transactOpts(anchorCtx(t), s.client, s.anchorer)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := bind.Transact(Binding().Instance(s.client, s.contract), opts, Binding().PackAnchor(LogID(anchorOrigin), size, root("other")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := waitSuccess(anchorCtx(t), s.client, tx.Hash()); err != nil {
			t.Fatal(err)
		}
	})
	a := s.newAnchorer(al, s.client)
	if err := a.Step(anchorCtx(t)); !errors.Is(err, ErrLogMismatch) || !strings.Contains(err.Error(), "size 2") {
		t.Fatalf("Step = %v, want ErrLogMismatch at size 2", err)
	}
}

// TestAnchorRefusesFork: a log that shares only its first entries with the anchored
// one (a DTA restored from an old copy, which went on issuing) is not anchored once it
// grows past the anchored size; the log that does extend the anchor is.
func TestAnchorRefusesFork(t *testing.T) {
	for _, tc := range []struct {
		name   string
		common int // entries shared with the anchored log of 4
		grow   int // entries appended after them
		want   error
	}{
		{"ok/extends", 4, 2, nil},
		{"fail/forked-log", 2, 4, ErrLogMismatch},
		{"fail/forked-after-the-first-entry", 1, 9, ErrLogMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := anchorNewSim(t, true)
			anchored := anchorNewLog(t)
			anchored.grow(4)
			a := s.newAnchorer(anchored, s.client)
			anchorStep(t, a)
			s.sim.Commit()
			s.sim.Commit()
			anchorStep(t, a)
			anchorWantStatus(t, a, 4, false)

			l := anchorNewLog(t)
			l.grow(tc.common)
			l.fork = " (restored)"
			if tc.common == 4 {
				l = anchored // the same log, grown further
			}
			size, _ := l.grow(tc.grow)
			b := s.newAnchorer(l, s.client)
			nonce, _ := s.client.PendingNonceAt(anchorCtx(t), Address(s.anchorer))
			err := b.Step(anchorCtx(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Step = %v, want %v", err, tc.want)
			}
			if tc.want == nil {
				anchorWantStatus(t, b, 4, true)
				return
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("the log at size %d", size)) || !strings.Contains(err.Error(), "anchor at size 4") {
				t.Fatalf("Step = %v, want the sizes named", err)
			}
			if n, _ := s.client.PendingNonceAt(anchorCtx(t), Address(s.anchorer)); n != nonce {
				t.Fatalf("the forked log was anchored (nonce %d → %d)", nonce, n)
			}
			if st := b.Status(); st.Pending != nil || st.LastError == "" {
				t.Fatalf("status after the refusal: %+v", st)
			}
		})
	}
}

func TestAnchorerConfig(t *testing.T) {
	a := &Anchorer{}
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("Run without a chain: no error")
	}
}

// TestEmbeddedChain runs the whole anchoring loop on the embedded chain, with its own
// block sealing, through Deploy and Register.
func TestEmbeddedChain(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEmbedded(20*time.Millisecond, Address(key))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := anchorCtx(t)
	contract, err := Deploy(ctx, e.Chain(), e.Key())
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(ctx, e.Chain(), key, contract, anchorOrigin, Address(key)); err == nil || !strings.Contains(err.Error(), "not the owner") {
		t.Fatalf("Register by a non-owner: %v, want a clear refusal", err)
	}
	if err := Register(ctx, e.Chain(), e.Key(), contract, anchorOrigin, Address(key)); err != nil {
		t.Fatal(err)
	}
	al := anchorNewLog(t)
	a := &Anchorer{Backend: e.Chain(), Contract: contract, Key: key, LogOrigin: anchorOrigin, Checkpoint: al.checkpoint,
		Period: 50 * time.Millisecond, Poll: 10 * time.Millisecond, Logger: anchorTestLogger(t)}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	for _, n := range []int{2, 3} {
		size, root := al.grow(n)
		deadline := time.Now().Add(20 * time.Second)
		for st := a.Status(); st.Confirmed.Size != size; st = a.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("size %d not anchored within 20 s: %+v", size, st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if st := a.Status(); st.Confirmed.Root != root {
			t.Fatalf("confirmed root %x, want %x", st.Confirmed.Root, root)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	hexKey := fmt.Sprintf("%x", crypto.FromECDSA(key))
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, content := range []string{hexKey, "0x" + hexKey + "\n", "  " + hexKey + "\n"} {
		got, err := LoadKeyFile(write("ok", content, 0o600))
		if err != nil {
			t.Fatalf("LoadKeyFile(%q…): %v", content[:4], err)
		}
		if Address(got) != Address(key) {
			t.Fatal("loaded another key")
		}
	}
	if _, err := LoadKeyFile(write("open", hexKey, 0o644)); err == nil || !strings.Contains(err.Error(), "0644") {
		t.Fatalf("group/world-readable key file: %v, want a refusal naming the mode", err)
	}
	if _, err := LoadKeyFile(write("group", hexKey, 0o640)); err == nil {
		t.Fatal("group-readable key file accepted")
	}
	bad := hexKey[:60] + "zzzz"
	_, err = LoadKeyFile(write("bad", bad, 0o600))
	if err == nil || strings.Contains(err.Error(), hexKey[:16]) {
		t.Fatalf("malformed key file: %v (must refuse and not quote it)", err)
	}
	if _, err := LoadKeyFile(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing key file accepted")
	}
}
