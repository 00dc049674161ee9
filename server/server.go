package server

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server/middleware"
)

// Config configures an auth server.
type Config struct {
	Bundle       *bundle.Bundle     // the domain's trust bundle
	BundleFile   []byte             // the same, byte for byte, served at GET /v1/bundle
	RegistrarKey ed25519.PrivateKey // the bundle's registrar key: signs tickets
	ServerKey    *pairing.G2        // sQ, from Provision (kept in a keystore)
	TokenKey     ed25519.PrivateKey // signs access tokens
	AdminToken   string             // the registrar admin API's bearer credential (≥ 16 bytes)
	// AdminListener takes the admin API out of Handler: AdminHandler serves it, on a
	// listener of its own that a firewall or the loopback interface keeps from the
	// network the logins come from.
	AdminListener bool
	DataDir       string // server.db lives here
	// Store is the state store: "bbolt" (the default: DataDir/server.db, for one
	// process) or "postgres" (DatabaseURL, shared by replicas of the server).
	Store string
	// DatabaseURL is the PostgreSQL connection string of Store "postgres". It may hold
	// a password: it is never logged.
	DatabaseURL string
	// Migrate applies the PostgreSQL schema's migrations at start (MigratePostgres);
	// without it a database at another version is refused.
	Migrate  bool
	Logger   *slog.Logger // default: discard
	Registry prometheus.Registerer
	Now      func() time.Time // default time.Now

	// IntrospectionToken is the bearer credential of POST /v1/token/introspect, for
	// resource servers (≥ 16 bytes, not the admin token); empty: the endpoint is off.
	IntrospectionToken string

	MaxFailures int // consecutive login failures before a block (default 3)
	// MaxFailuresPerDay is the daily failure budget of an identity: when it has had
	// that many failed logins within 24 h (from its first failure in the window),
	// successes in between or not, it is blocked until the registrar unblocks it
	// (default 10). Without it, a thief with a token would get MaxFailures − 1 guesses
	// between each two of the owner's logins, forever; with it, fewer than
	// MaxFailuresPerDay a day, and reaching it is logged and counted
	// (polyroot_server_failure_budget_exceeded_total).
	MaxFailuresPerDay int

	SessionTTL time.Duration // pass 1 → pass 2 (default 30 s)
	TokenTTL   time.Duration // access tokens (default 15 min)
	CodeTTL    time.Duration // enrolment codes (default 24 h)
	TicketTTL  time.Duration // client and permit tickets handed out (default 1 h)
	// Grace is how long after a permit-slot boundary the previous slot is still
	// accepted (default 5 min).
	Grace time.Duration
	// RatePerSecond and RateBurst limit requests per client address (defaults 50, 100).
	RatePerSecond float64
	RateBurst     int
	DTAClient     *http.Client // for revocation notices and readiness probes (default: 15 s timeout)
	// DTAProbeInterval is how often every DTA's /readyz is asked, for the server's
	// own /readyz (degraded while one is down), the polyroot_server_dta_up metric and
	// the fast 503 of enrolments and permits while one is down (default 10 s).
	DTAProbeInterval time.Duration
	// LoginBatchSize is the most pass-2 messages checked together under load (default
	// 64; 1 checks each alone, in its own request). LoginBatchWindow is how long a
	// batch waits for more while the server is loaded (default 10 ms; negative: never).
	// An idle server checks a pass 2 at once either way.
	LoginBatchSize   int
	LoginBatchWindow time.Duration
	// OIDC makes the server an OpenID Provider (oidc.go); off by default.
	OIDC OIDCConfig
	// WebDir holds the browser client (polyroot.wasm and wasm_exec.js, which `make
	// build` puts in bin/) that the login page at /login runs; without it the page
	// says the browser client is not installed.
	WebDir string
	// RefuseUnboundLogins makes the server refuse every login and renewal that asks for
	// no channel binding ("unbound": 403 unbound_refused, before pass 1 is looked at), for
	// a domain whose clients can all bind their logins to TLS: then no client, whatever
	// its flaws, can be led into a login that a trusted interceptor could relay. The
	// login pages and the OpenID Provider log in from a browser, unbound: New refuses
	// it together with OIDC, and the pages cannot log in.
	RefuseUnboundLogins bool
	// LoginPointCache is how many login points A' (by identity and permit slot) the
	// server keeps in memory, so that a device logging in again within its slot costs
	// no hash to the curve (pairing.LoginPoints; default 65536, about 12 MB; negative:
	// none).
	LoginPointCache int
}

// A Server is a running auth server: registrar, M-Pin Full verifier and token issuer.
type Server struct {
	cfg      Config
	domain   pairing.Domain
	verifier *pairing.Verifier
	// renewer verifies permit renewals: the same sQ, with permits disabled (A' = A).
	renewer  *pairing.Verifier
	store    stateStore
	fails    *failures
	keys     sessionKeys
	tokenKID string
	jwks     middleware.JWKS
	metrics  *metrics
	probe    *dtaProbe
	readyz   *httpx.Readiness
	ready    atomic.Bool
	// stopProbe stops the DTA probe and waits for it.
	stopProbe func()
	stopPrune func()   // stops the code pruner (startCodePruner)
	batch     *batcher // nil when every pass 2 is checked alone
	// revRetry retries revocation notices in the background (revocation.go).
	revRetry revocationRetrier
	// trust is the trust bundle in use: cfg.Bundle until ReloadBundle swaps in a
	// successor (bundlereload.go).
	trust atomic.Pointer[trustBundle]
	web   atomic.Pointer[http.Handler] // the login pages (internal/webui) of the bundle in use
	oidc  *oidcop.Provider             // nil unless Config.OIDC.Issuer is set
	// permitKey keys the nonces of permit tickets (permitticket.go).
	permitKey []byte
}

// New opens the state database, prepares the verifier and starts probing the DTAs
// in the background until Close.
func New(ctx context.Context, cfg Config) (*Server, error) {
	switch {
	case cfg.Bundle == nil || len(cfg.BundleFile) == 0:
		return nil, errors.New("server: a trust bundle is required")
	case len(cfg.RegistrarKey) != ed25519.PrivateKeySize ||
		!slices.Equal(cfg.RegistrarKey.Public().(ed25519.PublicKey), cfg.Bundle.RegistrarPublicKey()):
		return nil, errors.New("server: the registrar key is not the bundle's registrar key")
	case cfg.ServerKey == nil:
		return nil, errors.New("server: the server key sQ is required (provision it first)")
	case len(cfg.TokenKey) != ed25519.PrivateKeySize:
		return nil, errors.New("server: an Ed25519 token key is required")
	case len(cfg.AdminToken) < 16:
		return nil, errors.New("server: the admin token must be at least 16 characters")
	case cfg.IntrospectionToken != "" && (len(cfg.IntrospectionToken) < 16 || cfg.IntrospectionToken == cfg.AdminToken):
		return nil, errors.New("server: the introspection token must be at least 16 characters, and not the admin token")
	case cfg.DataDir == "":
		return nil, errors.New("server: a data directory is required")
	}
	if parsed, err := bundle.Parse(cfg.BundleFile); err != nil || parsed.Domain != cfg.Bundle.Domain {
		return nil, errors.New("server: BundleFile is not a valid signed bundle of the configured domain")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.SessionTTL, 30*time.Second)
	def(&cfg.TokenTTL, 15*time.Minute)
	def(&cfg.CodeTTL, 24*time.Hour)
	def(&cfg.TicketTTL, time.Hour)
	def(&cfg.DTAProbeInterval, 10*time.Second)
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 3
	}
	if cfg.MaxFailuresPerDay <= 0 {
		cfg.MaxFailuresPerDay = 10
	}
	if cfg.RatePerSecond <= 0 {
		cfg.RatePerSecond = 50
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 100
	}
	if cfg.LoginBatchSize <= 0 {
		cfg.LoginBatchSize = defaultBatchSize
	}
	if cfg.LoginBatchWindow == 0 {
		cfg.LoginBatchWindow = defaultBatchWindow
	}
	if cfg.DTAClient == nil {
		cfg.DTAClient = &http.Client{Timeout: dtaTimeout}
	}
	key, err := pairing.NewServerKey(cfg.ServerKey)
	if err != nil {
		return nil, fmt.Errorf("server: server key: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	domain := pairing.Domain{Name: cfg.Bundle.Domain, PermitPeriod: cfg.Bundle.PermitPeriod}
	verifier := &pairing.Verifier{Domain: domain, Key: key, Grace: cfg.Grace}
	if cfg.LoginPointCache >= 0 {
		verifier.Points = pairing.NewLoginPoints(cmp.Or(cfg.LoginPointCache, defaultLoginPointCache))
	}
	renewer := &pairing.Verifier{Domain: pairing.Domain{Name: domain.Name}, Key: key}
	st, err := openStateStore(ctx, cfg, verifier, renewer)
	if err != nil {
		return nil, err
	}
	fails := newFailures(cfg.MaxFailures, cfg.MaxFailuresPerDay, st)
	pub := cfg.TokenKey.Public().(ed25519.PublicKey)
	s := &Server{
		cfg:       cfg,
		domain:    domain,
		verifier:  verifier,
		renewer:   renewer,
		store:     st,
		fails:     fails,
		tokenKID:  middleware.KeyID(pub),
		jwks:      middleware.JWKS{Keys: []middleware.JWK{middleware.PublicJWK(pub)}},
		metrics:   newMetrics(cfg.Registry),
		permitKey: derivedKey(cfg.RegistrarKey, "polyroot permit ticket nonces v1"),
	}
	if err := s.setUpWeb(); err != nil {
		st.close()
		return nil, err
	}
	if cfg.LoginBatchSize > 1 {
		s.batch = newBatcher(cfg.LoginBatchSize, cfg.LoginBatchWindow, s.metrics)
	}
	s.trust.Store(&trustBundle{b: cfg.Bundle, file: cfg.BundleFile, fingerprint: bundle.Fingerprint(cfg.BundleFile)})
	s.probe = newDTAProbe(cfg.Bundle, cfg.DTAClient, cfg.Logger, s.metrics.dtaUp)
	s.readyz = s.newReadiness()
	s.metrics.registry.MustRegister(s.readyz)
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.readyz)
	}
	s.probe.afterRound = func() {
		if s.ready.Load() { // not while starting or stopping: that is no news
			s.readyz.Report(context.Background())
		}
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); s.probe.run(pctx, cfg.DTAProbeInterval) }()
	s.stopProbe = func() { cancel(); <-done }
	s.stopPrune = s.startCodePruner()
	s.ready.Store(true)
	return s, nil
}

// openStateStore opens the store that cfg.Store names.
func openStateStore(ctx context.Context, cfg Config, verifier, renewer *pairing.Verifier) (stateStore, error) {
	switch cfg.Store {
	case "", "bbolt":
		st, err := openStore(filepath.Join(cfg.DataDir, "server.db"), cfg.SessionTTL)
		if err != nil {
			return nil, fmt.Errorf("server: state database: %w", err)
		}
		return st, nil
	case "postgres":
		if cfg.DatabaseURL == "" {
			return nil, errors.New("server: the postgres store needs a database URL")
		}
		if cfg.Migrate {
			from, to, err := MigratePostgres(ctx, cfg.DatabaseURL)
			if err != nil {
				return nil, err
			}
			if to != from {
				cfg.Logger.Info("PostgreSQL schema migrated", "from", from, "to", to)
			}
		}
		sealer, err := newSessionSealer(cfg.TokenKey, verifier, renewer)
		if err != nil {
			return nil, err
		}
		st, err := openPostgres(ctx, cfg.DatabaseURL, sealer, cfg.SessionTTL)
		if err == nil && !st.syncCommit(ctx) {
			cfg.Logger.Warn("PostgreSQL commits asynchronously (synchronous_commit = off): a database crash can lose acknowledged " +
				"failure counts, holds and redeemed codes, which the lockout relies on; set synchronous_commit = on for the server's role or database")
		}
		return st, err
	}
	return nil, fmt.Errorf("server: unknown store %q: bbolt or postgres", cfg.Store)
}

// Close marks the server not ready and closes its state database. Call it after the
// HTTP server has stopped.
func (s *Server) Close() error {
	s.ready.Store(false)
	s.stopProbe()
	s.stopPrune()
	s.revRetry.stop()
	if s.batch != nil {
		s.batch.close()
	}
	return s.store.close()
}

// SessionKey returns the session key of the login that got the access token with ID
// jti, while that token is valid: an app backend in this process can use it for proof
// of possession. The caller must keep it secret.
func (s *Server) SessionKey(jti string) ([]byte, bool) {
	return s.keys.get(jti, s.cfg.Now())
}

// Backup writes a consistent copy of the state database to w.
func (s *Server) Backup(w io.Writer) error { return s.store.backup(w) }

// TokenPublicKey returns the key that verifies the server's access tokens.
func (s *Server) TokenPublicKey() ed25519.PublicKey {
	return s.cfg.TokenKey.Public().(ed25519.PublicKey)
}

func sortedKeys[V any](m map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// derivedKey is a 32-byte key for one purpose (label), derived from an Ed25519 key's
// seed with HKDF-SHA256: the server's secrets that every replica shares (the token
// key, the registrar key) key its other secrets, so no replica needs one more.
func derivedKey(k ed25519.PrivateKey, label string) []byte {
	key, err := hkdf.Key(sha256.New, k.Seed(), nil, label, 32)
	if err != nil {
		panic(err) // 32 bytes of HKDF-SHA256 cannot fail
	}
	return key
}
