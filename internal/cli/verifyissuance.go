package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/ledger"
)

// proofsFile is the default proof bundle in a client directory.
const proofsFile = "proofs.json"

// defaultMaxPending is how long a receipt may stay unanchored before verify-issuance
// fails it: a day of the DTAs' default hourly anchoring.
const defaultMaxPending = 24 * time.Hour

// maxProofsFile bounds the proof bundle read.
const maxProofsFile = 32 << 20

func clientVerifyIssuanceCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "verify-issuance",
		Usage: "check that the DTAs logged every share they issued to this client, under an anchor on chain",
		UsageText: "polyroot client verify-issuance [--dir DIR] --fetch --rpc-url URL [--contract ADDR] [--proofs FILE]\n" +
			"   polyroot client verify-issuance [--dir DIR] [--proofs FILE]\n\n" +
			"Example:\n" +
			"   polyroot client verify-issuance --fetch --rpc-url https://rpc.example.org --contract 0x5FbD…0aa3\n" +
			"   polyroot client verify-issuance",
		Description: "At enrolment and permit renewal the client keeps, for every share, the DTA's log\n" +
			"entry and its signed promise (receipts, in the token file).\n\n" +
			"With --fetch it reads each DTA's latest anchor from the IssuanceLog contract and\n" +
			"its signed checkpoint and tiles, builds the inclusion proof of every receipt under\n" +
			"that anchor, and writes the proof bundle to --proofs (default proofs.json in the\n" +
			"client directory; public data, mode 0644). It does not verify.\n\n" +
			"Without --fetch it verifies the saved proof bundle offline, contacting nothing:\n" +
			"each promise against its DTA's key in the pinned trust bundle, and each entry's\n" +
			"inclusion proof against the anchored size and root. It prints one line per receipt:\n" +
			"included (under the anchor of that size, in that block), pending (issued after the\n" +
			"latest anchor: fetch again later) or FAILED with the reason, and exits with status\n" +
			"1 if any receipt FAILED. A receipt still pending --max-pending (default 24h) after\n" +
			"the client received it FAILED: DTAs anchor hourly by default, so its DTA has stopped\n" +
			"anchoring or left the entry out of what it anchors. The anchors are as read from\n" +
			"the chain at fetch time. When the pinned trust bundle names its anchoring, --contract\n" +
			"defaults to its contract, and both fetching and verifying refuse another contract\n" +
			"or chain.",
		Flags: []ucli.Flag{
			dirFlag(),
			&ucli.BoolFlag{Name: "fetch", Usage: "build the proof bundle from the chain and the DTAs (no verification)"},
			&ucli.StringFlag{Name: "proofs", Usage: "the proof bundle `FILE` (default: proofs.json in the client directory)", TakesFile: true},
			&ucli.StringFlag{Name: "rpc-url", Usage: "with --fetch: the chain's JSON-RPC `URL`", Sources: ucli.NewValueSourceChain(envVar("POLYROOT_RPC_URL"))},
			&ucli.StringFlag{Name: "contract", Usage: "with --fetch: the IssuanceLog contract's `ADDRESS` (0x…; default: the one the bundle names)",
				Sources: ucli.NewValueSourceChain(envVar("POLYROOT_CONTRACT"))},
			&ucli.Uint64Flag{Name: "from-block", Usage: "with --fetch: search for anchors from block `N` (the contract's deployment)"},
			confirmationsFlag("with --fetch: "),
			caFileFlag(),
			&ucli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "with --fetch: time limit of each HTTP request to a DTA"},
			&ucli.DurationFlag{Name: "max-pending", Value: defaultMaxPending,
				Usage: "a receipt still not anchored this long after its issuance (by the proof bundle's fetch time) FAILED; 0: never"},
		},
		Action: runVerifyIssuance,
	}
}

// ledgerReceipts turns the client's receipts into the ledger's. A receipt is issued
// when the client received it, or, in receipts kept before the client recorded that,
// at its entry's time.
func ledgerReceipts(in []client.Receipt) []ledger.Receipt {
	out := make([]ledger.Receipt, 0, len(in))
	for _, r := range in {
		issued := r.Received
		if e, err := wire.ParseEntry(r.Entry); issued.IsZero() && err == nil {
			issued = time.Unix(e.Time, 0)
		}
		out = append(out, ledger.Receipt{DTA: r.DTA, Origin: r.Promise.Origin, Entry: r.Entry, Index: r.Promise.Index, Promise: r.Promise, Issued: issued})
	}
	return out
}

func runVerifyIssuance(ctx context.Context, c *ucli.Command) error {
	const cmd = "client verify-issuance"
	dir, err := needDir(c)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	b, crs, err := client.IssuanceReceipts(dir)
	if err != nil {
		return clientError("verify-issuance", err)
	}
	receipts := ledgerReceipts(crs)
	path := c.String("proofs")
	if path == "" {
		path = filepath.Join(dir, proofsFile)
	}
	out := c.Root().Writer

	if c.Bool("fetch") {
		if c.String("rpc-url") == "" {
			return fmt.Errorf("%s: --fetch needs --rpc-url", cmd)
		}
		contract, err := auditContract(cmd, c, b)
		if err != nil {
			return err
		}
		hc, err := httpClient(c.String("ca-file"), c.Duration("timeout"))
		if err != nil {
			return fmt.Errorf("%s: --ca-file: %w", cmd, err)
		}
		chain, err := ledger.Dial(ctx, c.String("rpc-url"))
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		defer chain.Close()
		if err := checkContract(ctx, chain, b, contract); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		pb, err := ledger.FetchProofBundle(ctx, ledger.ProofConfig{Bundle: b, Chain: chain,
			Contract: contract, HTTP: hc, Confirmations: c.Uint64("confirmations"), FromBlock: c.Uint64("from-block")}, receipts)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		raw, err := ledger.MarshalProofBundle(pb)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		var proofs, pending int
		for _, d := range pb.DTAs {
			for _, e := range d.Entries {
				if e.Pending {
					pending++
				} else {
					proofs++
				}
			}
		}
		fmt.Fprintf(out, "wrote %s: %d inclusion proofs, %d receipts not yet anchored, from %d DTAs\n", path, proofs, pending, len(pb.DTAs))
		fmt.Fprintf(out, "verify it (offline) with: polyroot client verify-issuance --dir %s --proofs %s\n", dir, path)
		return nil
	}

	raw, err := readLimited(path, maxProofsFile)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: no proof bundle at %s; fetch one first with --fetch --rpc-url URL --contract ADDR", cmd, path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	pb, err := ledger.ParseProofBundle(raw)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", cmd, path, err)
	}
	rep, err := ledger.VerifyProofBundle(pb, b, receipts, c.Duration("max-pending"))
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	printVerifyReport(out, rep, pb)
	if f := rep.Failures(); len(f) > 0 {
		return fmt.Errorf("%s: %d receipt(s) FAILED:\n  %s", cmd, len(f), strings.Join(f, "\n  "))
	}
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return raw, nil
}

func printVerifyReport(w io.Writer, r *ledger.VerifyReport, pb *ledger.ProofBundle) {
	fmt.Fprintf(w, "Issuance receipts of %s: %d, against IssuanceLog %s (anchors read %s)\n\n", r.Domain, len(r.Receipts),
		pb.Contract, pb.Fetched.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DTA\tLOG\tINDEX\tSTATUS\tANCHOR")
	var included, pending, failed int
	for _, x := range r.Receipts {
		anchor := "-"
		switch x.Status {
		case ledger.ReceiptIncluded:
			included++
			anchor = fmt.Sprintf("size %d, block %d", x.AnchoredSize, x.Block)
		case ledger.ReceiptPending:
			pending++
			if x.AnchoredSize > 0 {
				anchor = fmt.Sprintf("not yet anchored (latest anchor: size %d, block %d)", x.AnchoredSize, x.Block)
			} else {
				anchor = "not yet anchored (no anchor yet)"
			}
		default:
			failed++
			anchor = x.Reason
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", x.DTA, x.Origin, x.Index, x.Status, anchor)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d included, %d pending, %d FAILED\n", included, pending, failed)
}
