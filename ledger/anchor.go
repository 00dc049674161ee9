package ledger

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
)

// Defaults of an Anchorer.
const (
	DefaultAnchorPeriod  = time.Hour        // production
	DevnetAnchorPeriod   = 10 * time.Second // devnet and demo
	DefaultConfirmations = 2
	defaultRetryMin      = time.Second
	defaultRetryMax      = time.Minute
	defaultPoll          = 2 * time.Second
	anchorRPCTimeout     = 30 * time.Second
)

// ErrNotAnchorer is returned (wrapped) when the contract refuses the anchorer's address
// for the log: the contract owner has not registered it (ledger.Register), or moved
// the log to another address.
var ErrNotAnchorer = errors.New("ledger: this address is not the registered anchorer of the log")

// ErrLogMismatch is returned (wrapped) when the chain holds, for the log, an anchor the
// log's own checkpoint contradicts: the same size with another root, a larger size,
// or (with Anchorer.ReadTile) a smaller size whose root is not the log's root at that
// size. It means the log was rewritten, forked or restored from an old copy: an
// auditor will flag it too.
var ErrLogMismatch = errors.New("ledger: the log's checkpoint contradicts its anchor on chain")

// An Anchorer anchors one log's checkpoints on the IssuanceLog contract: every Period,
// if the log's latest checkpoint is larger than the log's latest anchor on chain, it
// sends anchor(LogID(LogOrigin), size, root) and follows the transaction until it has
// Confirmations blocks. RPC errors are retried with exponential backoff, from 1 s up
// to a minute (at most Period). A reorg that takes the anchor out of the chain — the
// transaction's block is no longer canonical and the transaction is gone, or the
// anchor on chain falls below one confirmed earlier — is logged and the anchor sent
// again.
//
// Set the exported fields, then call Run once. Status may be called at any time.
// Logs name the log, sizes, roots, blocks and transaction hashes: never the key.
//
// Caveats: one anchor is in flight at a time, and one that stays in the node's pool
// (underpriced, a nonce gap) is waited for, not replaced with a higher fee; the state
// is in memory, so a restarted anchorer starts from what the chain holds.
type Anchorer struct {
	Backend   Chain
	Contract  common.Address
	Key       *ecdsa.PrivateKey // the account the owner registered for the log
	LogOrigin string
	// ChainID, when not zero, is the only chain (by eth_chainId) the anchorer sends
	// anchors to: the one the trust bundle names. On another, every round fails.
	ChainID uint64
	// Checkpoint returns the log's latest (verified) checkpoint.
	Checkpoint func(ctx context.Context) (size uint64, root []byte, err error)
	// ReadTile reads the log's own tiles (client.FileFetcher's ReadTile on the log's
	// directory, say). With it, before each anchor the anchorer proves from the tiles
	// that the log extends the chain's latest anchor, and refuses to anchor a log that
	// does not (ErrLogMismatch): a log restored from an old copy and grown past the
	// anchored size would otherwise be anchored as a fork, which fails every audit for
	// good. Without it only a contradiction at the same or a larger size is caught.
	ReadTile client.TileFetcherFunc

	Period        time.Duration // default DefaultAnchorPeriod
	Confirmations uint64        // default DefaultConfirmations; 1 means "mined"
	// Poll is how often a sent anchor is checked until confirmed (default 2 s, at
	// most Period).
	Poll time.Duration
	// RetryMin and RetryMax bound the backoff after an RPC error (defaults 1 s and
	// 1 min, RetryMax at most Period).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger // default: discard

	mu      sync.Mutex
	status  AnchorStatus
	pending *pendingAnchor // only Run's goroutine touches it
	chainID *big.Int
	inited  bool
}

// An Anchor is an anchor of the log on chain.
type Anchor struct {
	Size  uint64
	Root  [32]byte
	Block uint64      // 0 when read from the contract's state rather than from a receipt
	Tx    common.Hash // zero when read from the contract's state
}

// AnchorStatus is what an Anchorer reports for metrics and health checks.
type AnchorStatus struct {
	LogSize   uint64 // size of the latest checkpoint seen
	Confirmed Anchor // the latest anchor with enough confirmations
	Pending   *Anchor
	Lag       uint64 // LogSize − Confirmed.Size (0 when the chain is ahead)
	Resent    int    // anchors sent again after a reorg dropped them
	LastError string
	LastCheck time.Time // when the chain was last read successfully
}

type pendingAnchor struct {
	Anchor
	blockHash common.Hash
}

// Status returns a snapshot of the anchorer's state.
func (a *Anchorer) Status() AnchorStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.status
	if s.Pending != nil {
		p := *s.Pending
		s.Pending = &p
	}
	if s.LogSize > s.Confirmed.Size {
		s.Lag = s.LogSize - s.Confirmed.Size
	}
	return s
}

func (a *Anchorer) init() error {
	if a.inited {
		return nil
	}
	switch {
	case a.Backend == nil:
		return errors.New("ledger: anchorer: no chain")
	case a.Key == nil:
		return errors.New("ledger: anchorer: no key")
	case a.Checkpoint == nil:
		return errors.New("ledger: anchorer: no checkpoint source")
	case a.LogOrigin == "":
		return errors.New("ledger: anchorer: no log origin")
	case a.Contract == (common.Address{}):
		return errors.New("ledger: anchorer: no contract address")
	}
	if a.Period <= 0 {
		a.Period = DefaultAnchorPeriod
	}
	if a.Confirmations == 0 {
		a.Confirmations = DefaultConfirmations
	}
	if a.Poll <= 0 {
		a.Poll = defaultPoll
	}
	a.Poll = min(a.Poll, a.Period)
	if a.RetryMin <= 0 {
		a.RetryMin = defaultRetryMin
	}
	if a.RetryMax <= 0 {
		a.RetryMax = defaultRetryMax
	}
	a.RetryMax = max(min(a.RetryMax, a.Period), a.RetryMin)
	if a.Logger == nil {
		a.Logger = slog.New(slog.DiscardHandler)
	}
	a.Logger = a.Logger.With("component", "anchor", "log_origin", a.LogOrigin)
	a.inited = true
	return nil
}

// Run anchors until ctx is cancelled, then returns nil. It returns an error only for
// an incomplete configuration; chain errors are logged, reported by Status and
// retried.
func (a *Anchorer) Run(ctx context.Context) error {
	if err := a.init(); err != nil {
		return err
	}
	a.Logger.Info("anchoring", "contract", a.Contract, "anchorer", Address(a.Key),
		"period", a.Period, "confirmations", a.Confirmations)
	if a.ReadTile == nil {
		a.Logger.Warn("the anchorer cannot read the log's tiles: a log that no longer extends its last anchor (restored from an old copy) is anchored as a fork unnoticed")
	}
	backoff := a.RetryMin
	for {
		err := a.Step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := a.Period
		if a.pending != nil {
			wait = a.Poll
		}
		switch {
		case err == nil:
			backoff = a.RetryMin
		case errors.Is(err, ErrNotAnchorer) || errors.Is(err, ErrLogMismatch):
			a.Logger.Error("anchoring refused; trying again next period", "err", err, "next", wait)
		default:
			wait = backoff
			a.Logger.Warn("anchoring failed; retrying", "err", err, "next", wait)
			backoff = min(2*backoff, a.RetryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Step does one round of Run: it follows the anchor in flight, if any, and else
// anchors the latest checkpoint if the log grew past the latest anchor. It does not
// wait for blocks. Run calls it; tests drive it directly. Do not call it while Run runs.
func (a *Anchorer) Step(ctx context.Context) error {
	if err := a.init(); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, anchorRPCTimeout)
	defer cancel()
	err := a.step(rctx)
	if err != nil && ctx.Err() != nil {
		return err // stopping: not a chain error
	}
	a.mu.Lock()
	if err != nil {
		a.status.LastError = err.Error()
	} else {
		a.status.LastError = ""
		a.status.LastCheck = time.Now()
	}
	a.mu.Unlock()
	return err
}

func (a *Anchorer) step(ctx context.Context) error {
	// The checkpoint first, before anything on chain: while the chain is unreachable
	// the log goes on growing, and Status's lag must show it.
	size, root, err := a.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("ledger: the log's checkpoint: %w", err)
	}
	if len(root) != 32 {
		return fmt.Errorf("ledger: the log's checkpoint root has %d bytes, want 32", len(root))
	}
	a.mu.Lock()
	a.status.LogSize = size
	a.mu.Unlock()

	if err := a.checkChain(ctx); err != nil { // before anything read from the chain counts
		return err
	}
	head, err := a.Backend.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("block number: %w", err)
	}
	if a.pending != nil {
		done, err := a.followPending(ctx, head)
		if err != nil || !done {
			return err
		}
	}
	var root32 [32]byte
	copy(root32[:], root)
	logID := LogID(a.LogOrigin)
	inst := Binding().Instance(a.Backend, a.Contract)
	latest := func(block uint64) (LatestOutput, error) {
		return bind.Call(inst, &bind.CallOpts{Context: ctx, BlockNumber: new(big.Int).SetUint64(block)},
			Binding().PackLatest(logID), Binding().UnpackLatest)
	}
	onChain, err := latest(head)
	if err != nil {
		return fmt.Errorf("latest anchor: %w", err)
	}
	// The anchor as of the deepest block that still counts as confirmed.
	var settled LatestOutput
	if head+1 >= a.Confirmations {
		if settled, err = latest(head + 1 - a.Confirmations); err != nil {
			return fmt.Errorf("latest anchor: %w", err)
		}
	}

	a.mu.Lock()
	a.status.LogSize = size
	confirmed := a.status.Confirmed
	switch {
	case settled.Size < confirmed.Size && onChain.Size < confirmed.Size:
		// A reorg took a confirmed anchor out of the chain.
		a.Logger.Warn("a reorg dropped a confirmed anchor; sending again",
			"size", confirmed.Size, "block", confirmed.Block, "tx", confirmed.Tx, "chain_size", onChain.Size)
		a.status.Resent++
		a.status.Confirmed = Anchor{Size: settled.Size, Root: settled.Root}
	case settled.Size > confirmed.Size:
		// Confirmed before this process started, or by a copy of our transaction.
		a.status.Confirmed = Anchor{Size: settled.Size, Root: settled.Root}
	}
	a.mu.Unlock()

	switch {
	case size == onChain.Size && size > 0 && root32 != onChain.Root:
		return fmt.Errorf("%w: at size %d the log's root is %x, the chain's %x", ErrLogMismatch, size, root32, onChain.Root)
	case size < onChain.Size:
		return fmt.Errorf("%w: the log has %d entries, the chain has an anchor at size %d", ErrLogMismatch, size, onChain.Size)
	case size == onChain.Size:
		return nil // nothing new
	}
	if err := a.extends(ctx, onChain, size, root); err != nil {
		return err
	}
	return a.send(ctx, inst, logID, size, root32)
}

// extends checks, with a consistency proof built from the log's tiles, that the log's
// tree at size (root) extends the chain's anchor of a smaller size: the same check an
// auditor makes, made before the anchor that would fail it. Without ReadTile, or with
// nothing anchored yet, there is nothing to check.
func (a *Anchorer) extends(ctx context.Context, onChain LatestOutput, size uint64, root []byte) error {
	if a.ReadTile == nil || onChain.Size == 0 {
		return nil
	}
	pb, err := client.NewProofBuilder(ctx, size, a.ReadTile)
	var proof [][]byte
	if err == nil {
		proof, err = pb.ConsistencyProof(ctx, onChain.Size, size)
	}
	if err != nil {
		// Not a mismatch: tiles being written, or a disk error. The next round retries.
		return fmt.Errorf("ledger: building the consistency proof from the anchor at %d to the log at %d from its tiles: %w", onChain.Size, size, err)
	}
	if err := merkleproof.VerifyConsistency(rfc6962.DefaultHasher, onChain.Size, size, proof, onChain.Root[:], root); err != nil {
		return fmt.Errorf("%w: the log at size %d (root %x) does not extend the chain's anchor at size %d (root %x): it was forked or restored from an old copy; anchoring it would make every audit fail",
			ErrLogMismatch, size, root, onChain.Size, onChain.Root)
	}
	return nil
}

// followPending checks the anchor in flight; done means it is settled (confirmed,
// failed or dropped) and the round may go on.
func (a *Anchorer) followPending(ctx context.Context, head uint64) (done bool, err error) {
	p := a.pending
	rcpt, err := a.Backend.TransactionReceipt(ctx, p.Tx)
	if indexing(err) {
		return false, nil // the node does not know yet: ask again
	}
	if errors.Is(err, ethereum.NotFound) {
		_, _, terr := a.Backend.TransactionByHash(ctx, p.Tx)
		switch {
		case indexing(terr):
			return false, nil
		case errors.Is(terr, ethereum.NotFound):
			if p.Block != 0 {
				a.Logger.Warn("a reorg dropped the anchor; sending again", "size", p.Size, "block", p.Block, "tx", p.Tx)
			} else {
				a.Logger.Warn("the anchor transaction is gone from the chain and the pool; sending again", "size", p.Size, "tx", p.Tx)
			}
			a.setPending(nil)
			a.mu.Lock()
			a.status.Resent++
			a.mu.Unlock()
			return true, nil
		case terr != nil:
			return false, fmt.Errorf("anchor transaction %s: %w", p.Tx, terr)
		}
		if p.Block != 0 {
			a.Logger.Warn("a reorg took the anchor out of its block; it waits to be mined again", "size", p.Size, "block", p.Block, "tx", p.Tx)
			p.Block, p.blockHash = 0, common.Hash{}
			a.setPending(p)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("receipt of %s: %w", p.Tx, err)
	}
	hdr, err := a.Backend.HeaderByNumber(ctx, rcpt.BlockNumber)
	if err != nil {
		return false, fmt.Errorf("block %d: %w", rcpt.BlockNumber, err)
	}
	if hdr.Hash() != rcpt.BlockHash {
		a.Logger.Warn("the anchor's block is no longer canonical; waiting", "size", p.Size, "block", rcpt.BlockNumber, "tx", p.Tx)
		p.Block, p.blockHash = 0, common.Hash{}
		a.setPending(p)
		return false, nil
	}
	block := rcpt.BlockNumber.Uint64()
	if p.blockHash != (common.Hash{}) && p.blockHash != rcpt.BlockHash {
		a.Logger.Warn("a reorg moved the anchor to another block", "size", p.Size, "from_block", p.Block, "block", block, "tx", p.Tx)
	}
	p.Block, p.blockHash = block, rcpt.BlockHash
	a.setPending(p)
	if rcpt.Status != types.ReceiptStatusSuccessful {
		a.setPending(nil)
		return true, fmt.Errorf("the anchor transaction %s failed on chain in block %d", p.Tx, block)
	}
	if head+1 < block+a.Confirmations {
		return false, nil
	}
	a.setPending(nil)
	a.mu.Lock()
	if p.Size > a.status.Confirmed.Size {
		a.status.Confirmed = p.Anchor
	}
	a.mu.Unlock()
	a.Logger.Info("anchor confirmed", "size", p.Size, "root", fmt.Sprintf("%x", p.Root), "block", block, "tx", p.Tx, "confirmations", head+1-block)
	return true, nil
}

// checkChain reads the chain's ID once, and fails while it is not ChainID (when set):
// the anchorer then neither trusts what that chain says of the log nor sends to it.
func (a *Anchorer) checkChain(ctx context.Context) error {
	if a.chainID != nil {
		return nil
	}
	id, err := a.Backend.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("chain ID: %w", err)
	}
	if err := matchChainID(id, a.ChainID); err != nil {
		return err
	}
	a.chainID = id
	return nil
}

func (a *Anchorer) send(ctx context.Context, inst *bind.BoundContract, logID [32]byte, size uint64, root [32]byte) error {
	opts := bind.NewKeyedTransactor(a.Key, a.chainID)
	opts.Context = ctx
	tx, err := bind.Transact(inst, opts, Binding().PackAnchor(logID, size, root))
	if err != nil {
		switch e := Revert(err).(type) {
		case *IssuanceLogNotAnchorer:
			return fmt.Errorf("%w: the contract %s refuses anchors of %q (log ID %x) from %s; its owner must register this address",
				ErrNotAnchorer, a.Contract, a.LogOrigin, logID, opts.From)
		case *IssuanceLogSizeNotGrowing:
			// The chain moved since it was read (an earlier anchor of ours mined meanwhile).
			a.Logger.Info("the chain already has a larger anchor", "size", size, "chain_size", e.Last)
			return nil
		}
		return fmt.Errorf("sending the anchor: %w", err)
	}
	p := &pendingAnchor{Anchor: Anchor{Size: size, Root: root, Tx: tx.Hash()}}
	a.setPending(p)
	a.Logger.Info("anchor sent", "size", size, "root", fmt.Sprintf("%x", root), "tx", tx.Hash(), "nonce", tx.Nonce())
	return nil
}

func (a *Anchorer) setPending(p *pendingAnchor) {
	a.pending = p
	a.mu.Lock()
	defer a.mu.Unlock()
	if p == nil {
		a.status.Pending = nil
		return
	}
	cp := p.Anchor
	a.status.Pending = &cp
}
