package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
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

	// AdminListen is the host:port of the admin listener (port 0 picks a free one),
	// serving Admin with the TLS of Listen (HTTPS when TLSCert is given): the routes
	// of an administrator, away from the public listener, so that a firewall or the
	// loopback interface can keep them from the network. Empty: no admin listener.
	AdminListen string
	Admin       http.Handler
	// AdminReady is called once, before Ready, with the admin listener's URL.
	AdminReady func(url string)

	// MaxConnections bounds the connections the public listener holds open at once;
	// past it, new ones wait in the kernel's queue until one closes. Zero means
	// DefaultMaxConnections. The admin and operations listeners hold at most
	// maxOperatorConnections each.
	MaxConnections int
	// MaxClientConnections bounds the connections one client (an IPv4 address or an
	// IPv6 /64; loopback peers are not counted) holds open on the public listener at
	// once; past it, its new ones are closed at once. Zero means a sixteenth of
	// MaxConnections, at least 32. The /64s of one IPv6 /48 hold at most a quarter of
	// MaxConnections together (or MaxClientConnections, if that is more).
	MaxClientConnections int
	// RefusedConnections, if set, counts the connections closed for
	// MaxClientConnections (NewRefusedConnectionsCounter); the log samples them.
	RefusedConnections prometheus.Counter
}

// maxOperatorConnections bounds each of the admin and operations listeners: they
// serve a few operators and a metrics scraper.
const maxOperatorConnections = 256

// DefaultMaxConnections is the public listener's bound on open connections unless
// ServeOptions.MaxConnections sets one: three quarters of the process's limit on open
// files (RLIMIT_NOFILE, which Go raises to its hard limit at start) less what the
// admin and operations listeners may hold, at most 65,536 and at least 64 (4,096
// where the limit cannot be read). A process that runs out of file descriptors fails
// in places that cannot fail gracefully (the transparency log's library panics when
// it cannot open its lock file), and idle keep-alive connections cost anyone next to
// nothing to hold: the rest of the limit stays for the process's own files and
// connections.
func DefaultMaxConnections() int {
	limit, ok := openFileLimit()
	if !ok {
		return 4096
	}
	return int(min(max(int64(limit/4*3)-2*maxOperatorConnections, 64), 65536))
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
		ErrorLog:          stdlog.New(&serverErrorLog{log: log, now: time.Now}, "", 0),
	}
}

// serverErrorLog carries net/http's own error lines (a failed TLS handshake, a
// connection that broke mid-request) to the service's log at Warn, at most
// serverErrorBurst lines a minute: anyone can make one per connection. The lines left
// out are counted in the first line of the next minute.
type serverErrorLog struct {
	log *slog.Logger
	now func() time.Time

	mu          sync.Mutex
	windowStart time.Time
	logged      int // in the current window
	unlogged    int // in the current window
}

// serverErrorBurst is how many of net/http's error lines a minute reach the log.
const serverErrorBurst = 20

func (l *serverErrorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	var unlogged int
	if now.Sub(l.windowStart) >= time.Minute {
		unlogged = l.unlogged
		l.windowStart, l.logged, l.unlogged = now, 0, 0
	}
	if l.logged >= serverErrorBurst {
		l.unlogged++
		return len(p), nil
	}
	l.logged++
	line := strings.TrimSpace(string(p))
	if len(line) > 512 {
		line = line[:512] + "…"
	}
	if unlogged > 0 {
		l.log.Warn(line, "unlogged_before", unlogged)
	} else {
		l.log.Warn(line)
	}
	return len(p), nil
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
	if o.AdminListen != "" && o.Admin == nil {
		return errors.New("an admin listener needs an admin handler")
	}
	var tlsConfig *tls.Config
	if o.TLSCert != "" {
		minVersion := o.MinTLSVersion
		if minVersion == 0 {
			minVersion = tls.VersionTLS12
		}
		tlsConfig = &tls.Config{
			MinVersion:     minVersion,
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Load(), nil },
		}
	}
	// The listeners, the public one first; ops (plain HTTP, metrics) is never TLS.
	main := &listener{h: o.Handler, addr: o.Listen, tls: tlsConfig}
	all := []*listener{main}
	if o.AdminListen != "" {
		all = append(all, &listener{what: "admin", h: o.Admin, addr: o.AdminListen, tls: tlsConfig, ready: o.AdminReady})
	}
	if o.MetricsListen != "" {
		all = append(all, &listener{what: "metrics", h: opsHandler(o.Metrics), addr: o.MetricsListen, path: MetricsPath, ready: o.MetricsReady, ops: true})
	}
	maxConns := o.MaxConnections
	if maxConns <= 0 {
		maxConns = DefaultMaxConnections()
	}
	for i, ln := range all {
		l, err := net.Listen("tcp", ln.addr)
		if err != nil {
			for _, opened := range all[:i] {
				opened.l.Close()
			}
			return ln.wrap("listen", err)
		}
		if ln == main {
			perClient := o.MaxClientConnections
			if perClient <= 0 {
				perClient = max(maxConns/16, 32)
			}
			ln.l = limitPerClient(netutil.LimitListener(l, maxConns), perClient, max(maxConns/4, perClient), o.RefusedConnections, log)
		} else {
			ln.l = netutil.LimitListener(l, maxOperatorConnections)
		}
		ln.hs = newHTTPServer(ln.h, log)
		if ln.tls != nil {
			ln.hs.TLSConfig = ln.tls.Clone() // ServeTLS adds to its server's (h2): one each
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	stopCtx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	stopped := make(chan *listener, len(all))
	for _, ln := range all {
		go func() {
			if ln.tls != nil {
				ln.err = ln.hs.ServeTLS(ln.l, "", "")
			} else {
				ln.err = ln.hs.Serve(ln.l)
			}
			stopped <- ln
		}()
	}
	for _, ln := range all[1:] {
		if ln.ready != nil {
			ln.ready(ln.url())
		}
	}
	if o.Ready != nil {
		o.Ready(main.url())
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
		case ln := <-stopped:
			log.Error("HTTP server stopped", "listener", ln.name(), "err", ln.err)
			for _, other := range all {
				other.hs.Close()
			}
			return ln.wrap("serve", ln.err)
		case <-stopCtx.Done():
			break wait
		}
	}

	stop() // a second SIGINT or SIGTERM now ends the process at once
	log.Info("shutting down: finishing requests in flight (a second signal stops at once)", "timeout", o.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, ln := range all {
		if ln.ops { // scrapes are short: no need to wait for them
			ln.hs.Close()
		} else if err := ln.hs.Shutdown(sctx); err != nil {
			log.Warn("requests still in flight at the shutdown timeout; closing their connections", "listener", ln.name(), "err", err)
			ln.hs.Close()
		}
		ln.l.Close() // Shutdown misses a listener that Serve has not taken yet
	}
	for range all {
		if ln := <-stopped; ln.err != nil && !errors.Is(ln.err, http.ErrServerClosed) {
			errs = append(errs, ln.wrap("serve", ln.err))
		}
	}
	return errors.Join(errs...)
}

// A listener is one of Serve's: the public one, the admin one or the operations one.
type listener struct {
	what  string // "admin" or "metrics"; "" for the public one
	h     http.Handler
	addr  string
	path  string // the URL's path given to ready
	tls   *tls.Config
	ops   bool // closed at shutdown without waiting for its requests
	ready func(url string)

	l   net.Listener
	hs  *http.Server
	err error // Serve's, once it returned
}

// wrap names the listener in an error of step ("listen", "serve"): "listen: …" for
// the public one, "admin listen: …" for another.
func (ln *listener) wrap(step string, err error) error {
	if ln.what == "" {
		return fmt.Errorf("%s: %w", step, err)
	}
	return fmt.Errorf("%s %s: %w", ln.what, step, err)
}

// name is the listener's name in logs.
func (ln *listener) name() string {
	if ln.what == "" {
		return "public"
	}
	return ln.what
}

func (ln *listener) url() string {
	scheme := "http"
	if ln.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.l.Addr().String() + ln.path
}
