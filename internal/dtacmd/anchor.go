package dtacmd

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/tessera/client"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/ledger"
)

// Chains a DTA can anchor its log on.
const (
	ChainNone     = "none"
	ChainEmbedded = "embedded"
	ChainRPC      = "rpc"
)

// Anchoring configures the anchoring of the DTA's log (package ledger).
//
//   - embedded: go-ethereum's simulated backend inside this process, in memory. For
//     now a DTA process runs its own: at start it deploys IssuanceLog and registers
//     itself as its log's anchorer, with a key made for the run. Everything on that
//     chain vanishes when the process stops: it shows the mechanism (devnet, demo), it
//     proves nothing to anyone else.
//   - rpc: an EVM JSON-RPC endpoint (RPCURL), the deployed IssuanceLog (Contract) and
//     the key of the address its owner registered for this DTA's log (KeyFile, hex,
//     mode 0600).
type Anchoring struct {
	RPCURL        string
	KeyFile       string
	Contract      string        // 0x… address (rpc)
	Period        time.Duration // default ledger.DefaultAnchorPeriod
	Confirmations uint64        // default ledger.DefaultConfirmations

	// Shared (embedded only, optional): a chain backend already running in this process
	// (several DTAs sharing one ledger.Embedded), with Contract deployed on it and
	// SharedKey registered as this log's anchorer. Serve then neither deploys nor
	// registers, and does not close the backend.
	Shared    ledger.Chain
	SharedKey *ecdsa.PrivateKey
}

// newAnchor builds the DTA's anchor hook for chain, or nil for none; closeChain
// releases the chain (call it after the service is closed). A trust bundle that names
// its anchoring (want) allows only an rpc chain and that contract, and the hook sends
// anchors only to that chain. logDir is the log's directory (dta.LogDir), whose tiles
// the anchorer reads to check that the log extends its last anchor before the next.
func newAnchor(ctx context.Context, chain string, cfg Anchoring, want *bundle.Anchoring, origin, logDir string, log *slog.Logger) (dta *anchorHook, closeChain func(), err error) {
	closeChain = func() {}
	if want != nil && (chain != ChainRPC || common.HexToAddress(cfg.Contract) != common.HexToAddress(want.Contract)) {
		return nil, closeChain, fmt.Errorf("the trust bundle says the logs are anchored on chain %d at contract %s: "+
			"give --chain rpc, an --rpc-url of that chain and that --contract (not --chain %s, contract %q)", want.ChainID, want.Contract, cmp.Or(chain, ChainNone), cfg.Contract)
	}
	a := &ledger.Anchorer{Period: cfg.Period, Confirmations: cfg.Confirmations, Logger: log,
		ReadTile: client.FileFetcher{Root: logDir}.ReadTile}
	switch chain {
	case "", ChainNone:
		return nil, closeChain, nil
	case ChainEmbedded:
		if cfg.Shared != nil {
			if cfg.SharedKey == nil || !common.IsHexAddress(cfg.Contract) {
				return nil, closeChain, fmt.Errorf("embedded chain: a shared backend needs its contract and key")
			}
			a.Backend, a.Contract, a.Key = cfg.Shared, common.HexToAddress(cfg.Contract), cfg.SharedKey
			break
		}
		e, err := ledger.NewEmbedded(time.Second)
		if err != nil {
			return nil, closeChain, fmt.Errorf("embedded chain: %w", err)
		}
		closeChain = func() { e.Close() }
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		contract, err := ledger.Deploy(sctx, e.Chain(), e.Key())
		if err == nil {
			err = ledger.Register(sctx, e.Chain(), e.Key(), contract, origin, ledger.Address(e.Key()))
		}
		if err != nil {
			closeChain()
			return nil, func() {}, fmt.Errorf("embedded chain: %w", err)
		}
		log.Warn("anchoring on an embedded chain: in memory, private to this process; its anchors vanish when the process stops",
			"contract", contract)
		a.Backend, a.Contract, a.Key = e.Chain(), contract, e.Key()
	case ChainRPC:
		switch {
		case cfg.RPCURL == "":
			return nil, closeChain, fmt.Errorf("chain rpc: no RPC URL (--rpc-url)")
		case cfg.KeyFile == "":
			return nil, closeChain, fmt.Errorf("chain rpc: no key file (--chain-key-file)")
		case !common.IsHexAddress(cfg.Contract):
			return nil, closeChain, fmt.Errorf("chain rpc: --contract %q is not an address (0x and 40 hex digits)", cfg.Contract)
		}
		key, err := ledger.LoadKeyFile(cfg.KeyFile)
		if err != nil {
			return nil, closeChain, err
		}
		client, err := ledger.Dial(ctx, cfg.RPCURL)
		if err != nil {
			return nil, closeChain, err
		}
		closeChain = client.Close
		a.Backend, a.Contract, a.Key = client, common.HexToAddress(cfg.Contract), key
		if want != nil {
			a.ChainID = want.ChainID
			// A chain that does not answer now is no reason not to start (the DTA issues
			// while anchoring lags, and the anchorer checks the ID before it reads or sends
			// anything); a chain that answers with another ID is a wrong --rpc-url.
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ledger.CheckAnchoring(cctx, &bundle.Bundle{Anchoring: want}, client, a.Contract)
			cancel()
			if errors.Is(err, ledger.ErrAnchoring) {
				closeChain()
				return nil, func() {}, fmt.Errorf("chain rpc: %w: check --rpc-url", err)
			}
			if err != nil {
				log.Warn("the chain's ID cannot be checked yet; nothing is anchored until it can", "err", err)
			}
		}
	default:
		return nil, closeChain, fmt.Errorf("chain %q: want none, embedded or rpc", chain)
	}
	return newAnchorHook(a), closeChain, nil
}

// anchorHook is a ledger.Anchorer as a dta.Anchor, with its metrics.
type anchorHook struct {
	a                                    *ledger.Anchorer
	lag, confirmed, logSize, resent, bad *prometheus.Desc
	lastOK                               *prometheus.Desc
}

func newAnchorHook(a *ledger.Anchorer) *anchorHook {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	return &anchorHook{a: a,
		lag: d("polyroot_dta_anchor_lag_entries",
			"Entries in the log's latest checkpoint not yet covered by a confirmed anchor; it grows while the chain is unreachable (the DTA keeps issuing) and falls back once anchoring catches up."),
		confirmed: d("polyroot_dta_anchor_confirmed_size", "Size of the log's latest confirmed anchor on chain."),
		logSize:   d("polyroot_dta_anchor_log_size", "Size of the log's latest checkpoint the anchorer saw."),
		resent:    d("polyroot_dta_anchor_resent_total", "Anchors sent again after a reorg dropped them."),
		bad:       d("polyroot_dta_anchor_error", "1 if the anchorer's last round failed (see the logs), else 0."),
		lastOK: d("polyroot_dta_anchor_last_success_timestamp_seconds",
			"Unix time of the anchorer's last successful round (0: none since the start); time() minus it is how long anchoring has been failing."),
	}
}

func (h *anchorHook) Run(ctx context.Context, origin string, checkpoint func(context.Context) (uint64, []byte, error)) error {
	h.a.LogOrigin, h.a.Checkpoint = origin, checkpoint
	return h.a.Run(ctx)
}

func (h *anchorHook) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{h.lag, h.confirmed, h.logSize, h.resent, h.bad, h.lastOK} {
		ch <- d
	}
}

func (h *anchorHook) Collect(ch chan<- prometheus.Metric) {
	st := h.a.Status()
	bad := 0.0
	if st.LastError != "" {
		bad = 1
	}
	ch <- prometheus.MustNewConstMetric(h.lag, prometheus.GaugeValue, float64(st.Lag))
	ch <- prometheus.MustNewConstMetric(h.confirmed, prometheus.GaugeValue, float64(st.Confirmed.Size))
	ch <- prometheus.MustNewConstMetric(h.logSize, prometheus.GaugeValue, float64(st.LogSize))
	ch <- prometheus.MustNewConstMetric(h.resent, prometheus.CounterValue, float64(st.Resent))
	ch <- prometheus.MustNewConstMetric(h.bad, prometheus.GaugeValue, bad)
	lastOK := 0.0
	if !st.LastCheck.IsZero() {
		lastOK = float64(st.LastCheck.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(h.lastOK, prometheus.GaugeValue, lastOK)
}

// Ready reports the chain unusable while the anchorer's rounds fail (dta.ReadyReporter):
// the DTA then reports itself degraded, and goes on issuing.
// The reason says since when, not the RPC error, which may quote the endpoint's URL
// and its credentials; the error itself is in the DTA's log.
func (h *anchorHook) Ready() error {
	st := h.a.Status()
	switch {
	case st.LastError == "":
		return nil
	case st.LastCheck.IsZero():
		return errors.New("anchoring fails: the chain has not been reachable since the start (see the DTA's log)")
	default:
		return fmt.Errorf("anchoring fails: the chain was last reachable at %s (see the DTA's log)", st.LastCheck.UTC().Format(time.RFC3339))
	}
}
