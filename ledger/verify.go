package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/transparency-dev/tessera/client"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
)

// A Receipt is what a client kept from a DTA for one share: the DTA's log entry and
// its signed promise that the entry is at Index in the log Origin.
type Receipt struct {
	DTA     uint32
	Origin  string
	Entry   []byte
	Index   uint64 // the promised leaf index
	Promise *wire.Promise
	// Issued is when the share was issued, by the client's clock if it recorded it
	// (the entry's own time otherwise); zero: unknown, never overdue.
	Issued time.Time
}

// ProofBundleVersion is the version of the ProofBundle format. Version 2 added the
// consistency proof from each anchor to the DTA's checkpoint; version 1 bundles are
// refused (fetch them again).
const ProofBundleVersion = 2

// A ProofBundle holds, for a client's receipts, the inclusion proofs under each DTA's
// latest anchor on chain: what VerifyProofBundle checks offline. It is public data.
type ProofBundle struct {
	Version  int            `json:"version"`
	Domain   string         `json:"domain"`
	Contract common.Address `json:"contract"`
	// ChainID is the chain's eth_chainId when the proofs were fetched (absent from
	// proof bundles made before it was recorded).
	ChainID uint64      `json:"chain_id,omitempty"`
	Fetched time.Time   `json:"fetched"`
	DTAs    []DTAProofs `json:"dtas"`
}

// DTAProofs are one DTA's latest anchor and the proofs of the receipts it issued.
type DTAProofs struct {
	DTA          uint32        `json:"dta"`
	Origin       string        `json:"origin"`
	AnchoredSize uint64        `json:"anchored_size"`           // 0: not anchored yet
	AnchoredRoot hexutil.Bytes `json:"anchored_root,omitempty"` // 32 bytes
	Block        uint64        `json:"block,omitempty"`         // of the anchor's Anchored event
	Tx           common.Hash   `json:"tx"`
	// Checkpoint is the DTA's signed checkpoint when the bundle was fetched.
	Checkpoint string `json:"checkpoint"`
	// Consistency proves the anchored tree a prefix of the checkpoint's (empty when
	// nothing is anchored or the checkpoint is the anchor's size): so the anchored
	// root, which the entries' proofs are under, is one the DTA signed a log for.
	Consistency []hexutil.Bytes `json:"consistency,omitempty"`
	Entries     []EntryProof    `json:"entries"`
}

// An EntryProof is the inclusion proof of one entry under its DTA's anchor; Pending
// entries (index at or past the anchored size) have none.
type EntryProof struct {
	Index   uint64          `json:"index"`
	Entry   []byte          `json:"entry"`
	Pending bool            `json:"pending,omitempty"`
	Proof   []hexutil.Bytes `json:"proof,omitempty"`
}

// ProofConfig says where FetchProofBundle reads the anchors and the logs.
type ProofConfig struct {
	Bundle   *bundle.Bundle
	Chain    AuditChain
	Contract common.Address
	HTTP     *http.Client // for the DTAs' logs; default http.DefaultClient
	// Confirmations, FromBlock and BlockRange say which anchors count and where to look
	// for the anchor's Anchored event, and ChainTimeout bounds each call to Chain, as in
	// AuditConfig.
	Confirmations uint64
	FromBlock     uint64
	BlockRange    uint64
	ChainTimeout  time.Duration
}

// FetchProofBundle reads each DTA's latest anchor on chain and its signed checkpoint,
// and builds from the DTA's tiles the inclusion proof, under the anchor, of every
// receipt's entry. Entries at or past the anchored size are listed as pending. It
// checks neither the entries nor the proofs: VerifyProofBundle does, offline.
func FetchProofBundle(ctx context.Context, cfg ProofConfig, receipts []Receipt) (*ProofBundle, error) {
	if cfg.Bundle == nil || cfg.Chain == nil {
		return nil, errors.New("proofs: a bundle and a chain are required")
	}
	for _, r := range receipts {
		if !slices.ContainsFunc(cfg.Bundle.DTAs, func(d bundle.DTA) bool { return d.Index == r.DTA }) {
			return nil, fmt.Errorf("proofs: a receipt is from DTA %d, not in the bundle", r.DTA)
		}
	}
	acfg := AuditConfig{Bundle: cfg.Bundle, Chain: newTimedChain(cfg.Chain, cfg.ChainTimeout), Contract: cfg.Contract, Confirmations: cfg.Confirmations, FromBlock: cfg.FromBlock,
		BlockRange: cfg.BlockRange, HTTP: auditLimitedClient(cfg.HTTP)}
	if acfg.BlockRange == 0 {
		acfg.BlockRange = 10_000
	}
	id, err := chainID(ctx, acfg.Chain, cfg.Bundle, cfg.Contract)
	if err != nil {
		return nil, fmt.Errorf("proofs: %w", err)
	}
	head, err := confirmedHead(ctx, acfg.Chain, cfg.Confirmations)
	if err != nil {
		return nil, fmt.Errorf("proofs: chain head: %w", err)
	}
	if err := CheckCode(ctx, acfg.Chain, cfg.Contract, new(big.Int).SetUint64(head)); err != nil {
		return nil, fmt.Errorf("proofs: %w", err)
	}
	pb := &ProofBundle{Version: ProofBundleVersion, Domain: cfg.Bundle.Domain, Contract: cfg.Contract, ChainID: id, Fetched: time.Now().UTC()}
	for i := range cfg.Bundle.DTAs {
		rec := &cfg.Bundle.DTAs[i]
		var mine []Receipt
		for _, r := range receipts {
			if r.DTA == rec.Index {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			continue
		}
		d, err := fetchDTAProofs(ctx, acfg, rec, head, mine)
		if err != nil {
			return nil, fmt.Errorf("proofs: DTA %d log %s: %w", rec.Index, rec.LogOrigin, err)
		}
		pb.DTAs = append(pb.DTAs, *d)
	}
	return pb, nil
}

func fetchDTAProofs(ctx context.Context, cfg AuditConfig, rec *bundle.DTA, head uint64, receipts []Receipt) (*DTAProofs, error) {
	logID := LogID(rec.LogOrigin)
	latest, err := readLatest(ctx, cfg, logID, head)
	if err != nil {
		return nil, err
	}
	d := &DTAProofs{DTA: rec.Index, Origin: rec.LogOrigin, AnchoredSize: latest.Size}
	if latest.Size > 0 {
		d.AnchoredRoot = latest.Root[:]
		anchors, _, _, stopped, err := auditReadAnchors(ctx, cfg, logID, head)
		if err != nil {
			return nil, err
		}
		if stopped != "" {
			return nil, errors.New(stopped)
		}
		for _, a := range anchors {
			if a.Size == latest.Size && a.Root == latest.Root {
				d.Block, d.Tx = a.Block, a.Tx
			}
		}
		if d.Block == 0 {
			return nil, fmt.Errorf("no Anchored event for the latest anchor at size %d (is the first block searched too late?)", latest.Size)
		}
	}

	pub, err := rec.PublicKey()
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(strings.TrimSuffix(rec.URL, "/") + "/v1/log/")
	if err != nil {
		return nil, fmt.Errorf("log URL: %w", err)
	}
	fetcher, err := client.NewHTTPFetcher(base, cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("log URL: %w", err)
	}
	raw, err := fetcher.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot read the checkpoint: %w", err)
	}
	cp, err := translog.ParseCheckpoint(raw, rec.LogOrigin, pub)
	if err != nil {
		return nil, fmt.Errorf("the checkpoint does not verify with the DTA's key in the bundle: %w", err)
	}
	if cp.Size < latest.Size {
		return nil, fmt.Errorf("anchored size %d is beyond the checkpoint at %d: the log was truncated or rolled back", latest.Size, cp.Size)
	}
	d.Checkpoint = string(raw)
	if latest.Size > 0 && cp.Size > latest.Size {
		cb, err := client.NewProofBuilder(ctx, cp.Size, fetcher.ReadTile)
		if err != nil {
			return nil, fmt.Errorf("proof builder at size %d: %w", cp.Size, err)
		}
		proof, err := cb.ConsistencyProof(ctx, latest.Size, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("consistency proof from %d to %d: %w", latest.Size, cp.Size, err)
		}
		for _, h := range proof {
			d.Consistency = append(d.Consistency, h)
		}
	}

	var builder *client.ProofBuilder
	for _, r := range receipts {
		ep := EntryProof{Index: r.Index, Entry: r.Entry}
		if r.Index >= latest.Size {
			ep.Pending = true
		} else {
			if builder == nil {
				if builder, err = client.NewProofBuilder(ctx, latest.Size, fetcher.ReadTile); err != nil {
					return nil, fmt.Errorf("proof builder at size %d: %w", latest.Size, err)
				}
			}
			proof, err := builder.InclusionProof(ctx, r.Index)
			if err != nil {
				return nil, fmt.Errorf("inclusion proof of entry %d in %d: %w", r.Index, latest.Size, err)
			}
			for _, h := range proof {
				ep.Proof = append(ep.Proof, h)
			}
		}
		d.Entries = append(d.Entries, ep)
	}
	return d, nil
}

// Statuses of a receipt in a VerifyReport.
const (
	ReceiptIncluded = "included"
	ReceiptPending  = "pending"
	ReceiptFailed   = "FAILED"
)

// A ReceiptReport is the verification of one receipt.
type ReceiptReport struct {
	DTA    uint32
	Origin string
	Index  uint64
	Status string
	// AnchoredSize and Block are the anchor the entry is included under (included) or
	// not yet covered by (pending).
	AnchoredSize uint64
	Block        uint64
	Reason       string // why it FAILED
}

// A VerifyReport is the verification of all of a client's receipts.
type VerifyReport struct {
	Domain   string
	Receipts []ReceiptReport
}

// OK reports whether no receipt FAILED.
func (r *VerifyReport) OK() bool {
	return !slices.ContainsFunc(r.Receipts, func(x ReceiptReport) bool { return x.Status == ReceiptFailed })
}

// Failures lists the FAILED receipts, each naming its DTA and index.
func (r *VerifyReport) Failures() []string {
	var out []string
	for _, x := range r.Receipts {
		if x.Status == ReceiptFailed {
			out = append(out, fmt.Sprintf("DTA %d log %s entry %d: %s", x.DTA, x.Origin, x.Index, x.Reason))
		}
	}
	return out
}

// VerifyProofBundle checks, offline, every receipt against pb: the receipt's promise is
// signed by its DTA's key in b and promises this entry at this index in this DTA's
// log, and the entry is included at that index in the tree of the anchored size and
// root (RFC 6962 inclusion proof). Entries at or past the anchored size are pending,
// unless maxPending is not zero and the receipt was issued more than maxPending before
// pb was fetched: then its DTA has stopped anchoring or left the entry out of what it
// anchored, and the receipt FAILED. The anchors themselves are as read from the chain
// when pb was fetched. An error means pb cannot be used at all; what fails for a
// receipt is in the report.
func VerifyProofBundle(pb *ProofBundle, b *bundle.Bundle, receipts []Receipt, maxPending time.Duration) (*VerifyReport, error) {
	if pb == nil || b == nil {
		return nil, errors.New("verify: a proof bundle and a trust bundle are required")
	}
	if pb.Version != ProofBundleVersion {
		return nil, fmt.Errorf("verify: proof bundle version %d, want %d", pb.Version, ProofBundleVersion)
	}
	if pb.Domain != b.Domain {
		return nil, fmt.Errorf("verify: the proof bundle is for domain %q, the trust bundle for %q", pb.Domain, b.Domain)
	}
	if a := b.Anchoring; a != nil && (pb.Contract != common.HexToAddress(a.Contract) || pb.ChainID != a.ChainID) {
		return nil, fmt.Errorf("verify: %w: the proofs were read from contract %s on chain %d, the trust bundle anchors at %s on chain %d (fetch them again)",
			ErrAnchoring, pb.Contract.Hex(), pb.ChainID, common.HexToAddress(a.Contract).Hex(), a.ChainID)
	}
	rep := &VerifyReport{Domain: b.Domain}
	for _, r := range receipts {
		rep.Receipts = append(rep.Receipts, verifyReceipt(pb, b, r, maxPending))
	}
	return rep, nil
}

func verifyReceipt(pb *ProofBundle, b *bundle.Bundle, r Receipt, maxPending time.Duration) ReceiptReport {
	rr := ReceiptReport{DTA: r.DTA, Origin: r.Origin, Index: r.Index, Status: ReceiptFailed}
	i := slices.IndexFunc(b.DTAs, func(d bundle.DTA) bool { return d.Index == r.DTA })
	if i < 0 {
		rr.Reason = "no such DTA in the trust bundle"
		return rr
	}
	rec := &b.DTAs[i]
	if r.Origin != rec.LogOrigin {
		rr.Reason = fmt.Sprintf("the receipt names log %q, the bundle %q", r.Origin, rec.LogOrigin)
		return rr
	}
	pub, err := rec.PublicKey()
	if err != nil {
		rr.Reason = err.Error()
		return rr
	}
	switch {
	case r.Promise == nil:
		rr.Reason = "the receipt has no promise"
		return rr
	case r.Promise.Origin != rec.LogOrigin || r.Promise.Index != r.Index:
		rr.Reason = fmt.Sprintf("the promise is for entry %d of log %q", r.Promise.Index, r.Promise.Origin)
		return rr
	}
	if err := r.Promise.Verify(pub, r.Entry); err != nil {
		rr.Reason = fmt.Sprintf("the DTA's promise does not verify for this entry: %v", err)
		return rr
	}
	j := slices.IndexFunc(pb.DTAs, func(d DTAProofs) bool { return d.DTA == r.DTA })
	if j < 0 {
		rr.Reason = "the proof bundle has nothing for this DTA: fetch the proofs again"
		return rr
	}
	d := &pb.DTAs[j]
	if d.Origin != rec.LogOrigin {
		rr.Reason = fmt.Sprintf("the proof bundle is for log %q", d.Origin)
		return rr
	}
	// The DTA's own signed checkpoint, checked offline: the DTA vouched for a log at
	// least as large as the anchor the proofs are against.
	cp, err := translog.ParseCheckpoint([]byte(d.Checkpoint), rec.LogOrigin, pub)
	if err != nil {
		rr.Reason = fmt.Sprintf("the saved checkpoint does not verify with the DTA's key: %v", err)
		return rr
	}
	if cp.Size < d.AnchoredSize {
		rr.Reason = fmt.Sprintf("the saved checkpoint (size %d) is older than the anchor (size %d)", cp.Size, d.AnchoredSize)
		return rr
	}
	if d.AnchoredSize > 0 {
		proof := make([][]byte, len(d.Consistency))
		for n, h := range d.Consistency {
			proof[n] = h
		}
		if err := translog.VerifyConsistency(d.AnchoredSize, cp.Size, proof, d.AnchoredRoot, cp.Hash); err != nil {
			rr.Reason = fmt.Sprintf("the anchored tree (size %d) is not a prefix of the log the DTA signed (size %d): the proof bundle or the log was altered: %v",
				d.AnchoredSize, cp.Size, err)
			return rr
		}
	}
	rr.AnchoredSize, rr.Block = d.AnchoredSize, d.Block
	k := slices.IndexFunc(d.Entries, func(e EntryProof) bool { return e.Index == r.Index })
	if k < 0 {
		rr.Reason = "the proof bundle has no proof for this entry: fetch the proofs again"
		return rr
	}
	ep := &d.Entries[k]
	if r.Index >= d.AnchoredSize {
		// An entry's own time (a receipt without the client's) is the DTA's word: one
		// dated after the fetch would never be overdue.
		if maxPending > 0 && r.Issued.After(pb.Fetched.Add(maxEntryClockSkew)) {
			rr.Reason = fmt.Sprintf("issued at %s, after the proofs were fetched (%s): the DTA dated its entry ahead, or a clock was wrong (this machine's, when it received the share)",
				r.Issued.UTC().Format(time.RFC3339), pb.Fetched.UTC().Format(time.RFC3339))
			return rr
		}
		if age := pb.Fetched.Sub(r.Issued); maxPending > 0 && !r.Issued.IsZero() && age > maxPending {
			rr.Reason = fmt.Sprintf("not anchored %s after its issuance (%s): the DTA has stopped anchoring, or left this entry out of its anchored log",
				age.Truncate(time.Minute), r.Issued.UTC().Format(time.RFC3339))
			return rr
		}
		rr.Status = ReceiptPending
		return rr
	}
	if ep.Pending {
		rr.Reason = fmt.Sprintf("the proof bundle lists the entry as pending, but it is below the anchored size %d", d.AnchoredSize)
		return rr
	}
	if !bytes.Equal(ep.Entry, r.Entry) {
		rr.Reason = "the proof bundle holds another entry at this index"
		return rr
	}
	proof := make([][]byte, len(ep.Proof))
	for n, h := range ep.Proof {
		proof[n] = h
	}
	if err := translog.VerifyInclusion(r.Entry, r.Index, d.AnchoredSize, proof, d.AnchoredRoot); err != nil {
		rr.Reason = fmt.Sprintf("not included at index %d under the root anchored at size %d (block %d): %v", r.Index, d.AnchoredSize, d.Block, err)
		return rr
	}
	rr.Status = ReceiptIncluded
	return rr
}

// MarshalProofBundle encodes pb as indented JSON.
func MarshalProofBundle(pb *ProofBundle) ([]byte, error) {
	out, err := json.MarshalIndent(pb, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// ParseProofBundle decodes a proof bundle.
func ParseProofBundle(data []byte) (*ProofBundle, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var pb ProofBundle
	if err := d.Decode(&pb); err != nil {
		return nil, fmt.Errorf("proof bundle: %w", err)
	}
	if pb.Version != ProofBundleVersion {
		return nil, fmt.Errorf("proof bundle: version %d, want %d: fetch the proofs again", pb.Version, ProofBundleVersion)
	}
	return &pb, nil
}
