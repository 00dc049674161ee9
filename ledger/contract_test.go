package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"
)

// simChainID is the chain ID of every simulated backend.
var simChainID = big.NewInt(1337)

// testChain is an IssuanceLog deployed on a fresh in-memory simulated chain, with funded
// keys: the owner (deployer) and three others.
type testChain struct {
	t        *testing.T
	sim      *simulated.Backend
	client   simulated.Client
	contract *bind.BoundContract
	addr     common.Address
	owner    *bind.TransactOpts
	a, b, c  *bind.TransactOpts
}

// newKey returns transact options signing with a fresh key.
func newKey(t *testing.T) *bind.TransactOpts {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return bind.NewKeyedTransactor(key, simChainID)
}

func newTestChain(t *testing.T) *testChain {
	t.Helper()
	tc := &testChain{t: t}
	alloc := types.GenesisAlloc{}
	for _, o := range []**bind.TransactOpts{&tc.owner, &tc.a, &tc.b, &tc.c} {
		*o = newKey(t)
		alloc[(*o).From] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), big.NewInt(params.Ether))}
	}
	tc.sim = simulated.NewBackend(alloc)
	t.Cleanup(func() { tc.sim.Close() })
	tc.client = tc.sim.Client()

	addr, tx, err := bind.DeployContract(tc.owner, common.FromHex(IssuanceLogMetaData.Bin), tc.client, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	tc.sim.Commit()
	got, err := bind.WaitDeployed(tc.ctx(), tc.client, tx.Hash())
	if err != nil {
		t.Fatalf("deploy: waiting: %v", err)
	}
	if got != addr {
		t.Fatalf("deployed at %s, predicted %s", got, addr)
	}
	tc.addr = addr
	tc.contract = Binding().Instance(tc.client, addr)
	return tc
}

func (tc *testChain) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tc.t.Cleanup(cancel)
	return ctx
}

// send submits call data from opts, mines a block and returns the receipt. An error is
// either a refusal before sending (eth_estimateGas reverted) or a mined, failed transaction.
func (tc *testChain) send(opts *bind.TransactOpts, data []byte) (*types.Receipt, error) {
	tc.t.Helper()
	tx, err := bind.Transact(tc.contract, opts, data)
	if err != nil {
		return nil, err
	}
	tc.sim.Commit()
	rcpt, err := bind.WaitMined(tc.ctx(), tc.client, tx.Hash())
	if err != nil {
		tc.t.Fatalf("waiting for %s: %v", tx.Hash(), err)
	}
	if rcpt.Status != types.ReceiptStatusSuccessful {
		return rcpt, errors.New("transaction reverted on chain")
	}
	return rcpt, nil
}

func (tc *testChain) register(from *bind.TransactOpts, logID [32]byte, who common.Address) error {
	tc.t.Helper()
	_, err := tc.send(from, Binding().PackRegister(logID, who))
	return err
}

func (tc *testChain) anchor(from *bind.TransactOpts, logID [32]byte, size uint64, root [32]byte) (*types.Receipt, error) {
	tc.t.Helper()
	return tc.send(from, Binding().PackAnchor(logID, size, root))
}

func (tc *testChain) latest(logID [32]byte) LatestOutput {
	tc.t.Helper()
	out, err := bind.Call(tc.contract, &bind.CallOpts{Context: tc.ctx()}, Binding().PackLatest(logID), Binding().UnpackLatest)
	if err != nil {
		tc.t.Fatalf("latest: %v", err)
	}
	return out
}

func (tc *testChain) anchorerOf(logID [32]byte) common.Address {
	tc.t.Helper()
	out, err := bind.Call(tc.contract, &bind.CallOpts{Context: tc.ctx()}, Binding().PackAnchorer(logID), Binding().UnpackAnchorer)
	if err != nil {
		tc.t.Fatalf("anchorer: %v", err)
	}
	return out
}

func root(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// anchoredIn returns the single Anchored event in rcpt.
func anchoredIn(t *testing.T, rcpt *types.Receipt) *IssuanceLogAnchored {
	t.Helper()
	var found *IssuanceLogAnchored
	for _, l := range rcpt.Logs {
		ev, err := Binding().UnpackAnchoredEvent(l)
		if errors.Is(err, bind.ErrEventSignatureMismatch) {
			continue
		}
		if err != nil {
			t.Fatalf("unpacking Anchored: %v", err)
		}
		if found != nil {
			t.Fatal("two Anchored events in one receipt")
		}
		found = ev
	}
	if found == nil {
		t.Fatal("no Anchored event in the receipt")
	}
	return found
}

func wantRevert[E any](t *testing.T, err error) *E {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted, want a revert with %T", new(E))
	}
	got, ok := Revert(err).(*E)
	if !ok {
		t.Fatalf("error %v (decoded %#v), want a revert with %T", err, Revert(err), new(E))
	}
	return got
}

func TestLogID(t *testing.T) {
	origin := "dta-1.polyroot.example/issuance"
	want := sha256.Sum256([]byte(origin))
	if LogID(origin) != want {
		t.Fatalf("LogID(%q) = %x, want SHA-256 %x", origin, LogID(origin), want)
	}
}

func TestDeployedCodeIsTheArtifact(t *testing.T) {
	tc := newTestChain(t)
	code, err := tc.client.CodeAt(tc.ctx(), tc.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	art := readArtifact(t)
	if !bytes.Equal(code, common.FromHex(art.DeployedBytecode)) {
		t.Fatalf("code on chain (%d bytes) differs from IssuanceLog.json deployedBytecode (%d bytes)",
			len(code), len(common.FromHex(art.DeployedBytecode)))
	}
	owner, err := bind.Call(tc.contract, nil, Binding().PackOwner(), Binding().UnpackOwner)
	if err != nil {
		t.Fatal(err)
	}
	if owner != tc.owner.From {
		t.Fatalf("owner() = %s, want the deployer %s", owner, tc.owner.From)
	}
}

func TestIssuanceLog(t *testing.T) {
	logL := LogID("dta-1.polyroot.example/issuance")

	// Each case starts from: contract deployed, L registered to A, nothing anchored.
	setup := func(t *testing.T) *testChain {
		tc := newTestChain(t)
		if err := tc.register(tc.owner, logL, tc.a.From); err != nil {
			t.Fatalf("owner registering L: %v", err)
		}
		if got := tc.anchorerOf(logL); got != tc.a.From {
			t.Fatalf("anchorer(L) = %s, want A %s", got, tc.a.From)
		}
		return tc
	}

	t.Run("ok/anchor-emits-and-latest", func(t *testing.T) {
		tc := setup(t)
		if got := tc.latest(logL); got != (LatestOutput{}) {
			t.Fatalf("latest before any anchor = %+v, want zero", got)
		}
		rcpt, err := tc.anchor(tc.a, logL, 10, root("R10"))
		if err != nil {
			t.Fatalf("A anchoring size 10: %v", err)
		}
		block, err := tc.client.HeaderByNumber(tc.ctx(), rcpt.BlockNumber)
		if err != nil {
			t.Fatal(err)
		}
		ev := anchoredIn(t, rcpt)
		if ev.LogID != logL || ev.Size != 10 || ev.Root != root("R10") || ev.Timestamp != block.Time {
			t.Fatalf("Anchored = {%x %d %x %d}, want {%x 10 %x %d}", ev.LogID, ev.Size, ev.Root, ev.Timestamp, logL, root("R10"), block.Time)
		}
		if ev.Raw.Address != tc.addr {
			t.Fatalf("event from %s, want the contract %s", ev.Raw.Address, tc.addr)
		}
		want := LatestOutput{Size: 10, Root: root("R10"), Timestamp: block.Time}
		if got := tc.latest(logL); got != want {
			t.Fatalf("latest = %+v, want %+v", got, want)
		}
		if _, err := tc.anchor(tc.a, logL, 11, root("R11")); err != nil {
			t.Fatalf("A anchoring size 11: %v", err)
		}
		if got := tc.latest(logL); got.Size != 11 || got.Root != root("R11") {
			t.Fatalf("latest after 11 = %+v", got)
		}
		if got := tc.latest(LogID("other")); got != (LatestOutput{}) {
			t.Fatalf("latest of another log = %+v, want zero", got)
		}
	})

	t.Run("fail/unregistered-address", func(t *testing.T) {
		tc := setup(t)
		_, err := tc.anchor(tc.b, logL, 10, root("R10"))
		wantRevert[IssuanceLogNotAnchorer](t, err)
		// The owner registers logs but is not their anchorer.
		_, err = tc.anchor(tc.owner, logL, 10, root("R10"))
		wantRevert[IssuanceLogNotAnchorer](t, err)
		if got := tc.latest(logL); got != (LatestOutput{}) {
			t.Fatalf("latest = %+v after refused anchors, want zero", got)
		}
	})

	t.Run("fail/unregistered-log", func(t *testing.T) {
		tc := setup(t)
		_, err := tc.anchor(tc.a, LogID("never registered"), 10, root("R10"))
		wantRevert[IssuanceLogNotAnchorer](t, err)
	})

	t.Run("fail/unregistered-address-mined", func(t *testing.T) {
		// Skip gas estimation, so the refusal happens in a mined transaction: the rule
		// is enforced on chain, not only by a well-behaved client.
		tc := setup(t)
		b := *tc.b
		b.GasLimit = 200_000
		rcpt, err := tc.anchor(&b, logL, 10, root("R10"))
		if err == nil || rcpt == nil || rcpt.Status != types.ReceiptStatusFailed {
			t.Fatalf("anchor from B with a fixed gas limit: receipt %+v, err %v; want a failed transaction", rcpt, err)
		}
		if len(rcpt.Logs) != 0 {
			t.Fatalf("a failed anchor emitted %d logs", len(rcpt.Logs))
		}
		if got := tc.latest(logL); got != (LatestOutput{}) {
			t.Fatalf("latest = %+v after a failed anchor, want zero", got)
		}
	})

	t.Run("fail/shrinking-size", func(t *testing.T) {
		tc := setup(t)
		if _, err := tc.anchor(tc.a, logL, 10, root("R10")); err != nil {
			t.Fatal(err)
		}
		_, err := tc.anchor(tc.a, logL, 9, root("R9"))
		e := wantRevert[IssuanceLogSizeNotGrowing](t, err)
		if e.Last != 10 || e.Size != 9 {
			t.Fatalf("SizeNotGrowing%+v, want {Last:10 Size:9}", *e)
		}
		if got := tc.latest(logL); got.Size != 10 || got.Root != root("R10") {
			t.Fatalf("latest = %+v, want size 10 kept", got)
		}
	})

	t.Run("fail/same-size", func(t *testing.T) {
		tc := setup(t)
		if _, err := tc.anchor(tc.a, logL, 10, root("R10")); err != nil {
			t.Fatal(err)
		}
		// Same size with another root: a fork at an anchored size must not replace the anchor.
		_, err := tc.anchor(tc.a, logL, 10, root("forked"))
		e := wantRevert[IssuanceLogSizeNotGrowing](t, err)
		if e.Last != 10 || e.Size != 10 {
			t.Fatalf("SizeNotGrowing%+v, want {Last:10 Size:10}", *e)
		}
		if got := tc.latest(logL); got.Root != root("R10") {
			t.Fatalf("latest root = %x, want R10 kept", got.Root)
		}
	})

	t.Run("fail/zero-size", func(t *testing.T) {
		tc := setup(t)
		_, err := tc.anchor(tc.a, logL, 0, root("empty"))
		wantRevert[IssuanceLogSizeNotGrowing](t, err)
	})

	t.Run("fail/not-owner-register", func(t *testing.T) {
		tc := setup(t)
		// Neither a stranger nor the current anchorer can (re)assign a log.
		err := tc.register(tc.b, logL, tc.b.From)
		wantRevert[IssuanceLogNotOwner](t, err)
		err = tc.register(tc.a, logL, tc.b.From)
		wantRevert[IssuanceLogNotOwner](t, err)
		if got := tc.anchorerOf(logL); got != tc.a.From {
			t.Fatalf("anchorer(L) = %s after refused registrations, want A", got)
		}
	})

	t.Run("ok/move-anchorer", func(t *testing.T) {
		tc := setup(t)
		if _, err := tc.anchor(tc.a, logL, 10, root("R10")); err != nil {
			t.Fatal(err)
		}
		if err := tc.register(tc.owner, logL, tc.c.From); err != nil {
			t.Fatalf("owner moving L to C: %v", err)
		}
		_, err := tc.anchor(tc.a, logL, 20, root("R20"))
		wantRevert[IssuanceLogNotAnchorer](t, err)
		// The new anchorer continues the same log: sizes must still grow past 10.
		_, err = tc.anchor(tc.c, logL, 10, root("R10"))
		wantRevert[IssuanceLogSizeNotGrowing](t, err)
		if _, err := tc.anchor(tc.c, logL, 20, root("R20")); err != nil {
			t.Fatalf("C anchoring size 20: %v", err)
		}
		if got := tc.latest(logL); got.Size != 20 || got.Root != root("R20") {
			t.Fatalf("latest = %+v, want size 20", got)
		}
	})

	t.Run("ok/freeze-by-registering-zero", func(t *testing.T) {
		tc := setup(t)
		if err := tc.register(tc.owner, logL, common.Address{}); err != nil {
			t.Fatal(err)
		}
		_, err := tc.anchor(tc.a, logL, 10, root("R10"))
		wantRevert[IssuanceLogNotAnchorer](t, err)
	})
}

func TestRegisteredEvent(t *testing.T) {
	tc := newTestChain(t)
	logL := LogID("L")
	if err := tc.register(tc.owner, logL, tc.a.From); err != nil {
		t.Fatal(err)
	}
	it, err := bind.FilterEvents(tc.contract, &bind.FilterOpts{Context: tc.ctx()}, Binding().UnpackRegisteredEvent)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []IssuanceLogRegistered
	for it.Next() {
		got = append(got, *it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].LogID != logL || got[0].Anchorer != tc.a.From {
		t.Fatalf("Registered events = %+v, want one {L, A}", got)
	}
}

// TestFilterAnchored finds the anchors of one log over a block range, as the auditor does.
func TestFilterAnchored(t *testing.T) {
	tc := newTestChain(t)
	logL, logM := LogID("L"), LogID("M")
	if err := tc.register(tc.owner, logL, tc.a.From); err != nil {
		t.Fatal(err)
	}
	if err := tc.register(tc.owner, logM, tc.b.From); err != nil {
		t.Fatal(err)
	}
	blockOf := map[uint64]uint64{} // size of L => block number
	for _, size := range []uint64{3, 7, 12, 40} {
		rcpt, err := tc.anchor(tc.a, logL, size, root(fmt.Sprint("L", size)))
		if err != nil {
			t.Fatal(err)
		}
		blockOf[size] = rcpt.BlockNumber.Uint64()
		if _, err := tc.anchor(tc.b, logM, size*2, root("M")); err != nil {
			t.Fatal(err)
		}
	}

	filter := func(start uint64, end *uint64) []uint64 {
		t.Helper()
		opts := &bind.FilterOpts{Start: start, End: end, Context: tc.ctx()}
		it, err := bind.FilterEvents(tc.contract, opts, Binding().UnpackAnchoredEvent, []any{logL})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var sizes []uint64
		for it.Next() {
			ev := it.Value()
			if ev.LogID != logL {
				t.Fatalf("filter on L returned an event of %x", ev.LogID)
			}
			if ev.Raw.BlockNumber != blockOf[ev.Size] {
				t.Fatalf("size %d reported in block %d, anchored in %d", ev.Size, ev.Raw.BlockNumber, blockOf[ev.Size])
			}
			sizes = append(sizes, ev.Size)
		}
		if err := it.Error(); err != nil {
			t.Fatal(err)
		}
		return sizes
	}

	if got := filter(0, nil); !slices.Equal(got, []uint64{3, 7, 12, 40}) {
		t.Fatalf("all anchors of L = %v, want [3 7 12 40]", got)
	}
	end := blockOf[12]
	if got := filter(blockOf[7], &end); !slices.Equal(got, []uint64{7, 12}) {
		t.Fatalf("anchors of L in blocks [%d, %d] = %v, want [7 12]", blockOf[7], end, got)
	}
	end = blockOf[3] - 1
	if got := filter(0, &end); len(got) != 0 {
		t.Fatalf("anchors of L before the first = %v, want none", got)
	}
}
