// Package dtacmd runs a DTA as a network service: what `polyroot dta serve` does once
// its settings are resolved. It loads the trust bundle, starts the dta.Service behind
// an http.Server with bounded timeouts (HTTPS when a certificate is given), on SIGHUP
// reloads the keys and the bundle file together (dta.Service.Reload) and the TLS
// certificate, and on SIGINT, SIGTERM or the cancellation of its context stops
// accepting connections, lets the requests in flight finish, then closes the service
// (its log and state).
//
// Security invariants: nothing here reads or prints a secret; the keystore is opened by
// the caller and handed in. A reload that fails keeps the keys, bundle and certificate
// already in use.
package dtacmd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/translog"
)

// HTTP server limits. Issuance waits for the log to make the entry durable, so the
// write timeout leaves room for a slow disk; request bodies are bounded by the DTA
// itself (httpx.MaxBody).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 16 << 10
)

// Config is what Serve needs. Zero values of the optional fields take defaults.
type Config struct {
	Listen     string // host:port; port 0 picks a free one (the ready line names it)
	BundleFile string
	Index      uint32
	DataDir    string
	Keys       keystore.Keystore
	Logger     *slog.Logger // default: discard

	RatePerSecond      float64       // per client address; default dta's (50)
	RateBurst          int           // default dta's (100)
	CheckpointInterval time.Duration // default translog's (1 s)
	TLSCert, TLSKey    string        // both or neither: serve HTTPS
	ShutdownTimeout    time.Duration // for requests in flight; default 30 s

	// Ready receives one line once the server accepts connections:
	// "polyroot: DTA <i> of <domain> ready at <URL> (…)". Default: discard.
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
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("TLS needs both a certificate and a key file")
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
	var cert atomic.Pointer[tls.Certificate]
	if cfg.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		cert.Store(&c)
	}

	translog.RouteTesseraLogs(log)
	svc, err := dta.New(ctx, dta.Config{
		Bundle: b, Index: cfg.Index, Keys: cfg.Keys, DataDir: cfg.DataDir, Logger: log,
		Log:           translog.Options{CheckpointInterval: cfg.CheckpointInterval},
		RatePerSecond: cfg.RatePerSecond, RateBurst: cfg.RateBurst,
	})
	if err != nil {
		return err
	}
	closeService := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		return svc.Close(cctx)
	}

	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listen: %w", err), closeService())
	}
	srv := &http.Server{
		Handler:           svc.Handler(),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cert.Load() != nil {
		scheme = "https"
		srv.TLSConfig = &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Load(), nil },
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	served := make(chan error, 1)
	go func() {
		if scheme == "https" {
			served <- srv.ServeTLS(l, "", "")
		} else {
			served <- srv.Serve(l)
		}
	}()
	rec := svc.Record()
	url := scheme + "://" + l.Addr().String()
	log.Info("DTA ready", "dta", cfg.Index, "domain", b.Domain, "url", url, "log_origin", rec.LogOrigin, "bundle_fingerprint", fingerprint)
	fmt.Fprintf(cfg.Ready, "polyroot: DTA %d of %s ready at %s (log %s, bundle %s)\n", cfg.Index, b.Domain, url, rec.LogOrigin, fingerprint)

	// reload swaps nothing unless everything loads: certificate first, then the keys
	// and the bundle (which Reload swaps together).
	reload := func() {
		var c tls.Certificate
		nb, fp, err := ReadBundle(cfg.BundleFile)
		if err == nil && cfg.TLSCert != "" {
			if c, err = tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey); err != nil {
				err = fmt.Errorf("TLS certificate: %w", err)
			}
		}
		if err == nil {
			err = svc.Reload(context.WithoutCancel(ctx), nb)
		}
		if err != nil {
			log.Error("reload failed; keeping the keys, bundle and certificate in use", "err", err)
			return
		}
		if cfg.TLSCert != "" {
			cert.Store(&c)
		}
		log.Info("reloaded keys and trust bundle", "bundle_fingerprint", fp)
	}

wait:
	for {
		select {
		case <-hup:
			reload()
		case err := <-served:
			log.Error("HTTP server stopped", "err", err)
			return errors.Join(fmt.Errorf("serve: %w", err), closeService())
		case <-stopCtx.Done():
			break wait
		}
	}

	stop() // a second SIGINT or SIGTERM now ends the process at once
	log.Info("shutting down: finishing requests in flight (a second signal stops at once)", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout; closing their connections", "err", err)
		srv.Close()
	}
	l.Close() // Shutdown misses a listener that Serve has not taken yet
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serve: %w", err))
	}
	if err := closeService(); err != nil {
		errs = append(errs, fmt.Errorf("closing the DTA: %w", err))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	log.Info("stopped")
	return nil
}
