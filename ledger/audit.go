package ledger

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/transparency-dev/merkle/compact"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
)

// AuditChain is the read-only view of an EVM chain the auditor needs. *ethclient.Client and
// the simulated backend's Client() satisfy it.
type AuditChain interface {
	ChainID(ctx context.Context) (*big.Int, error)
	BlockNumber(ctx context.Context) (uint64, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	CallContract(ctx context.Context, call ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
	CodeAt(ctx context.Context, contract common.Address, blockNumber *big.Int) ([]byte, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
}

// AuditConfig says what to audit and how.
type AuditConfig struct {
	Bundle *bundle.Bundle // the domain's trust bundle: DTAs, their keys and log origins
	Chain  AuditChain
	// Contract is the IssuanceLog contract. When the bundle names its anchoring, the
	// audit fails unless Contract and Chain's chain ID are the ones it names.
	Contract common.Address
	// ChainTimeout bounds each call to Chain (default DefaultChainCallTimeout).
	ChainTimeout time.Duration
	// Confirmations is how many blocks an anchor needs, its own included, to count:
	// anchors are read as of block head + 1 − Confirmations, so that a reorganisation
	// of the newest blocks cannot remove one the audit relied on. 0 means 1 (the head).
	Confirmations uint64
	// FromBlock is the first block searched for anchors (the contract's deployment block;
	// default 0) and BlockRange the most blocks one eth_getLogs query spans (default 10,000).
	FromBlock  uint64
	BlockRange uint64
	// HTTP is for the DTAs' logs (default http.DefaultClient); its Timeout applies to
	// each try of a request. See auditfetch.go for how the auditor paces and retries.
	HTTP *http.Client
	// Progress, if set, is called (never concurrently) as entries are scanned, with the
	// entries scanned so far and the total to scan, which grows as each DTA's
	// checkpoint is read (the DTAs are audited at once).
	Progress func(done, total uint64)
	// Retrying, if set, is called (never concurrently) before the auditor waits to ask
	// DTA index again: status is the DTA's answer (429, 503, …; 0 for a connection cut
	// short), reason says it in words, wait is how long the auditor waits (the DTA's
	// Retry-After, when it gave one).
	Retrying func(index uint32, status int, reason string, wait time.Duration)
	// MaxLag, if not zero, makes a checkpoint more than MaxLag entries ahead of its DTA's
	// last anchor a problem; the entries past the last anchor are then not read.
	// Otherwise the lag is only reported.
	MaxLag uint64
	// MaxEntries bounds the entries of one DTA's log the audit reads (default
	// DefaultAuditMaxEntries): a log whose checkpoint or last anchor is larger fails its
	// audit unread. A DTA that anchors, with its own key, and signs a checkpoint of a
	// huge size and serves entries for it has a lag of 0, which MaxLag does not stop;
	// this does.
	MaxEntries uint64
	// DTATimeout, if not zero, bounds the audit of one DTA's log, from its checkpoint
	// and the tiles of the consistency proofs to its last entry: a DTA that answers
	// slowly, or serves entries for a huge checkpoint, fails its audit then, instead of
	// holding up the audit of every DTA.
	DTATimeout time.Duration
	// MaxAnchorAge, if not zero, makes a log a problem when its first entry past the
	// last anchor (its first entry, without anchors) was logged more than MaxAnchorAge
	// ago, by the entry's time and this machine's clock: the DTA has stopped anchoring,
	// and could still roll back what it logged since (see Seen). The DTA writes that
	// time itself, so two checks do without it: a log never anchored although its
	// checkpoint is not empty fails once the chain's head is more than MaxAnchorAge
	// past the block that first registered it (chain time, which the DTA does not set);
	// and, with Seen, a log fails when entries this auditor saw past the anchors more
	// than MaxAnchorAge ago (its clock) are still not anchored.
	MaxAnchorAge time.Duration
	// Seen are checkpoints this auditor verified in earlier audits, by log origin (each
	// DTAReport has the new one): a log whose checkpoint no longer extends the one seen
	// is a problem, whether or not that part was anchored. Without it, an auditor
	// cannot tell a rolled-back unanchored tail from one never logged.
	Seen map[string]SeenCheckpoint
	// Workers is how many entry bundles are fetched at once per DTA (default 8), and
	// so the most requests in flight to one DTA: after a 429 or 503 fewer, as many
	// again as the DTA answers without refusing.
	Workers uint
	// RequestsPerSecond, if not zero, paces the requests to each DTA at most this fast,
	// whatever its limit allows.
	RequestsPerSecond float64
	// MaxRetries is how many times one request is retried after a 429, 503, 502 or 504
	// or a connection cut short (default DefaultAuditMaxRetries; negative: never), and
	// MaxRetryAfter the longest Retry-After the auditor waits (default
	// DefaultAuditMaxRetryAfter): a DTA asking for more fails the audit of its log.
	MaxRetries    int
	MaxRetryAfter time.Duration
}

// A SeenCheckpoint is the size and root hash of a checkpoint an auditor verified.
// UnanchoredSize and UnanchoredSince, when set, say that at UnanchoredSince (the
// auditor's clock) it saw the log at UnanchoredSize, past its last anchor, and that no
// anchor has reached that size since: the age of the unanchored tail by a clock the
// DTA does not set (AuditConfig.MaxAnchorAge).
type SeenCheckpoint struct {
	Size            uint64    `json:"size"`
	Root            []byte    `json:"root"`
	UnanchoredSize  uint64    `json:"unanchored_size,omitempty"`
	UnanchoredSince time.Time `json:"unanchored_since,omitzero"`
}

// An AuditAnchor is one Anchored event of a log.
type AuditAnchor struct {
	Size  uint64
	Root  [32]byte
	Time  time.Time // the block's timestamp
	Block uint64
	Tx    common.Hash
}

// Statuses of a DTA in a Report.
const (
	AuditOK         = "ok"
	AuditUnanchored = "unanchored" // no anchor yet (a problem only under MaxLag)
	AuditFailed     = "FAILED"
)

// A DTAReport is the audit of one DTA's log.
type DTAReport struct {
	Index          uint32
	Origin         string
	URL            string
	Anchors        []AuditAnchor
	CheckpointSize uint64 // the DTA's current signed checkpoint
	CheckpointRoot []byte
	Scanned        uint64 // entries read and checked
	Lag            uint64 // CheckpointSize − the last anchored size
	// Throttled counts the DTA's 429 and 503 answers, Retries the requests sent again
	// (after those and after 502, 504 or a connection cut short), Waited the time spent
	// waiting before them.
	Throttled, Retries uint64
	Waited             time.Duration
	Status             string
	Problems           []string // each names the DTA and its log
	// Keys are the log's key entries (wire.KindKey), in log order: the sharings the DTA
	// served under, each with the bundle serial and the transcript hash to compare with
	// the published transcript.
	Keys []KeyEntry
	// Seen is what an auditor that keeps state (AuditConfig.Seen) keeps of this log
	// after this audit, if it found no problem: the checkpoint, and since when it has
	// seen the log run past its anchors.
	Seen SeenCheckpoint
	// ServerShares are the log's server-key entries (wire.KindServer), in log order:
	// each handed this DTA's share of the server key sQ to whoever holds its ticket's
	// seal key. Expect one per provisioning of the auth server (`polyroot server
	// provision`) after each sharing; any other is an alarm, because whoever holds the
	// registrar key can get the server key this way.
	ServerShares []ServerEntry
}

// A ServerEntry is a server-key entry of a DTA's log.
type ServerEntry struct {
	Index        uint64 // in the DTA's log
	Time         time.Time
	SealedSHA256 string // of the sealed share issued
	TicketSHA256 string
}

// A KeyEntry is a key entry of a DTA's log: the DTA started serving under the bundle
// with this serial, whose DKG or resharing transcript has this hash, with commitment
// C_i.
type KeyEntry struct {
	Index            uint64 // in the DTA's log
	Serial           uint64
	TranscriptSHA256 string
	Commitment       string
	Time             time.Time
}

// A Report is the audit of a whole domain.
type Report struct {
	Domain string
	// ChainID is the chain's eth_chainId, and AnchorsAt the block as of which the
	// anchors were read (the head less the confirmations asked for).
	ChainID   uint64
	AnchorsAt uint64
	DTAs      []DTAReport
}

// OK reports whether the audit found no problem.
func (r *Report) OK() bool { return len(r.Problems()) == 0 }

// Problems lists every problem found, DTA by DTA.
func (r *Report) Problems() []string {
	var p []string
	for _, d := range r.DTAs {
		p = append(p, d.Problems...)
	}
	return p
}

// An IdentityEntry is one log entry for an identity.
type IdentityEntry struct {
	DTA          uint32
	Origin       string
	Index        uint64 // in the DTA's log
	Kind         string // wire.KindClient, KindPermit or KindRevoke
	Slot         uint64 // permits
	Time         time.Time
	SealedSHA256 string // of the sealed share issued (none for revocations)
	TicketSHA256 string
}

// ProblemsError is AuditIdentity's error when the audit found problems: the entries it
// returns come from logs that did not all check out.
type ProblemsError struct{ Report *Report }

func (e *ProblemsError) Error() string {
	p := e.Report.Problems()
	return fmt.Sprintf("audit of %s: %d problem(s):\n  %s", e.Report.Domain, len(p), strings.Join(p, "\n  "))
}

// auditMaxProblems bounds the problems listed for one DTA (a rewritten log could
// otherwise give one per entry).
const auditMaxProblems = 50

// DefaultAuditMaxEntries is AuditConfig.MaxEntries by default: 30 million entries,
// about 8 minutes of reading at a DTA's default log rate limit (500 requests a second,
// two per 256 entries).
const DefaultAuditMaxEntries = 30_000_000

// Bounds on what the audit keeps of one log. Past one, the log fails its audit and is
// read no further: a hostile DTA (or RPC endpoint) could otherwise fill the auditor's
// memory with valid entries (anchors) of one kind. An honest log is far below them:
// one key entry per sharing, one server-key entry per provisioning of the auth server,
// an anchor an hour (2^18 is 30 years of them).
const (
	auditMaxKeyEntries      = 10_000
	auditMaxServerShares    = 10_000
	auditMaxIdentityEntries = 100_000 // of the identity audited, in one log
	auditMaxRevocations     = 1 << 20
	auditMaxAnchors         = 1 << 18
)

// auditMaxAnchorProofs bounds the anchors checked against the checkpoint with
// consistency proofs, the newest first: each may cost tiles of its own, and the scan
// recomputes every anchored root from the entries anyway.
const auditMaxAnchorProofs = 64

// maxEntryClockSkew is how far ahead of the auditor's (or client's) clock an entry's
// time may be before it is a problem: the clocks of DTAs and auditors differ a little.
const maxEntryClockSkew = 10 * time.Minute

// Audit checks every DTA log of cfg.Bundle against its anchors on chain:
//   - the DTA's current checkpoint is signed by its key in the bundle;
//   - if the bundle names its transcript (threshold mode), the log has the key entry of
//     the DTA's sharing in it (serial, transcript hash, C_i); every key entry is listed
//     in the DTA's report (Keys), and their serials never go down;
//   - the anchors' sizes grow, and the newest anchored roots (auditMaxAnchorProofs) are
//     consistent with the checkpoint (consistency proofs built from the log's tiles);
//   - every entry of the log is read, matches the leaf hash in the tiles and is a
//     well-formed entry of this DTA and domain, and the entries hash (RFC 6962) to the
//     root of every anchor and of the checkpoint;
//   - the anchors keep up: the lag is the checkpoint size less the last anchored size.
//
// What one DTA's audit costs is bounded: a log larger than MaxEntries is not read, one
// that contradicts an anchor is read no further, and past the bounds on the anchors
// and the entries of a kind it keeps (auditMaxAnchors and the others) a log fails;
// each DTA's audit runs at once with the others', within DTATimeout.
//
// An error means the audit could not run (chain unreachable, ctx done); what it finds
// wrong with a DTA is a problem in the Report, which is then not OK.
func Audit(ctx context.Context, cfg AuditConfig) (*Report, error) {
	r, _, err := audit(ctx, cfg, "")
	return r, err
}

// AuditIdentity audits as Audit does and returns every entry logged for idhash (hex
// SHA-256, pairing.IDHash; the logs name it by its wire.Subject) across all DTAs: client
// shares, permits and revocations, in DTA then log order. Every leaf read is parsed; one that does not parse is a problem.
// If the audit finds problems it returns the entries it could read and a *ProblemsError.
func AuditIdentity(ctx context.Context, cfg AuditConfig, idhash string) ([]IdentityEntry, error) {
	r, entries, err := AuditWithIdentity(ctx, cfg, idhash)
	if err != nil {
		return nil, err
	}
	if !r.OK() {
		return entries, &ProblemsError{Report: r}
	}
	return entries, nil
}

// AuditWithIdentity is Audit and AuditIdentity in one scan: the report, and the entries
// logged for idhash.
func AuditWithIdentity(ctx context.Context, cfg AuditConfig, idhash string) (*Report, []IdentityEntry, error) {
	var id [32]byte
	if b, err := hex.DecodeString(idhash); err != nil || len(b) != 32 || hex.EncodeToString(b) != idhash {
		return nil, nil, fmt.Errorf("audit: idhash %q is not 64 lower-case hex digits", idhash)
	} else {
		copy(id[:], b)
	}
	return audit(ctx, cfg, wire.Subject(id))
}

// dtaAudit is the state of one DTA's audit.
type dtaAudit struct {
	rep *DTAReport
	// For a log without anchors: unregistered says no address may anchor it (never
	// registered, or frozen); registered is the block of its last Registered event of
	// an anchorer (FromBlock when registered before it), and registeredAge how far the
	// confirmed head's time is past that block's (both the chain's clock), when
	// MaxAnchorAge asks for it.
	unregistered  bool
	registered    *uint64
	registeredAge time.Duration
	pub           []byte
	pacer         *auditPacer
	fetcher       *client.HTTPFetcher
	size          uint64 // checkpoint size, when the checkpoint verified
	ok            bool   // the checkpoint verified and no anchor contradicts it: scan the entries
	entries       []IdentityEntry
}

func (a *dtaAudit) problem(format string, args ...any) {
	switch n := len(a.rep.Problems); {
	case n < auditMaxProblems:
		a.rep.Problems = append(a.rep.Problems,
			fmt.Sprintf("DTA %d log %s: ", a.rep.Index, a.rep.Origin)+fmt.Sprintf(format, args...))
	case n == auditMaxProblems:
		a.rep.Problems = append(a.rep.Problems,
			fmt.Sprintf("DTA %d log %s: more problems not listed", a.rep.Index, a.rep.Origin))
	}
}

// audit audits every DTA; with a subject (wire.Subject of an idhash, or "" for none)
// it also collects the entries logged under it.
func audit(ctx context.Context, cfg AuditConfig, subject string) (*Report, []IdentityEntry, error) {
	if cfg.Bundle == nil || cfg.Chain == nil {
		return nil, nil, errors.New("audit: a bundle and a chain are required")
	}
	cfg.HTTP = auditLimitedClient(cfg.HTTP)
	cfg.Chain = newTimedChain(cfg.Chain, cfg.ChainTimeout)
	if cfg.BlockRange == 0 {
		cfg.BlockRange = 10_000
	}
	if cfg.Workers == 0 {
		cfg.Workers = 8
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultAuditMaxEntries
	}
	if f := cfg.Retrying; f != nil {
		var mu sync.Mutex
		cfg.Retrying = func(index uint32, status int, reason string, wait time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			f(index, status, reason, wait)
		}
	}
	id, err := chainID(ctx, cfg.Chain, cfg.Bundle, cfg.Contract)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	head, err := confirmedHead(ctx, cfg.Chain, cfg.Confirmations)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: chain head: %w", err)
	}
	if err := CheckCode(ctx, cfg.Chain, cfg.Contract, new(big.Int).SetUint64(head)); err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	var headTime uint64 // of the confirmed head, when MaxAnchorAge needs it
	if cfg.MaxAnchorAge > 0 {
		h, err := cfg.Chain.HeaderByNumber(ctx, new(big.Int).SetUint64(head))
		if err != nil {
			return nil, nil, fmt.Errorf("audit: block %d: %w", head, err)
		}
		headTime = h.Time
	}
	r := &Report{Domain: cfg.Bundle.Domain, ChainID: id, AnchorsAt: head, DTAs: make([]DTAReport, len(cfg.Bundle.DTAs))}
	audits := make([]*dtaAudit, len(cfg.Bundle.DTAs))
	// First every log's anchors, from the chain: an error there ends the audit.
	for i, rec := range cfg.Bundle.DTAs {
		r.DTAs[i] = DTAReport{Index: rec.Index, Origin: rec.LogOrigin, URL: rec.URL}
		audits[i] = &dtaAudit{rep: &r.DTAs[i]}
		if err := audits[i].readAnchors(ctx, cfg, rec.LogOrigin, head, headTime); err != nil {
			return nil, nil, fmt.Errorf("audit: DTA %d: %w", rec.Index, err)
		}
	}
	// Then every DTA at once, each within DTATimeout: its checkpoint and the consistency
	// proofs, then its entries. A DTA that is slow or never ends fails its own audit;
	// the others' go on. The total to scan grows as each checkpoint is read.
	var (
		mu          sync.Mutex
		done, total uint64
		wg          sync.WaitGroup
	)
	progress := func(more, n uint64) {
		if cfg.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		total += more
		done += n
		cfg.Progress(done, total)
	}
	for i, a := range audits {
		rec := &cfg.Bundle.DTAs[i]
		wg.Go(func() {
			dctx, cancel := context.WithCancel(ctx)
			if cfg.DTATimeout > 0 {
				dctx, cancel = context.WithTimeout(ctx, cfg.DTATimeout)
			}
			defer cancel()
			if !a.prepare(dctx, cfg, rec) {
				if ctx.Err() == nil {
					a.problem("reading the log did not finish within %s (cut off before its entries, reading its checkpoint or the tiles of the consistency proofs)", cfg.DTATimeout)
				}
				return
			}
			if !a.ok {
				return
			}
			progress(a.size, 0)
			a.scan(dctx, cfg, subject, func(n uint64) { progress(0, n) })
			if a.rep.Scanned < a.size && dctx.Err() != nil && ctx.Err() == nil {
				a.problem("reading the log did not finish within %s (%d of %d entries read)", cfg.DTATimeout, a.rep.Scanned, a.size)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("audit: %w", err)
	}
	var entries []IdentityEntry
	for _, a := range audits {
		entries = append(entries, a.entries...)
		if p := a.pacer; p != nil {
			a.rep.Throttled, a.rep.Retries, a.rep.Waited = p.throttled.Load(), p.retries.Load(), time.Duration(p.waited.Load())
		}
		switch {
		case len(a.rep.Problems) > 0:
			a.rep.Status = AuditFailed
		case len(a.rep.Anchors) == 0:
			a.rep.Status = AuditUnanchored
		default:
			a.rep.Status = AuditOK
		}
	}
	return r, entries, nil
}

// readAnchors reads the log's anchors as of block head (whose time is headTime), and
// for a log without any, when it was registered. Only chain errors are returned; the
// rest are problems.
func (a *dtaAudit) readAnchors(ctx context.Context, cfg AuditConfig, origin string, head, headTime uint64) error {
	anchors, latest, registered, stopped, err := auditReadAnchors(ctx, cfg, LogID(origin), head)
	if err != nil {
		return err
	}
	a.rep.Anchors = anchors
	if len(anchors) == 0 {
		// The contract's state says whether the log may be anchored at all; its event,
		// since when (the event may be before FromBlock: then it is at least that old).
		out, err := cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &cfg.Contract, Data: Binding().PackAnchorer(LogID(origin))}, new(big.Int).SetUint64(head))
		if err != nil {
			return fmt.Errorf("the log's anchorer: %w", err)
		}
		who, err := Binding().UnpackAnchorer(out)
		if err != nil {
			return fmt.Errorf("the log's anchorer: %w", err)
		}
		a.unregistered = who == (common.Address{})
		switch {
		case registered != nil:
			a.registered = &registered.BlockNumber
		case !a.unregistered:
			from := min(cfg.FromBlock, head)
			a.registered = &from
		}
		if a.registered != nil && cfg.MaxAnchorAge > 0 {
			h, err := cfg.Chain.HeaderByNumber(ctx, new(big.Int).SetUint64(*a.registered))
			if err != nil {
				return fmt.Errorf("block %d: %w", *a.registered, err)
			}
			if headTime > h.Time {
				a.registeredAge = time.Duration(headTime-h.Time) * time.Second
			}
		}
	}
	if stopped != "" {
		a.problem("%s", stopped)
		return nil
	}
	var lastRead uint64
	if n := len(anchors); n > 0 {
		lastRead = anchors[n-1].Size
	}
	if latest.Size != lastRead {
		a.problem("the contract's latest anchor is at size %d but the last Anchored event read is at %d: anchors are missing (is the first block searched too late?)", latest.Size, lastRead)
	}
	return nil
}

// prepare reads the DTA's checkpoint and checks the anchors against the log's tiles.
// What it finds wrong is a problem; it returns false only when ctx ended first.
func (a *dtaAudit) prepare(ctx context.Context, cfg AuditConfig, rec *bundle.DTA) bool {
	anchors := a.rep.Anchors
	pub, err := rec.PublicKey()
	if err != nil {
		a.problem("%v", err)
		return true
	}
	base, err := url.Parse(strings.TrimSuffix(rec.URL, "/") + "/v1/log/")
	if err != nil {
		a.problem("log URL: %v", err)
		return true
	}
	a.pacer = newAuditPacer(cfg.HTTP, cfg)
	if cfg.Retrying != nil {
		index := rec.Index
		a.pacer.onRetry = func(status int, reason string, wait time.Duration) { cfg.Retrying(index, status, reason, wait) }
	}
	if a.fetcher, err = client.NewHTTPFetcher(base, a.pacer.client()); err != nil {
		a.problem("log URL: %v", err)
		return true
	}
	raw, err := a.fetcher.ReadCheckpoint(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		a.problem("cannot read the checkpoint: %v", err)
		return true
	}
	cp, err := translog.ParseCheckpoint(raw, rec.LogOrigin, pub)
	if err != nil {
		a.problem("the checkpoint does not verify with the DTA's key in the bundle: %v", err)
		return true
	}
	a.rep.CheckpointSize, a.rep.CheckpointRoot = cp.Size, cp.Hash
	var lastAnchored uint64
	if n := len(anchors); n > 0 {
		lastAnchored = anchors[n-1].Size
	}
	if lastAnchored <= cp.Size {
		a.rep.Lag = cp.Size - lastAnchored
	}
	if cp.Size > cfg.MaxEntries || lastAnchored > cfg.MaxEntries {
		a.problem("the checkpoint is at %d and the last anchor at %d: more than the %d entries an audit reads of a log (--max-entries), so it was not read",
			cp.Size, lastAnchored, cfg.MaxEntries)
		return true
	}
	a.pub, a.size, a.ok = pub, cp.Size, true
	a.checkAnchoring(cfg, rec.LogOrigin, cp.Size, cp.Hash, lastAnchored)
	if cfg.MaxLag > 0 && a.rep.Lag > cfg.MaxLag {
		a.problem("anchors do not keep up: the checkpoint is at %d, %d entries past the last anchor (at most %d allowed)", cp.Size, a.rep.Lag, cfg.MaxLag)
		// The audit has failed; scanning the rest would let a checkpoint of any size
		// make it run for ever. The anchored part is still checked.
		a.size = cp.Size - a.rep.Lag
	}

	// Consistency proofs from the tiles of the anchored roots, and of the root seen
	// before, with the checkpoint: each is the log's root at its size. Roots consistent
	// with the checkpoint are consistent with each other, so no proof between anchors
	// is needed; one ProofBuilder (one tile cache) makes them all.
	var (
		pb    *client.ProofBuilder
		pbErr error
	)
	// consistent checks root, the log's at size (at most the checkpoint's), against the
	// checkpoint; it returns false only when ctx ended first.
	consistent := func(what string, size uint64, root []byte) bool {
		var proof [][]byte
		err := pbErr
		if size < cp.Size && err == nil {
			if pb == nil {
				pb, pbErr = client.NewProofBuilder(ctx, cp.Size, a.fetcher.ReadTile)
				err = pbErr
			}
			if err == nil {
				proof, err = pb.ConsistencyProof(ctx, size, cp.Size)
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return false
		case err != nil:
			a.problem("cannot check the %s at size %d against the checkpoint at %d: building the consistency proof from the log's tiles: %v", what, size, cp.Size, err)
		case merkleproof.VerifyConsistency(rfc6962.DefaultHasher, size, cp.Size, proof, root, cp.Hash) != nil:
			a.problem("%s at size %d is not consistent with the checkpoint at %d: the log was rewritten or forked", what, size, cp.Size)
			// The log fails; reading its entries would tell no more.
			a.ok = false
		}
		return true
	}
	below := len(anchors) // the anchors up to the checkpoint: sizes grow
	for below > 0 && anchors[below-1].Size > cp.Size {
		below--
	}
	for _, an := range anchors[below:] {
		a.problem("anchored size %d is beyond the checkpoint at %d: the log was truncated or rolled back", an.Size, cp.Size)
	}
	for _, an := range anchors[max(0, below-auditMaxAnchorProofs):below] {
		if !consistent("anchored root", an.Size, an.Root[:]) {
			return false
		}
	}
	if seen, ok := cfg.Seen[rec.LogOrigin]; ok && seen.Size > 0 {
		if seen.Size > cp.Size {
			a.problem("the checkpoint is at %d, below the size %d this auditor saw before: the log was truncated or rolled back", cp.Size, seen.Size)
		} else if !consistent("root seen before", seen.Size, seen.Root) {
			return false
		}
	}
	return true
}

// auditMaxResponse bounds what a DTA may send for one resource: an entry bundle is at
// most 256 entries of wire.MaxEntrySize bytes, a tile 256 hashes, a checkpoint a few
// lines. A larger answer is refused instead of filling the auditor's memory.
const auditMaxResponse = 1 << 20

// auditLimitedClient returns a copy of c (default http.DefaultClient) whose response
// bodies fail past auditMaxResponse bytes.
func auditLimitedClient(c *http.Client) *http.Client { return limitedClient(c, auditMaxResponse) }

// limitedClient returns a copy of c (default http.DefaultClient) whose response bodies
// fail past max bytes.
func limitedClient(c *http.Client, max int64) *http.Client {
	if c == nil {
		c = http.DefaultClient
	}
	lc := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	lc.Transport = limitTransport{rt, max}
	return &lc
}

type limitTransport struct {
	base http.RoundTripper
	max  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

type limitedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Is there more? Then the response is too large.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("response larger than %d bytes", b.max)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// auditReadAnchors returns the Anchored events of logID up to block head, in chain order,
// the contract's latest anchor at head, and the log's last Registered event of a
// non-zero anchorer (nil if none). It stops reading at the first anchor whose size does not grow (the contract
// refuses those: the RPC endpoint lies) and past auditMaxAnchors anchors, and then
// says why in stopped, without the latest anchor: an RPC endpoint could otherwise fill
// the auditor's memory, answer after answer.
func auditReadAnchors(ctx context.Context, cfg AuditConfig, logID [32]byte, head uint64) (anchors []AuditAnchor, latest LatestOutput, registered *types.Log, stopped string, err error) {
	b := Binding()
	topic := b.GetABI().Events[IssuanceLogAnchoredEventName].ID
	regTopic := b.GetABI().Events[IssuanceLogRegisteredEventName].ID
	for from := cfg.FromBlock; from <= head; from += cfg.BlockRange {
		to := head
		if head-from >= cfg.BlockRange {
			to = from + cfg.BlockRange - 1
		}
		logs, err := cfg.Chain.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(to),
			Addresses: []common.Address{cfg.Contract}, Topics: [][]common.Hash{{topic, regTopic}, {logID}},
		})
		if err != nil {
			return nil, LatestOutput{}, nil, "", fmt.Errorf("reading anchors in blocks %d-%d: %w", from, to, err)
		}
		slices.SortFunc(logs, func(x, y types.Log) int {
			if c := cmp.Compare(x.BlockNumber, y.BlockNumber); c != 0 {
				return c
			}
			return cmp.Compare(uint64(x.Index), uint64(y.Index))
		})
		for i := range logs {
			l := &logs[i]
			if l.Removed || l.Address != cfg.Contract || len(l.Topics) == 0 {
				continue
			}
			if l.Topics[0] == regTopic {
				// The last registration of an anchorer is kept: when the address that may
				// anchor the log now got that right (a freeze registers the zero address,
				// and a log pointed at a new anchorer gives it its own time to anchor).
				if len(l.Topics) > 2 && l.Topics[1] == logID && l.Topics[2] != (common.Hash{}) {
					registered = new(types.Log)
					*registered = *l
				}
				continue
			}
			ev, err := b.UnpackAnchoredEvent(l)
			if err != nil {
				return nil, LatestOutput{}, nil, "", fmt.Errorf("anchor in block %d: %w", l.BlockNumber, err)
			}
			if ev.LogID != logID {
				continue
			}
			switch n := len(anchors); {
			case n > 0 && ev.Size <= anchors[n-1].Size:
				return anchors, LatestOutput{}, nil, fmt.Sprintf("anchored sizes do not grow: %d after %d (block %d), which the contract refuses: is the RPC endpoint honest? The anchors after are not read",
					ev.Size, anchors[n-1].Size, l.BlockNumber), nil
			case n == auditMaxAnchors:
				return anchors, LatestOutput{}, nil, fmt.Sprintf("more than %d anchors (the last read in block %d): the anchors after are not read (does the DTA anchor that often, or does the RPC endpoint lie?)",
					auditMaxAnchors, anchors[n-1].Block), nil
			}
			anchors = append(anchors, AuditAnchor{Size: ev.Size, Root: ev.Root, Time: time.Unix(int64(ev.Timestamp), 0).UTC(),
				Block: l.BlockNumber, Tx: l.TxHash})
		}
		if to == head {
			break
		}
	}
	if latest, err = readLatest(ctx, cfg, logID, head); err != nil {
		return nil, LatestOutput{}, nil, "", err
	}
	return anchors, latest, registered, "", nil
}

// checkAnchoring checks that the log (its checkpoint at size, root) is anchored, by
// clocks its DTA does not set, and records what the auditor keeps of it (rep.Seen).
// The entries' own times, which the DTA writes, are checked by scan.
func (a *dtaAudit) checkAnchoring(cfg AuditConfig, origin string, size uint64, root []byte, lastAnchored uint64) {
	if len(a.rep.Anchors) == 0 && size > 0 {
		switch {
		case a.unregistered && cfg.Bundle.Anchoring != nil:
			// The bundle says the logs are anchored; this one cannot be.
			a.problem("the checkpoint is at %d and no address may anchor the log on the contract the trust bundle names (never registered, or frozen): its DTA cannot anchor it", size)
		case a.registered != nil && cfg.MaxAnchorAge > 0 && a.registeredAge > cfg.MaxAnchorAge:
			a.problem("the checkpoint is at %d and the log was never anchored, although it was registered by block %d, %s before the chain's head (at most %s allowed): its DTA does not anchor",
				size, *a.registered, a.registeredAge, cfg.MaxAnchorAge)
		}
	}
	a.rep.Seen = SeenCheckpoint{Size: size, Root: root}
	if size <= lastAnchored {
		return
	}
	seen := cfg.Seen[origin]
	if seen.UnanchoredSize <= lastAnchored || seen.UnanchoredSince.IsZero() || seen.UnanchoredSize > size {
		// A new tail (or what was seen was anchored since): its age counts from now.
		a.rep.Seen.UnanchoredSize, a.rep.Seen.UnanchoredSince = size, time.Now().UTC()
		return
	}
	a.rep.Seen.UnanchoredSize, a.rep.Seen.UnanchoredSince = seen.UnanchoredSize, seen.UnanchoredSince
	if age := time.Since(seen.UnanchoredSince); cfg.MaxAnchorAge > 0 && age > cfg.MaxAnchorAge {
		a.problem("this auditor saw the log at size %d %s ago, and its anchors still stop at %d (at most %s allowed): the DTA has stopped anchoring its log",
			seen.UnanchoredSize, age.Truncate(time.Minute), lastAnchored, cfg.MaxAnchorAge)
	}
}

// scan reads every entry of the log up to the checkpoint and checks it against the
// level-0 tiles, the anchored roots and the checkpoint root.
func (a *dtaAudit) scan(ctx context.Context, cfg AuditConfig, subject string, progress func(uint64)) {
	size := a.size
	if size == 0 {
		a.checkKey(cfg.Bundle)
		return
	}
	// The level-0 tile with the same index holds the leaf hashes of an entry bundle's
	// entries: fetch both together, in the stream's workers.
	var (
		mu    sync.Mutex
		tiles = map[uint64][]byte{}
	)
	getBundle := func(ctx context.Context, i uint64, p uint8) ([]byte, error) {
		b, err := a.fetcher.ReadEntryBundle(ctx, i, p)
		if err != nil {
			return nil, fmt.Errorf("entry bundle %d: %w", i, err)
		}
		t, err := a.fetcher.ReadTile(ctx, 0, i, p)
		if err != nil {
			return nil, fmt.Errorf("leaf tile %d: %w", i, err)
		}
		mu.Lock()
		tiles[i] = t
		mu.Unlock()
		return b, nil
	}
	treeSize := func(context.Context) (uint64, error) { return size, nil }

	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	anchors := a.rep.Anchors
	next := 0 // the next anchor to check
	for next < len(anchors) && anchors[next].Size == 0 {
		next++
	}
	domain, index := cfg.Bundle.Domain, a.rep.Index
	revokedAt := map[string]uint64{} // subject → the index of its revoke entry
	// full says, as a problem, that the log holds more entries of a kind than the audit
	// keeps, past which it reads no further.
	full := func(n, limit int, what string, i uint64) bool {
		if n < limit {
			return false
		}
		a.problem("more than %d %s (at entry %d): the audit keeps no more, and reads the log no further", limit, what, i)
		a.rep.Scanned = i
		return true
	}
	firstUnanchored, datedAhead := uint64(0), false
	if n := len(anchors); n > 0 {
		firstUnanchored = anchors[n-1].Size
	}
	for b, err := range client.EntryBundles(ctx, cfg.Workers, treeSize, getBundle, 0, size) {
		if err != nil {
			if ctx.Err() == nil { // else the caller says why (DTATimeout, or the audit's end)
				a.problem("reading the entries at %d: %v", rng.End(), err)
			}
			return
		}
		ri := b.RangeInfo
		mu.Lock()
		rawTile := tiles[ri.Index]
		delete(tiles, ri.Index)
		mu.Unlock()
		var eb api.EntryBundle
		if err := eb.UnmarshalText(b.Data); err != nil {
			a.problem("entry bundle %d does not parse: %v", ri.Index, err)
			return
		}
		var tile api.HashTile
		if err := tile.UnmarshalText(rawTile); err != nil {
			a.problem("leaf tile %d does not parse: %v", ri.Index, err)
			return
		}
		first, end := uint64(ri.First), uint64(ri.First)+uint64(ri.N)
		if uint64(len(eb.Entries)) < end || uint64(len(tile.Nodes)) < end {
			a.problem("entry bundle %d has %d entries and its tile %d hashes, want %d", ri.Index, len(eb.Entries), len(tile.Nodes), end)
			return
		}
		for j := first; j < end; j++ {
			i := ri.Index*layout.EntryBundleWidth + j
			leaf := eb.Entries[j]
			h := wire.LeafHash(leaf)
			if string(h) != string(tile.Nodes[j]) {
				a.problem("entry %d differs from its leaf hash in the log's tiles: the entry or the tile was rewritten", i)
			}
			if err := rng.Append(h, nil); err != nil {
				a.problem("rebuilding the tree at %d: %v", i, err)
				return
			}
			for next < len(anchors) && anchors[next].Size == rng.End() {
				root, err := rng.GetRootHash(nil)
				if err != nil {
					a.problem("rebuilding the tree at %d: %v", rng.End(), err)
					return
				}
				if string(root) != string(anchors[next].Root[:]) {
					a.problem("the log's entries up to size %d do not hash to the root anchored at that size (block %d): the log was rewritten or forked", rng.End(), anchors[next].Block)
					// The log fails; the rest of it would tell no more.
					a.rep.Scanned = rng.End()
					return
				}
				next++
			}
			e, err := wire.ParseEntry(leaf)
			if err != nil {
				a.problem("entry %d is not a valid issuance entry: %v", i, err)
				continue
			}
			if e.DTA != index || e.Domain != domain {
				a.problem("entry %d is for DTA %d of %q, not this DTA of %q", i, e.DTA, e.Domain, domain)
			}
			// The DTA writes the entry's time: one ahead of the auditor's clock could keep
			// the staleness check below quiet for as long as it is ahead, so it is checked
			// with it. (The first such entry is the problem: a clock that is ahead dates
			// every later entry so.)
			if at := time.Unix(e.Time, 0); cfg.MaxAnchorAge > 0 && !datedAhead && time.Until(at) > maxEntryClockSkew {
				datedAhead = true
				a.problem("entry %d is dated %s, in the future: the DTA dates entries ahead (to hide that it stopped anchoring?), or its clock or this one is wrong",
					i, at.UTC().Format(time.RFC3339))
			}
			if i == firstUnanchored && cfg.MaxAnchorAge > 0 {
				if age := time.Since(time.Unix(e.Time, 0)); age > cfg.MaxAnchorAge {
					a.problem("entry %d, the first past the last anchor, was logged %s ago (at most %s allowed): the DTA has stopped anchoring its log",
						i, age.Truncate(time.Minute), cfg.MaxAnchorAge)
				}
			}
			switch e.Kind {
			case wire.KindKey:
				if full(len(a.rep.Keys), auditMaxKeyEntries, "key entries", i) {
					return
				}
				a.rep.Keys = append(a.rep.Keys, KeyEntry{Index: i, Serial: e.Serial, TranscriptSHA256: e.TranscriptSHA256,
					Commitment: e.Commitment, Time: time.Unix(e.Time, 0).UTC()})
			case wire.KindServer:
				if full(len(a.rep.ServerShares), auditMaxServerShares, "server-key entries", i) {
					return
				}
				a.rep.ServerShares = append(a.rep.ServerShares, ServerEntry{Index: i, Time: time.Unix(e.Time, 0).UTC(),
					SealedSHA256: e.SealedSHA256, TicketSHA256: e.TicketSHA256})
			case wire.KindRevoke:
				if _, seen := revokedAt[e.Subject]; !seen {
					if full(len(revokedAt), auditMaxRevocations, "revoked identities", i) {
						return
					}
					revokedAt[e.Subject] = i
				}
			case wire.KindClient, wire.KindPermit:
				// A revocation is for good (a new enrolment has a new idhash): an honest
				// DTA logs no share of the identity after it.
				if r, revoked := revokedAt[e.Subject]; revoked {
					a.problem("entry %d issues a %s share to identity %s, revoked at entry %d", i, e.Kind, e.Subject, r)
				}
			}
			if subject != "" && e.Subject == subject {
				if full(len(a.entries), auditMaxIdentityEntries, "entries of the identity", i) {
					return
				}
				a.entries = append(a.entries, IdentityEntry{DTA: index, Origin: a.rep.Origin, Index: i, Kind: e.Kind,
					Slot: e.Slot, Time: time.Unix(e.Time, 0).UTC(), SealedSHA256: e.SealedSHA256, TicketSHA256: e.TicketSHA256})
			}
		}
		a.rep.Scanned = rng.End()
		progress(uint64(ri.N))
	}
	if rng.End() != size {
		a.problem("read %d entries, the checkpoint has %d", rng.End(), size)
		return
	}
	// Unless the scan stopped at the last anchor (MaxLag), the entries make the
	// checkpoint's root.
	if size == a.rep.CheckpointSize {
		root, err := rng.GetRootHash(nil)
		if err != nil {
			a.problem("rebuilding the tree: %v", err)
			return
		}
		if string(root) != string(a.rep.CheckpointRoot) {
			a.problem("the log's entries do not hash to its signed checkpoint root at size %d: entries were rewritten", size)
		}
	}
	a.checkKey(cfg.Bundle)
}

// checkKey checks, for a bundle that names its transcript, that the log has the key
// entry of this DTA's sharing in it: the bundle's serial and transcript hash and the
// DTA's commitment. Without one the DTA has not served under the audited bundle (not
// reloaded yet) or its log leaves out the sharing it serves under.
func (a *dtaAudit) checkKey(b *bundle.Bundle) {
	// Serials only grow: a key entry with a lower serial than one before it is a DTA
	// that went back to an older sharing (rolled back, or serving a bundle it should
	// have left), one with the same serial and another transcript a second sharing
	// under one serial.
	for j := 1; j < len(a.rep.Keys); j++ {
		prev, k := a.rep.Keys[j-1], a.rep.Keys[j]
		switch {
		case k.Serial < prev.Serial:
			a.problem("key entry %d names serial %d after serial %d (entry %d): the DTA went back to an older sharing", k.Index, k.Serial, prev.Serial, prev.Index)
		case k.Serial == prev.Serial && k.TranscriptSHA256 != prev.TranscriptSHA256:
			a.problem("key entries %d and %d name two transcripts under serial %d", prev.Index, k.Index, k.Serial)
		}
	}
	rec, ok := b.Find(a.rep.Index)
	if b.TranscriptSHA256 == "" || !ok {
		return
	}
	for _, k := range a.rep.Keys {
		if k.Serial == b.Serial && k.TranscriptSHA256 == b.TranscriptSHA256 && k.Commitment == rec.Commitment {
			return
		}
	}
	a.problem("no key entry names the bundle's serial %d, transcript %s and C_%d: the DTA has not served under this bundle (reload it) or its log leaves the sharing out",
		b.Serial, b.TranscriptSHA256, rec.Index)
}
