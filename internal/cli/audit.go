package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/schollz/progressbar/v3"
	ucli "github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/ledger"
	"github.com/polyroot/polyroot/pairing"
)

func auditCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "audit",
		Usage: "check every DTA log of a domain against its anchors on chain, or list an identity's entries",
		UsageText: "polyroot audit --bundle FILE --rpc-url URL [--contract ADDR] [--id ID --salt HEX | --idhash H]\n\n" +
			"Examples:\n" +
			"   polyroot audit --bundle bundle.json --rpc-url https://rpc.example.org --contract 0x5FbD…0aa3\n" +
			"   polyroot audit --bundle bundle.json --rpc-url http://127.0.0.1:8545 --contract 0x5FbD…0aa3 --max-lag 1000\n" +
			"   polyroot audit --bundle bundle.json --rpc-url … --contract … --state audit-state.json\n" +
			"   polyroot audit --bundle bundle.json --rpc-url … --contract … --id alice@example.com --salt 9c0e…\n" +
			"   polyroot audit --bundle bundle.json --rpc-url … --contract … --idhash 3f1c…\n" +
			"   polyroot audit --bundle bundle.json --rpc-url … --contract … --json | jq '.dtas[] | {index, lag}'",
		Description: "Reads the Anchored events of every DTA log in the trust bundle from the\n" +
			"IssuanceLog contract, and each DTA's signed checkpoint and tiles from {url}/v1/log.\n" +
			"It checks the checkpoint's signature with the DTA's key in the bundle, consistency\n" +
			"proofs from the anchors up to the checkpoint, that every entry matches the tiles\n" +
			"and that the entries hash to every anchored root, and reports how far each\n" +
			"DTA's anchors lag behind its checkpoint. It prints one line per DTA and exits with\n" +
			"status 1 if anything is inconsistent, naming the DTA and the sizes.\n\n" +
			"A bundle that names its anchoring (bundle assemble --chain-id --contract) gives the\n" +
			"contract: --contract may then be left out, and the audit refuses another contract or\n" +
			"an RPC endpoint of another chain. A bundle that names none needs --contract, taken\n" +
			"on trust: get it from the domain's operator over a channel you trust.\n\n" +
			"What a DTA logged since its last anchor is protected only by its signed checkpoint.\n" +
			"A log whose first entry past the last anchor is older than --max-anchor-age\n" +
			"(default 24h; DTAs anchor hourly by default) fails: its DTA has stopped anchoring.\n" +
			"Keep it above the DTAs' --anchor-period plus the time their anchors take to confirm.\n" +
			"That time is the DTA's word; by the chain's clock, a log never anchored fails too\n" +
			"once it was registered on the contract longer than --max-anchor-age ago, and, when\n" +
			"the bundle names its anchoring, at once if it was never registered.\n" +
			"With --state FILE the audit keeps every checkpoint that verified and, at the next\n" +
			"run, fails a log that does not extend it: a DTA that rolled back or rewrote its\n" +
			"unanchored entries between two audits is caught. It also keeps when it first saw\n" +
			"entries past a log's anchors, and fails the log while those are still unanchored\n" +
			"--max-anchor-age later (by its own clock). Run it from one place, keeping\n" +
			"the file. The file also keeps the trust bundle and the logs audited: a later run\n" +
			"refuses a bundle that is neither that one nor a successor of it (a greater serial\n" +
			"signed by the same registrar, the same master key), and fails while a log audited\n" +
			"before is missing from the bundle (a renamed or moved log would otherwise go\n" +
			"unchecked); once its DTA's operator confirms the log is retired, --forget-log\n" +
			"ORIGIN drops it.\n\n" +
			"With --idhash, or --id and --salt (the enrolment's salt, hex), it also lists every\n" +
			"entry ever logged for that identity at every DTA: client shares, permits and\n" +
			"revocations. A share its owner never asked for is an alarm.\n\n" +
			"Each DTA limits the requests of one address to its log's routes (by default 500 a\n" +
			"second, bursts of 1000). The audit has at most --concurrency requests in flight to each\n" +
			"DTA; when a DTA answers 429 (or 503) it waits as Retry-After says, then sends fewer\n" +
			"requests at once, widening again as they succeed; each request is retried at most\n" +
			"--max-retries times (also after 502, 504 or a connection cut short, with exponential\n" +
			"backoff), and a DTA asking to wait more than two minutes fails its audit. --rate\n" +
			"paces the requests to each DTA further. Standard error says when a DTA first slows\n" +
			"the audit down, and how long the audit waited for it in all.\n\n" +
			"Bounds against a hostile DTA: the DTAs are audited at once, and a DTA not done\n" +
			"within --dta-timeout (default 10m, from its checkpoint to its last entry) fails,\n" +
			"while the others' audits go on; a log whose checkpoint or last anchor is past\n" +
			"the --max-entries (default 30,000,000, about 8 minutes at a DTA's default log\n" +
			"rate limit) fails unread; a log that contradicts an anchor is read no further.\n" +
			"Raise both for larger logs.\n\n" +
			"A progress bar is shown on standard error when it is a terminal, or with --progress.\n" +
			"--json prints the report as one JSON object instead: domain, contract, chain_id,\n" +
			"anchors_at_block (the block the anchors were read as of), ok, problems,\n" +
			"and per DTA its index, origin, URL, checkpoint size, anchors, last anchor, lag, entries\n" +
			"scanned, throttled (429 and 503 answers), retries, waited_seconds, status and problems;\n" +
			"with an identity, also idhash and its entries.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "bundle", Aliases: []string{"b"}, Usage: "the domain's trust bundle `FILE`", TakesFile: true,
				Sources: ucli.NewValueSourceChain(envVar("POLYROOT_BUNDLE"))},
			&ucli.StringFlag{Name: "fingerprint", Usage: "refuse the bundle unless its SHA-256 fingerprint is `HEX`"},
			&ucli.StringFlag{Name: "rpc-url", Usage: "the chain's JSON-RPC `URL`", Sources: ucli.NewValueSourceChain(envVar("POLYROOT_RPC_URL"))},
			&ucli.StringFlag{Name: "contract", Usage: "the IssuanceLog contract's `ADDRESS` (0x…; default: the one the bundle names)",
				Sources: ucli.NewValueSourceChain(envVar("POLYROOT_CONTRACT"))},
			&ucli.Uint64Flag{Name: "from-block", Usage: "search for anchors from block `N` (the contract's deployment)"},
			confirmationsFlag(""),
			&ucli.Uint64Flag{Name: "max-lag", Usage: "fail when a checkpoint is more than `N` entries past its last anchor (0: report only); the entries past the anchor are then not read"},
			&ucli.DurationFlag{Name: "dta-timeout", Value: defaultDTATimeout,
				Usage: "fail a DTA whose log is not read within this `DURATION`, its checkpoint and proofs included (0: no limit); the other DTAs' audits go on"},
			&ucli.Uint64Flag{Name: "max-entries", Value: ledger.DefaultAuditMaxEntries,
				Usage: "fail, unread, a log whose checkpoint or last anchor is past `N` entries"},
			&ucli.DurationFlag{Name: "max-anchor-age", Value: defaultMaxAnchorAge,
				Usage: "fail when a log's first entry past its last anchor was logged longer ago than this, or its log was registered longer ago and never anchored, or (--state) entries seen past its anchors that long ago are still unanchored (0: never)"},
			&ucli.StringFlag{Name: "state", Usage: "keep the checkpoints that verified, the bundle and the logs audited in `FILE`, and fail a log that no longer extends them or that the bundle no longer names", TakesFile: true},
			&ucli.StringSliceFlag{Name: "forget-log", Usage: "with --state, drop the log `ORIGIN`, which the bundle no longer names, from the state: its DTA retired it"},
			&ucli.StringFlag{Name: "id", Usage: "list the entries of the identity `ID` (with --salt)"},
			&ucli.StringFlag{Name: "salt", Usage: "the identity's enrolment salt, `HEX`"},
			idhashFlag(),
			&ucli.BoolFlag{Name: "progress", Usage: "show a progress bar even when standard error is not a terminal"},
			caFileFlag(),
			&ucli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "time limit of each HTTP request to a DTA (each try)"},
			&ucli.UintFlag{Name: "concurrency", Value: defaultAuditConcurrency, Usage: "at most `N` requests in flight to each DTA (fewer while a DTA answers 429)"},
			&ucli.FloatFlag{Name: "rate", Usage: "at most `N` requests a second to each DTA (0: as its limit allows; Retry-After is always honoured)"},
			&ucli.IntFlag{Name: "max-retries", Value: ledger.DefaultAuditMaxRetries,
				Usage: "retry one request at most `N` times after a 429, 503, 502 or 504 or a connection cut short"},
			jsonFlag("print the report as a JSON object (problems included; the exit status is the same)"),
		},
		Action: runAudit,
	}
}

// defaultAuditConcurrency is the most requests in flight to one DTA (AuditConfig.Workers).
const defaultAuditConcurrency = 8

// defaultDTATimeout is audit's --dta-timeout: a DTA that serves entries for ever, or
// answers slowly, fails its audit then rather than hold up the report of every DTA.
// It leaves room for a log of ledger.DefaultAuditMaxEntries at a DTA's default rate.
const defaultDTATimeout = 10 * time.Minute

// auditContract returns the contract to read anchors from: --contract, or the one
// the trust bundle names when --contract is not given. checkContract refuses a
// --contract other than the bundle's.
func auditContract(cmd string, c *ucli.Command, b *bundle.Bundle) (common.Address, error) {
	addr := c.String("contract")
	if addr == "" && b.Anchoring != nil {
		addr = b.Anchoring.Contract
	}
	if addr == "" {
		return common.Address{}, fmt.Errorf("%s: --contract is required: the trust bundle does not name the contract the DTAs anchor at", cmd)
	}
	return parseAddress(cmd, "contract", addr) // ledger.go
}

// checkContract fails, saying what to do, when the trust bundle names another chain or
// contract (ledger.CheckAnchoring) or when addr does not hold IssuanceLog's code: a
// wrong address, or the contract of a devnet's embedded chain before its restart,
// would otherwise fail as an ABI error at the first call, and another contract with
// IssuanceLog's ABI could hold anchors nobody's DTA sent. A chain that does not answer
// within contractCheckTimeout fails it too. (ledger.Audit checks the code again, as of
// the block it reads the anchors at.)
func checkContract(ctx context.Context, chain *ethclient.Client, b *bundle.Bundle, addr common.Address) error {
	cctx, cancel := context.WithTimeout(ctx, contractCheckTimeout)
	defer cancel()
	err := ledger.CheckAnchoring(cctx, b, chain, addr)
	if err == nil {
		err = checkCode(cctx, chain, addr)
	}
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the chain at --rpc-url did not answer within %v: check the URL and that its node is up", contractCheckTimeout)
	case errors.Is(err, ledger.ErrAnchoring):
		return fmt.Errorf("%w (check --rpc-url and --contract, or leave --contract out)", err)
	case errors.As(err, new(noContractError)):
		return fmt.Errorf("%w: check --contract (or $POLYROOT_CONTRACT); "+
			"a devnet's embedded chain gets a new contract at every start: see its devnet.json", err)
	case errors.Is(err, ledger.ErrNotIssuanceLog):
		return fmt.Errorf("%w: check --contract (or $POLYROOT_CONTRACT): anchors read from another contract prove nothing", err)
	}
	return fmt.Errorf("the chain at --rpc-url: %w", err)
}

// noContractError is checkCode's error for an address without code.
type noContractError struct{ addr common.Address }

func (e noContractError) Error() string {
	return "there is no contract at " + e.addr.Hex() + " on this chain"
}

// checkCode fails with a noContractError when addr holds no code on the chain, and
// wrapping ledger.ErrNotIssuanceLog when it holds code other than IssuanceLog's
// (ledger.DeployedCode: the whole code, which no deployment changes).
func checkCode(ctx context.Context, chain *ethclient.Client, addr common.Address) error {
	err := ledger.CheckCode(ctx, chain, addr, nil)
	if errors.Is(err, ledger.ErrNoCode) {
		return noContractError{addr}
	}
	return err
}

// confirmationsFlag is --confirmations of the commands that read anchors.
func confirmationsFlag(when string) ucli.Flag {
	return &ucli.Uint64Flag{Name: "confirmations", Value: ledger.DefaultConfirmations,
		Usage: when + "count an anchor once its block has `N` confirmations, its own included (1: the chain's head): a reorganisation cannot then take back an anchor the check relied on"}
}

// contractCheckTimeout bounds checkContract's call to the chain (a variable for tests).
var contractCheckTimeout = ledger.DefaultChainCallTimeout

// defaultMaxAnchorAge is audit's --max-anchor-age: a day of the DTAs' default hourly
// anchoring.
const defaultMaxAnchorAge = 24 * time.Hour

func runAudit(ctx context.Context, c *ucli.Command) error {
	out, errOut := c.Root().Writer, c.Root().ErrWriter
	if c.String("bundle") == "" || c.String("rpc-url") == "" {
		return errors.New("audit: --bundle and --rpc-url are required (or $POLYROOT_BUNDLE and $POLYROOT_RPC_URL, which a devnet prints)")
	}
	switch {
	case c.Uint("concurrency") < 1:
		return errors.New("audit: --concurrency must be at least 1")
	case c.Float("rate") < 0:
		return errors.New("audit: --rate must not be negative")
	case c.Int("max-retries") < 0:
		return errors.New("audit: --max-retries must not be negative")
	case c.Uint64("max-entries") < 1:
		return errors.New("audit: --max-entries must be at least 1")
	case len(c.StringSlice("forget-log")) > 0 && c.String("state") == "":
		return errors.New("audit: --forget-log goes with --state")
	}
	file, err := os.ReadFile(c.String("bundle"))
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	var b *bundle.Bundle
	if fp := c.String("fingerprint"); fp != "" {
		b, err = bundle.ParsePinned(file, strings.ToLower(fp))
	} else {
		b, err = bundle.Parse(file)
	}
	if err != nil {
		return fmt.Errorf("audit: %s: %w", c.String("bundle"), err)
	}
	contract, err := auditContract("audit", c, b)
	if err != nil {
		return err
	}
	idhash, err := auditIDHash(c, b.Domain)
	if err != nil {
		return err
	}
	hc, err := httpClient(c.String("ca-file"), c.Duration("timeout"))
	if err != nil {
		return fmt.Errorf("audit: --ca-file: %w", err)
	}
	chain, err := ledger.Dial(ctx, c.String("rpc-url"))
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer chain.Close()
	if err := checkContract(ctx, chain, b, contract); err != nil {
		return fmt.Errorf("audit: %w", err)
	}

	var (
		state *auditState
		gone  []string // problems: logs audited before that the bundle no longer names
	)
	if path := c.String("state"); path != "" {
		if state, err = readAuditState(path, b.Domain); err != nil {
			return fmt.Errorf("audit: --state: %w", err)
		}
		if gone, err = state.checkBundle(b, file, c.StringSlice("forget-log")); err != nil {
			return fmt.Errorf("audit: --state %s: %w", path, err)
		}
	}
	cfg := ledger.AuditConfig{Bundle: b, Chain: chain, Contract: contract,
		Confirmations: c.Uint64("confirmations"), FromBlock: c.Uint64("from-block"), MaxLag: c.Uint64("max-lag"), MaxEntries: c.Uint64("max-entries"),
		MaxAnchorAge: c.Duration("max-anchor-age"), DTATimeout: c.Duration("dta-timeout"), HTTP: hc,
		Workers: c.Uint("concurrency"), RequestsPerSecond: c.Float("rate"), MaxRetries: c.Int("max-retries")}
	if state != nil {
		cfg.Seen = state.Checkpoints
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = -1 // none: 0 is AuditConfig's default
	}
	var (
		mu     sync.Mutex // the bar and the notes on standard error
		bar    *progressbar.ProgressBar
		slowed = map[uint32]bool{}
	)
	cfg.Retrying = func(index uint32, status int, reason string, wait time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if slowed[index] {
			return
		}
		slowed[index] = true
		if bar != nil {
			bar.Clear()
		}
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			fmt.Fprintf(errOut, "polyroot: DTA %d slows the audit down (%s): waiting %v as it asks, then fewer requests at once\n",
				index, strings.TrimPrefix(reason, "the DTA "), wait.Round(100*time.Millisecond))
		} else {
			fmt.Fprintf(errOut, "polyroot: DTA %d: %s; retrying in %v\n", index, reason, wait.Round(100*time.Millisecond))
		}
	}
	if c.Bool("progress") || isTerminal(errOut) {
		var barMax uint64 // the total grows as the DTAs' checkpoints are read
		cfg.Progress = func(done, total uint64) {
			mu.Lock()
			defer mu.Unlock()
			if bar != nil && total != barMax {
				bar.ChangeMax64(int64(total))
			}
			barMax = total
			if bar == nil {
				bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(errOut),
					progressbar.OptionSetDescription("scanning the logs"), progressbar.OptionShowCount(),
					progressbar.OptionSetItsString("entries"), progressbar.OptionShowIts(),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true),
					progressbar.OptionOnCompletion(func() { fmt.Fprintln(errOut) }))
			}
			bar.Set64(int64(done))
		}
	}

	var (
		report  *ledger.Report
		entries []ledger.IdentityEntry
	)
	if idhash != "" {
		report, entries, err = ledger.AuditWithIdentity(ctx, cfg, idhash)
	} else {
		report, err = ledger.Audit(ctx, cfg)
	}
	if bar != nil {
		bar.Finish()
	}
	if report != nil {
		for _, d := range report.DTAs {
			switch {
			case d.Throttled > 0:
				fmt.Fprintf(errOut, "polyroot: DTA %d refused %d request(s) with 429 or 503; the audit waited %v in all as it asked, and retried %d\n",
					d.Index, d.Throttled, d.Waited.Round(100*time.Millisecond), d.Retries)
			case d.Retries > 0:
				fmt.Fprintf(errOut, "polyroot: DTA %d: %d request(s) retried after 502, 504 or a connection cut short\n", d.Index, d.Retries)
			}
		}
	}
	if err != nil {
		if _, _, tlsErr := tlsProblem(err, "--ca-file"); tlsErr {
			return fmt.Errorf("audit: %w", transportError(err, "--ca-file"))
		}
		return err
	}
	if state != nil {
		state.update(report)
		if err := state.write(c.String("state")); err != nil {
			return fmt.Errorf("audit: --state: %w", err)
		}
	}
	if c.Bool("json") {
		j := auditReportJSON(report, cfg.Contract, idhash, entries)
		if len(gone) > 0 {
			j.Problems, j.OK = append(slices.Clone(gone), j.Problems...), false
		}
		if err := writeJSON(out, j); err != nil {
			return err
		}
	} else {
		printAuditReport(out, report, cfg.Contract, gone)
		if idhash != "" {
			printIdentityEntries(out, idhash, entries)
		}
	}
	if p := append(slices.Clone(gone), report.Problems()...); len(p) > 0 {
		var hint string
		for _, s := range p {
			// The report holds the problems as text: a DTA whose certificate did not
			// verify is recognised by Go's words for it.
			if strings.Contains(s, "x509: ") || strings.Contains(s, "tls: failed to verify certificate") {
				hint = "\na DTA's TLS certificate is not trusted: use --ca-file with the PEM certificate of the CA that signed it"
				break
			}
		}
		return fmt.Errorf("audit of %s FAILED, %d problem(s):\n  %s%s", report.Domain, len(p), strings.Join(p, "\n  "), hint)
	}
	return nil
}

// auditIDHash returns the idhash named by --idhash or --id and --salt, or "".
func auditIDHash(c *ucli.Command, domain string) (string, error) {
	idh, id, salt := c.String("idhash"), c.String("id"), c.String("salt")
	switch {
	case idh != "" && (id != "" || salt != ""):
		return "", errors.New("audit: name the identity by --idhash or by --id and --salt, not both")
	case idh != "":
		idh = strings.ToLower(idh)
		if b, err := hex.DecodeString(idh); err != nil || len(b) != pairing.IDHashSize {
			return "", fmt.Errorf("audit: --idhash %q: want 64 hex digits", idh)
		}
		return idh, nil
	case id == "" && salt == "":
		return "", nil
	case id == "" || salt == "":
		return "", errors.New("audit: --id and --salt go together")
	}
	s, err := hex.DecodeString(salt)
	if err != nil {
		return "", fmt.Errorf("audit: --salt: not hex")
	}
	h, err := pairing.NewIDHash(domain, id, s)
	if err != nil {
		return "", fmt.Errorf("audit: --salt: %w", err)
	}
	return hex.EncodeToString(h[:]), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printAuditReport prints the report as tables; gone are the logs audited before that
// the bundle no longer names (--state), problems too.
func printAuditReport(w io.Writer, r *ledger.Report, contract common.Address, gone []string) {
	fmt.Fprintf(w, "Audit of %s: %d DTAs, anchors from IssuanceLog %s on chain %d as of block %d\n\n", r.Domain, len(r.DTAs), contract, r.ChainID, r.AnchorsAt)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DTA\tLOG\tCHECKPOINT\tANCHORS\tLAST ANCHOR\tLAG\tSTATUS")
	for _, d := range r.DTAs {
		last := "-"
		if n := len(d.Anchors); n > 0 {
			a := d.Anchors[n-1]
			last = fmt.Sprintf("%d at %s", a.Size, a.Time.Format(time.RFC3339))
		}
		cp := "-"
		if d.CheckpointRoot != nil {
			cp = fmt.Sprint(d.CheckpointSize)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%s\n", d.Index, d.Origin, cp, len(d.Anchors), last, d.Lag, d.Status)
	}
	tw.Flush()
	printKeyEntries(w, r)
	printServerShares(w, r)
	if len(gone) > 0 {
		fmt.Fprintf(w, "\nLogs audited before that the trust bundle no longer names, not checked: %d\n  %s\n", len(gone), strings.Join(gone, "\n  "))
	}
	if r.OK() && len(gone) == 0 {
		fmt.Fprintln(w, "\nEvery log is consistent with its anchors.")
	}
}

// printKeyEntries lists the key entries of the logs: the bundle serial and the
// transcript hash each DTA served under (compare them with the published transcripts).
func printKeyEntries(w io.Writer, r *ledger.Report) {
	var n int
	for _, d := range r.DTAs {
		n += len(d.Keys)
	}
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nKey entries (the sharings each DTA served under): %d\n", n)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DTA\tINDEX\tSERIAL\tTRANSCRIPT SHA-256\tTIME")
	for _, d := range r.DTAs {
		for _, k := range d.Keys {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\n", d.Index, k.Index, k.Serial, k.TranscriptSHA256, k.Time.Format(time.RFC3339))
		}
	}
	tw.Flush()
}

// printServerShares lists the server-key shares the logs record, always (none is a
// figure too): each gave a DTA's share of the server key to the holder of its
// ticket's seal key.
func printServerShares(w io.Writer, r *ledger.Report) {
	var n int
	for _, d := range r.DTAs {
		n += len(d.ServerShares)
	}
	fmt.Fprintf(w, "\nServer key shares issued: %d (expect one per DTA for each provisioning of the auth server; any other is an alarm: whoever holds the registrar key can get the server key so)\n", n)
	if n == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DTA\tINDEX\tTIME\tTICKET SHA-256")
	for _, d := range r.DTAs {
		for _, s := range d.ServerShares {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\n", d.Index, s.Index, s.Time.Format(time.RFC3339), s.TicketSHA256)
		}
	}
	tw.Flush()
}

func printIdentityEntries(w io.Writer, idhash string, entries []ledger.IdentityEntry) {
	fmt.Fprintf(w, "\nEntries for idhash %s: %d\n", idhash, len(entries))
	if len(entries) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DTA\tINDEX\tKIND\tSLOT\tTIME\tSEALED SHA-256\tTICKET SHA-256")
	for _, e := range entries {
		slot, share := "-", "-"
		if e.Kind == "permit" {
			slot = fmt.Sprint(e.Slot)
		}
		if e.SealedSHA256 != "" {
			share = e.SealedSHA256[:16] + "…"
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\n", e.DTA, e.Index, e.Kind, slot, e.Time.Format(time.RFC3339), share, e.TicketSHA256[:16]+"…")
	}
	tw.Flush()
}

// The JSON form of an audit (--json): snake_case names, hex for hashes, RFC 3339 for
// times, so that scripts do not depend on the table's layout.
type (
	auditJSON struct {
		Domain   string `json:"domain"`
		Contract string `json:"contract"`
		ChainID  uint64 `json:"chain_id"`
		// AnchorsAt is the block as of which the anchors were read: the head less the
		// confirmations asked for.
		AnchorsAt uint64            `json:"anchors_at_block"`
		OK        bool              `json:"ok"`
		Problems  []string          `json:"problems"`
		DTAs      []auditDTAJSON    `json:"dtas"`
		IDHash    string            `json:"idhash,omitempty"`
		Entries   *[]auditEntryJSON `json:"entries,omitempty"` // with an identity, even when none
	}
	auditDTAJSON struct {
		Index          uint32            `json:"index"`
		Origin         string            `json:"origin"`
		URL            string            `json:"url"`
		Status         string            `json:"status"`
		CheckpointSize *uint64           `json:"checkpoint_size"` // null: no checkpoint read
		Anchors        int               `json:"anchors"`
		LastAnchor     *auditAnchorJSON  `json:"last_anchor,omitempty"`
		Lag            uint64            `json:"lag"`
		Scanned        uint64            `json:"scanned"`
		Throttled      uint64            `json:"throttled"`
		Retries        uint64            `json:"retries"`
		WaitedSeconds  float64           `json:"waited_seconds"`
		Problems       []string          `json:"problems"`
		Keys           []auditKeyJSON    `json:"keys"`          // the log's key entries
		ServerShares   []auditServerJSON `json:"server_shares"` // the log's server-key entries
	}
	auditServerJSON struct {
		Index        uint64    `json:"index"`
		Time         time.Time `json:"time"`
		SealedSHA256 string    `json:"sealed_sha256"`
		TicketSHA256 string    `json:"ticket_sha256"`
	}
	auditKeyJSON struct {
		Index            uint64    `json:"index"`
		Serial           uint64    `json:"serial"`
		TranscriptSHA256 string    `json:"transcript_sha256"`
		Commitment       string    `json:"commitment"`
		Time             time.Time `json:"time"`
	}
	auditAnchorJSON struct {
		Size  uint64    `json:"size"`
		Root  string    `json:"root"`
		Time  time.Time `json:"time"`
		Block uint64    `json:"block"`
		Tx    string    `json:"tx"`
	}
	auditEntryJSON struct {
		DTA          uint32    `json:"dta"`
		Index        uint64    `json:"index"`
		Kind         string    `json:"kind"`
		Slot         *uint64   `json:"slot,omitempty"` // permits
		Time         time.Time `json:"time"`
		SealedSHA256 string    `json:"sealed_sha256,omitempty"`
		TicketSHA256 string    `json:"ticket_sha256"`
	}
)

func auditReportJSON(r *ledger.Report, contract common.Address, idhash string, entries []ledger.IdentityEntry) auditJSON {
	out := auditJSON{Domain: r.Domain, Contract: contract.Hex(), ChainID: r.ChainID, AnchorsAt: r.AnchorsAt, OK: r.OK(), Problems: r.Problems(), DTAs: []auditDTAJSON{}}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	for _, d := range r.DTAs {
		j := auditDTAJSON{Index: d.Index, Origin: d.Origin, URL: d.URL, Status: d.Status, Anchors: len(d.Anchors),
			Lag: d.Lag, Scanned: d.Scanned, Throttled: d.Throttled, Retries: d.Retries, WaitedSeconds: d.Waited.Seconds(), Problems: d.Problems}
		if j.Problems == nil {
			j.Problems = []string{}
		}
		j.Keys = []auditKeyJSON{}
		for _, k := range d.Keys {
			j.Keys = append(j.Keys, auditKeyJSON{Index: k.Index, Serial: k.Serial, TranscriptSHA256: k.TranscriptSHA256, Commitment: k.Commitment, Time: k.Time.UTC()})
		}
		j.ServerShares = []auditServerJSON{}
		for _, s := range d.ServerShares {
			j.ServerShares = append(j.ServerShares, auditServerJSON{Index: s.Index, Time: s.Time.UTC(), SealedSHA256: s.SealedSHA256, TicketSHA256: s.TicketSHA256})
		}
		if d.CheckpointRoot != nil {
			size := d.CheckpointSize
			j.CheckpointSize = &size
		}
		if n := len(d.Anchors); n > 0 {
			a := d.Anchors[n-1]
			j.LastAnchor = &auditAnchorJSON{Size: a.Size, Root: hex.EncodeToString(a.Root[:]), Time: a.Time.UTC(), Block: a.Block, Tx: a.Tx.Hex()}
		}
		out.DTAs = append(out.DTAs, j)
	}
	if idhash != "" {
		out.IDHash = idhash
		list := []auditEntryJSON{}
		for _, e := range entries {
			j := auditEntryJSON{DTA: e.DTA, Index: e.Index, Kind: e.Kind, Time: e.Time.UTC(), SealedSHA256: e.SealedSHA256, TicketSHA256: e.TicketSHA256}
			if e.Kind == "permit" {
				slot := e.Slot
				j.Slot = &slot
			}
			list = append(list, j)
		}
		out.Entries = &list
	}
	return out
}
