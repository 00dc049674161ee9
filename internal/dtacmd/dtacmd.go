// Package dtacmd runs a DTA as a network service: what `polyroot dta serve` does once
// its settings are resolved. It loads the trust bundle, starts the dta.Service behind
// an http.Server with bounded timeouts (HTTPS when a certificate is given) and its
// metrics on a separate operations listener (MetricsListen), on SIGHUP reloads the keys
// and the bundle file together (dta.Service.Reload) and the TLS certificate, and on
// SIGINT, SIGTERM or the cancellation of its context stops accepting connections, lets
// the requests in flight finish, then closes the service (its log and state).
//
// Security invariants: nothing here reads or prints a secret; the keystore is opened by
// the caller and handed in. A reload that fails keeps the keys, bundle and certificate
// already in use.
package dtacmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/translog"
)

// Config is what Serve needs. Zero values of the optional fields take defaults.
type Config struct {
	Listen     string // host:port; port 0 picks a free one (the ready line names it)
	BundleFile string
	Index      uint32
	DataDir    string
	Keys       keystore.Keystore
	Logger     *slog.Logger // default: discard; it should name the DTA (With("dta", index))

	RatePerSecond      float64       // per client address; default dta's (50)
	RateBurst          int           // default dta's (100)
	LogRatePerSecond   float64       // the log's routes, per client address; default dta's (500)
	LogRateBurst       int           // default dta's (1000)
	CheckpointInterval time.Duration // default translog's (1 s)
	TLSCert, TLSKey    string        // both or neither: serve HTTPS
	ShutdownTimeout    time.Duration // for requests in flight; default 30 s
	// MetricsListen is the operations listener's host:port, where GET /metrics is
	// served (plain HTTP; port 0 picks a free one). Empty: the metrics are not served.
	// They are never served on Listen.
	MetricsListen string

	// Chain is where the log is anchored: "" or "none" (not anchored), "embedded" or
	// "rpc" (see Anchoring).
	Chain     string
	Anchoring Anchoring

	// Ready receives one line once the server accepts connections:
	// "polyroot: DTA <i> of <domain> ready at <URL> (log <origin>, bundle
	// <fingerprint>[; metrics at <URL of /metrics>])". Default: discard.
	Ready io.Writer
}

// ReadBundle reads and verifies a trust bundle file; it returns the bundle and its
// fingerprint.
func ReadBundle(path string) (*bundle.Bundle, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("trust bundle: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, bundle.MaxSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("trust bundle %s: %w", path, err)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("trust bundle %s: %w", path, err)
	}
	return b, bundle.Fingerprint(raw), nil
}

// Indices lists the DTA indices of a bundle, for messages.
func Indices(b *bundle.Bundle) string {
	var idx []int
	for _, d := range b.DTAs {
		idx = append(idx, int(d.Index))
	}
	sort.Ints(idx)
	s := make([]string, len(idx))
	for i, v := range idx {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// Serve runs the DTA until ctx is cancelled or the process gets SIGINT or SIGTERM, then
// shuts down gracefully. It returns nil after a clean shutdown.
func Serve(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Ready == nil {
		cfg.Ready = io.Discard
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	log := cfg.Logger
	b, fingerprint, err := ReadBundle(cfg.BundleFile)
	if err != nil {
		return err
	}
	if _, ok := b.Find(cfg.Index); !ok {
		return fmt.Errorf("the trust bundle %s (domain %s) lists DTA %s, not DTA %d: check --index and --bundle",
			cfg.BundleFile, b.Domain, Indices(b), cfg.Index)
	}
	translog.RouteTesseraLogs(log)
	rec0, _ := b.Find(cfg.Index)
	anchor, closeChain, err := newAnchor(ctx, cfg.Chain, cfg.Anchoring, b.Anchoring, rec0.LogOrigin, dta.LogDir(cfg.DataDir), log)
	if err != nil {
		return err
	}
	dcfg := dta.Config{
		Bundle: b, Index: cfg.Index, Keys: cfg.Keys, DataDir: cfg.DataDir, Logger: log,
		Log:           translog.Options{CheckpointInterval: cfg.CheckpointInterval},
		RatePerSecond: cfg.RatePerSecond, RateBurst: cfg.RateBurst,
		LogRatePerSecond: cfg.LogRatePerSecond, LogRateBurst: cfg.LogRateBurst,
	}
	if anchor != nil {
		dcfg.Anchor = anchor
	}
	svc, err := dta.New(ctx, dcfg)
	if err != nil {
		closeChain()
		return err
	}
	closeService := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		defer closeChain() // after the anchorer, which Close stops
		return svc.Close(cctx)
	}

	rec := svc.Record()
	var metricsURL string
	err = httpx.Serve(ctx, httpx.ServeOptions{
		Listen: cfg.Listen, Handler: svc.Handler(), TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey,
		Logger: log, ShutdownTimeout: cfg.ShutdownTimeout,
		MetricsListen: cfg.MetricsListen, Metrics: svc.MetricsHandler(), RefusedConnections: svc.RefusedConnections(),
		MetricsReady: func(url string) {
			metricsURL = url
			log.Info("metrics served on the operations listener", "url", url)
		},
		// SIGHUP: the keys and the bundle file, swapped together by Reload.
		Reload: func(ctx context.Context) error {
			nb, fp, err := ReadBundle(cfg.BundleFile)
			if err != nil {
				return err
			}
			if !b.Anchoring.Equal(nb.Anchoring) {
				return errors.New("the new trust bundle names another anchoring (chain and contract) than this process anchors by: restart dta serve with it")
			}
			if err := svc.Reload(ctx, nb); err != nil {
				return err
			}
			log.Info("reloaded keys and trust bundle", "bundle_fingerprint", fp)
			return nil
		},
		Ready: func(url string) {
			// No "dta" attribute: the caller's logger carries it on every line (dta
			// serve and the devnet add it with With), and a second one would repeat it.
			log.Info("DTA ready", "domain", b.Domain, "url", url, "log_origin", rec.LogOrigin, "bundle_fingerprint", fingerprint)
			note := ""
			if metricsURL != "" {
				note = "; metrics at " + metricsURL
			}
			fmt.Fprintf(cfg.Ready, "polyroot: DTA %d of %s ready at %s (log %s, bundle %s%s)\n", cfg.Index, b.Domain, url, rec.LogOrigin, fingerprint, note)
		},
	})
	if cerr := closeService(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing the DTA: %w", cerr))
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}
