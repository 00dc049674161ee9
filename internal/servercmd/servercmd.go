// Package servercmd runs a domain's auth server as a network service: what `polyroot
// server serve` does once its settings are resolved. It loads the trust bundle and the
// server key sQ (provisioned by `polyroot server provision`) and the token-signing key
// from the keystore (creating the token key on first start), starts server.Server
// behind an http.Server with bounded timeouts (HTTPS when a certificate is given) and
// its metrics on a separate operations listener (MetricsListen), on SIGHUP reloads the
// TLS certificate and the trust bundle file (a successor only: server.ReloadBundle),
// and on SIGINT, SIGTERM or the cancellation of its context stops
// accepting connections, lets the requests in flight finish, then closes the server's
// state database.
//
// Security invariants: nothing here prints or logs a secret (sQ, the token key, the
// registrar key, the admin and introspection tokens); the keystore is opened by the
// caller and handed in. A failed certificate reload keeps the certificate in use.
//
// Channel binding needs this process to terminate TLS (see package server), with TLS
// 1.3 only: without a certificate the server serves plain HTTP, which is for loopback
// tests only.
package servercmd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// SecretTokenKey is the keystore name of the Ed25519 seed that signs access tokens.
// Serve creates it on first start when the keystore does not hold it.
const SecretTokenKey = "token-key"

// SecretRegistrarKey is the keystore name of the registrar's Ed25519 seed, which
// `polyroot server provision` stores there; Serve reads it when Config.RegistrarKey is
// nil.
const SecretRegistrarKey = "registrar-key"

// Config is what Serve needs. Zero values of the optional fields take defaults.
type Config struct {
	Listen       string // host:port; port 0 picks a free one (the ready line names it)
	BundleFile   string
	RegistrarKey ed25519.PrivateKey // nil: SecretRegistrarKey from Keys
	Keys         keystore.Keystore  // holds server.SecretServerKey, SecretTokenKey and maybe SecretRegistrarKey
	AdminToken   string             // the registrar admin API's bearer credential
	DataDir      string
	Logger       *slog.Logger // default: discard
	// Store, DatabaseURL and Migrate choose the state store: server.Config's.
	Store       string
	DatabaseURL string
	Migrate     bool

	RatePerSecond     float64 // per client address; default server's (50)
	RateBurst         int     // default server's (100)
	MaxFailures       int     // default server's (3)
	MaxFailuresPerDay int     // the daily failure budget; default server's (10)
	// LoginBatchSize, LoginBatchWindow and LoginPointCache tune the login path; zero:
	// the server's defaults (server.Config).
	LoginBatchSize   int
	LoginBatchWindow time.Duration
	LoginPointCache  int
	// RefuseUnboundLogins: server.Config.RefuseUnboundLogins.
	RefuseUnboundLogins bool
	TokenTTL            time.Duration // default server's (15 min)
	CodeTTL             time.Duration // default server's (24 h)
	DTAClient           *http.Client  // for revocation notices and probes; default server's
	DTAProbeInterval    time.Duration // how often the DTAs' readiness is probed; default server's (10 s)
	TLSCert, TLSKey     string        // both or neither: serve HTTPS
	ShutdownTimeout     time.Duration // for requests in flight; default 30 s
	// MetricsListen is the operations listener's host:port, where GET /metrics is
	// served (plain HTTP; port 0 picks a free one). Empty: the metrics are not served.
	// They are never served on Listen.
	MetricsListen string
	// AdminListen is the admin listener's host:port (port 0 picks a free one), with the
	// TLS of Listen: the admin API is served there and not on Listen. Empty: on Listen.
	AdminListen string

	// IntrospectionToken is the bearer credential of POST /v1/token/introspect, for
	// resource servers; empty: the endpoint is off (server.Config).
	IntrospectionToken string

	// OIDC and WebDir are server.Config's: the OpenID Provider and the browser client.
	OIDC   server.OIDCConfig
	WebDir string

	// Ready receives one line once the server accepts connections:
	// "polyroot: auth server of <domain> ready at <URL> (bundle <fingerprint>[; admin API
	// at <URL>][; metrics at <URL of /metrics>])". Default: discard.
	Ready io.Writer
}

// LoadServerKey reads sQ from the keystore, with a remedy when it is missing.
func LoadServerKey(ctx context.Context, ks keystore.Keystore) (*pairing.G2, error) {
	raw, err := ks.Get(ctx, server.SecretServerKey)
	if errors.Is(err, keystore.ErrNotFound) {
		return nil, fmt.Errorf("the keystore holds no server key %q: run `polyroot server provision` first", server.SecretServerKey)
	}
	if err != nil {
		return nil, err
	}
	sQ, err := pairing.DecodeG2(raw)
	if err != nil {
		return nil, fmt.Errorf("the server key %q in the keystore is not a valid point: provision again (polyroot server provision --force)", server.SecretServerKey)
	}
	return sQ, nil
}

// registrarKey reads the registrar key that `polyroot server provision` stored in ks.
func registrarKey(ctx context.Context, ks keystore.Keystore) (ed25519.PrivateKey, error) {
	seed, err := ks.Get(ctx, SecretRegistrarKey)
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return nil, fmt.Errorf("no registrar key: the keystore does not hold %q and no registrar_key file is set; "+
			"run `polyroot server provision`, which stores it there", SecretRegistrarKey)
	case err != nil:
		return nil, err
	case len(seed) != ed25519.SeedSize:
		return nil, fmt.Errorf("the registrar key %q in the keystore is not a %d-byte Ed25519 seed", SecretRegistrarKey, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// tokenKey reads the token key, creating it if the keystore does not hold one.
func tokenKey(ctx context.Context, ks keystore.Keystore, log *slog.Logger) (ed25519.PrivateKey, error) {
	seed, err := ks.Get(ctx, SecretTokenKey)
	if errors.Is(err, keystore.ErrNotFound) {
		seed = make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := ks.Put(ctx, SecretTokenKey, seed); err != nil {
			return nil, fmt.Errorf("storing a new token key: %w", err)
		}
		log.Info("created a new access-token signing key in the keystore", "secret", SecretTokenKey)
	} else if err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("the token key %q in the keystore is not a %d-byte Ed25519 seed", SecretTokenKey, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// gcPercent is the auth server's GOGC unless the environment sets one. A login
// allocates tens of kilobytes against a live heap of a few megabytes, so at Go's
// default of 100 the collector runs every few dozen logins, each time scanning the
// stack of every open connection: at 400 a login cost about 6% less CPU under
// BenchmarkLoginLoad/burst, and the server's peak memory there grew from 88 to 121 MB.
const gcPercent = 400

// Serve runs the auth server until ctx is cancelled or the process gets SIGINT or
// SIGTERM, then shuts down gracefully. It returns nil after a clean shutdown. Unless
// GOGC is set, it sets the process's garbage collection target to gcPercent.
func Serve(ctx context.Context, cfg Config) error {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
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
	raw, err := os.ReadFile(cfg.BundleFile)
	if err != nil {
		return fmt.Errorf("trust bundle: %w", err)
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		return fmt.Errorf("trust bundle %s: %w", cfg.BundleFile, err)
	}
	fingerprint := bundle.Fingerprint(raw)
	sQ, err := LoadServerKey(ctx, cfg.Keys)
	if err != nil {
		return err
	}
	tk, err := tokenKey(ctx, cfg.Keys, log)
	if err != nil {
		return err
	}
	if cfg.RegistrarKey == nil {
		if cfg.RegistrarKey, err = registrarKey(ctx, cfg.Keys); err != nil {
			return err
		}
	}
	srv, err := server.New(ctx, server.Config{
		Bundle: b, BundleFile: raw, RegistrarKey: cfg.RegistrarKey, ServerKey: sQ, TokenKey: tk,
		AdminToken: cfg.AdminToken, AdminListener: cfg.AdminListen != "", DataDir: cfg.DataDir, Store: cfg.Store, DatabaseURL: cfg.DatabaseURL, Migrate: cfg.Migrate, Logger: log,
		MaxFailures: cfg.MaxFailures, MaxFailuresPerDay: cfg.MaxFailuresPerDay, TokenTTL: cfg.TokenTTL, CodeTTL: cfg.CodeTTL,
		LoginBatchSize: cfg.LoginBatchSize, LoginBatchWindow: cfg.LoginBatchWindow, LoginPointCache: cfg.LoginPointCache,
		RefuseUnboundLogins: cfg.RefuseUnboundLogins,
		RatePerSecond:       cfg.RatePerSecond, RateBurst: cfg.RateBurst, DTAClient: cfg.DTAClient,
		DTAProbeInterval: cfg.DTAProbeInterval, IntrospectionToken: cfg.IntrospectionToken,
		OIDC: cfg.OIDC, WebDir: cfg.WebDir,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		// The words of the CLI's check before the keystore unlock (which catches this
		// first where it can probe the lock).
		return fmt.Errorf("the data directory %s is in use by another process (is the service already running on it?); stop it or choose another --data-dir (%w)", cfg.DataDir, err)
	}
	if err != nil {
		return err
	}

	if cfg.TLSCert == "" {
		log.Warn("serving plain HTTP: logins have no channel binding; use it on loopback for tests only")
	}
	var metricsURL, adminURL string
	err = httpx.Serve(ctx, httpx.ServeOptions{
		Listen: cfg.Listen, Handler: srv.Handler(), TLSCert: cfg.TLSCert, TLSKey: cfg.TLSKey,
		MinTLSVersion: tls.VersionTLS13, // channel-bound logins (docs/protocol.md 9.5)
		Logger:        log, ShutdownTimeout: cfg.ShutdownTimeout,
		MetricsListen: cfg.MetricsListen, Metrics: srv.MetricsHandler(), RefusedConnections: srv.RefusedConnections(),
		AdminListen: cfg.AdminListen, Admin: srv.AdminHandler(),
		AdminReady: func(url string) {
			adminURL = url
			log.Info("admin API served on its own listener", "url", url)
		},
		// SIGHUP: the trust bundle file, which may now hold a successor of the bundle in
		// use (after a resharing); anything else is refused and the bundle stays.
		Reload: func(context.Context) error {
			raw, err := os.ReadFile(cfg.BundleFile)
			if err != nil {
				return fmt.Errorf("trust bundle: %w", err)
			}
			return srv.ReloadBundle(raw)
		},
		MetricsReady: func(url string) {
			metricsURL = url
			log.Info("metrics served on the operations listener", "url", url)
		},
		Ready: func(url string) {
			log.Info("auth server ready", "domain", b.Domain, "url", url, "bundle_fingerprint", fingerprint)
			fmt.Fprintf(cfg.Ready, "polyroot: auth server of %s ready at %s (bundle %s%s%s)\n", b.Domain, url, fingerprint, urlNote("admin API", adminURL), urlNote("metrics", metricsURL))
		},
	})
	if cerr := srv.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing the state database: %w", cerr))
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// urlNote is the ready line's mention of what is served at url, if it is.
func urlNote(what, url string) string {
	if url == "" {
		return ""
	}
	return "; " + what + " at " + url
}
