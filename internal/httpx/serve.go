package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// HTTP server limits of polyroot's services. Issuance waits for the log to make an
// entry durable, so the write timeout leaves room for a slow disk; request bodies are
// bounded by the handlers (MaxBody).
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 16 << 10
)

// ServeOptions configure Serve.
type ServeOptions struct {
	Listen          string // host:port; port 0 picks a free one
	Handler         http.Handler
	TLSCert, TLSKey string // both or neither; HTTPS when given
	// MinTLSVersion is the lowest TLS version accepted (default tls.VersionTLS12). The
	// auth server sets tls.VersionTLS13: its logins bind the tls-exporter value, which
	// is only unambiguous under TLS 1.3.
	MinTLSVersion   uint16
	Logger          *slog.Logger
	ShutdownTimeout time.Duration // for requests in flight; default 30 s
	// Reload runs on SIGHUP, after a new TLS certificate has loaded and before it is
	// swapped in; if either fails, everything in use stays. Nil: SIGHUP only reloads
	// the certificate.
	Reload func(ctx context.Context) error
	// Ready is called once with the URL the server listens on.
	Ready func(url string)

	// MetricsListen is the host:port of the operations listener (port 0 picks a free
	// one): plain HTTP, serving Metrics at GET /metrics and nothing else. Metrics are
	// never served on Listen: per-request counts and timings are for operators, so
	// keep this on loopback or a monitoring network. Empty: no operations listener.
	MetricsListen string
	Metrics       http.Handler
	// MetricsReady is called once, before Ready, with the URL of /metrics on the
	// operations listener.
	MetricsReady func(url string)
}

// MetricsPath is where the operations listener serves the metrics.
const MetricsPath = "/metrics"

// opsHandler is the operations listener's handler: GET (and HEAD) /metrics, and 404
// for everything else.
func opsHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+MetricsPath, metrics)
	return mux
}

// newHTTPServer is an http.Server with the services' limits.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve serves o.Handler until ctx is cancelled or the process gets SIGINT or
// SIGTERM, then stops accepting connections and lets the requests in flight finish
// (up to ShutdownTimeout; a second signal ends the process at once). It returns nil
// after a clean shutdown; the caller then closes its service.
func Serve(ctx context.Context, o ServeOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return errors.New("TLS needs both a certificate and a key file")
	}
	var cert atomic.Pointer[tls.Certificate]
	if o.TLSCert != "" {
		c, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		cert.Store(&c)
	}
	if o.MetricsListen != "" && o.Metrics == nil {
		return errors.New("an operations listener needs a metrics handler")
	}
	l, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := newHTTPServer(o.Handler, log)
	var ml net.Listener // the operations listener
	var ops *http.Server
	if o.MetricsListen != "" {
		if ml, err = net.Listen("tcp", o.MetricsListen); err != nil {
			l.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		ops = newHTTPServer(opsHandler(o.Metrics), log)
	}
	scheme := "http"
	if o.TLSCert != "" {
		scheme = "https"
		minVersion := o.MinTLSVersion
		if minVersion == 0 {
			minVersion = tls.VersionTLS12
		}
		hs.TLSConfig = &tls.Config{
			MinVersion:     minVersion,
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
			served <- hs.ServeTLS(l, "", "")
		} else {
			served <- hs.Serve(l)
		}
	}()
	opsServed := make(chan error, 1)
	if ops != nil {
		go func() { opsServed <- ops.Serve(ml) }()
		if o.MetricsReady != nil {
			o.MetricsReady("http://" + ml.Addr().String() + MetricsPath)
		}
	}
	if o.Ready != nil {
		o.Ready(scheme + "://" + l.Addr().String())
	}

	reload := func() {
		var c tls.Certificate
		var err error
		if o.TLSCert != "" {
			if c, err = tls.LoadX509KeyPair(o.TLSCert, o.TLSKey); err != nil {
				err = fmt.Errorf("TLS certificate: %w", err)
			}
		}
		if err == nil && o.Reload != nil {
			err = o.Reload(context.WithoutCancel(ctx))
		}
		if err != nil {
			log.Error("reload failed; keeping everything in use", "err", err)
			return
		}
		if o.TLSCert != "" {
			cert.Store(&c)
			log.Info("reloaded the TLS certificate")
		}
	}

wait:
	for {
		select {
		case <-hup:
			reload()
		case err := <-served:
			log.Error("HTTP server stopped", "err", err)
			if ops != nil {
				ops.Close()
			}
			return fmt.Errorf("serve: %w", err)
		case err := <-opsServed:
			log.Error("operations listener stopped", "err", err)
			hs.Close()
			return fmt.Errorf("serve metrics: %w", err)
		case <-stopCtx.Done():
			break wait
		}
	}

	stop() // a second SIGINT or SIGTERM now ends the process at once
	log.Info("shutting down: finishing requests in flight (a second signal stops at once)", "timeout", o.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("requests still in flight at the shutdown timeout; closing their connections", "err", err)
		hs.Close()
	}
	l.Close()       // Shutdown misses a listener that Serve has not taken yet
	if ops != nil { // scrapes are short: no need to wait for them
		ops.Close()
		ml.Close()
		if err := <-opsServed; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve metrics: %w", err)
		}
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
