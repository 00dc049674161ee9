package ledger

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"

	"github.com/polyroot/polyroot/internal/testbin"
)

// anchorGethFund sends 10 ether from geth --dev's unlocked dev account to each address
// and waits until the transfers are mined.
func anchorGethFund(t *testing.T, c *ethclient.Client, to ...common.Address) {
	t.Helper()
	ctx := anchorCtx(t)
	var accounts []common.Address
	if err := c.Client().CallContext(ctx, &accounts, "eth_accounts"); err != nil || len(accounts) == 0 {
		t.Fatalf("geth --dev: eth_accounts = %v, %v; want the dev account", accounts, err)
	}
	value := (*hexutil.Big)(new(big.Int).Mul(big.NewInt(10), big.NewInt(params.Ether)))
	var hashes []common.Hash
	for _, addr := range to {
		var h common.Hash
		tx := map[string]any{"from": accounts[0], "to": addr, "value": value}
		if err := c.Client().CallContext(ctx, &h, "eth_sendTransaction", tx); err != nil {
			t.Fatalf("funding %s from the dev account: %v", addr, err)
		}
		hashes = append(hashes, h)
	}
	for _, h := range hashes {
		if _, err := waitSuccess(ctx, c, h); err != nil {
			t.Fatalf("funding: %v", err)
		}
	}
}

// TestAnchorGeth deploys, registers and anchors a real log's checkpoints on a real
// `geth --dev`, and reads the Anchored events back.
func TestAnchorGeth(t *testing.T) {
	g := testbin.StartGeth(t)
	ctx := anchorCtx(t)
	client, err := Dial(ctx, g.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if id, err := client.ChainID(ctx); err != nil || id.Int64() != 1337 {
		t.Fatalf("chain ID %v, %v; want 1337", id, err)
	}
	var owner, anchorer *ecdsa.PrivateKey
	for _, k := range []**ecdsa.PrivateKey{&owner, &anchorer} {
		if *k, err = crypto.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	anchorGethFund(t, client, Address(owner), Address(anchorer))

	contract, err := Deploy(ctx, client, owner)
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(ctx, client, owner, contract, anchorOrigin, Address(anchorer)); err != nil {
		t.Fatal(err)
	}

	al := anchorNewLog(t)
	a := &Anchorer{Backend: client, Contract: contract, Key: anchorer, LogOrigin: anchorOrigin, Checkpoint: al.checkpoint,
		Period: 300 * time.Millisecond, Poll: 200 * time.Millisecond, Confirmations: 2, Logger: anchorTestLogger(t)}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	var want []Anchor
	for _, n := range []int{3, 4} {
		size, root := al.grow(n)
		deadline := time.Now().Add(30 * time.Second)
		st := a.Status()
		for ; st.Confirmed.Size != size; st = a.Status() {
			if time.Now().After(deadline) {
				t.Fatalf("size %d not anchored on geth within 30 s: %+v", size, st)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st.Confirmed.Root != root || st.Confirmed.Block == 0 || st.Lag != 0 {
			t.Fatalf("confirmed %+v, want root %x from a receipt", st, root)
		}
		head, err := client.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if head+1 < st.Confirmed.Block+2 {
			t.Fatalf("confirmed in block %d at head %d: fewer than 2 confirmations", st.Confirmed.Block, head)
		}
		want = append(want, st.Confirmed)
	}

	it, err := bind.FilterEvents(Binding().Instance(client, contract), &bind.FilterOpts{Context: ctx},
		Binding().UnpackAnchoredEvent, []any{LogID(anchorOrigin)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var got []*IssuanceLogAnchored
	for it.Next() {
		got = append(got, it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	// The log grows one entry at a time and checkpoints every 100 ms, so the anchorer
	// may also have anchored a size in between: every wanted anchor must be an event,
	// in order, and the events' sizes must only grow.
	matched := 0
	for i, ev := range got {
		if ev.LogID != LogID(anchorOrigin) || ev.Raw.Address != contract || (i > 0 && ev.Size <= got[i-1].Size) {
			t.Fatalf("Anchored event %d = {log %x size %d} from %s: not this log's, or its size does not grow", i, ev.LogID, ev.Size, ev.Raw.Address)
		}
		if matched < len(want) && ev.Size == want[matched].Size {
			w := want[matched]
			if ev.Root != w.Root || ev.Raw.TxHash != w.Tx || ev.Raw.BlockNumber != w.Block {
				t.Fatalf("Anchored event %d = {size %d root %x tx %s block %d}, want %+v", i, ev.Size, ev.Root, ev.Raw.TxHash, ev.Raw.BlockNumber, w)
			}
			matched++
		}
		hdr, err := client.HeaderByNumber(ctx, new(big.Int).SetUint64(ev.Raw.BlockNumber))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Timestamp != hdr.Time {
			t.Fatalf("Anchored timestamp %d, block time %d", ev.Timestamp, hdr.Time)
		}
	}
	if matched != len(want) {
		t.Fatalf("%d Anchored events, of which %d are the confirmed anchors %+v", len(got), matched, want)
	}
}
