package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/pairing"
)

// An Option configures Bootstrap and Open.
type Option func(*options)

type options struct {
	dtaHTTP    httpClient
	serverHTTP httpClient
	now        func() time.Time
	dtaTimeout time.Duration
	insecure   bool
	// insecureDTA allows http:// DTA URLs on hosts that are not loopback.
	insecureDTA bool
	// replace lets Enroll replace the directory's enrolment.
	replace bool
	// dtaFaults hears of DTAs that failed when t others sufficed (WithDTAFaults).
	dtaFaults func(error)
	// unbound: logins and renewals without channel binding (WithoutChannelBinding).
	unbound bool
}

// WithoutChannelBinding makes Login and RenewPermits run without channel binding:
// they ask the server for an unbound login (wire.StartRequest.Unbound) and use an
// empty binding in the transcript, so they need no TLS exporter. It is for clients
// that cannot see their TLS connection, such as a browser's fetch. The server still
// proves it holds the domain's key (ErrServerNotAuthentic otherwise), but a
// TLS-intercepting proxy that the client trusts is no longer detected: it can relay
// the login and take the access token (never the PIN). The server records an unbound
// login in the token's amr. An https:// server URL is still required unless
// WithInsecureHTTP.
func WithoutChannelBinding() Option { return func(o *options) { o.unbound = true } }

// WithReplace lets Enroll replace an enrolment that the directory already holds
// (without it, Enroll returns ErrEnrolled and changes nothing).
func WithReplace() Option { return func(o *options) { o.replace = true } }

// WithDTAFaults sets a function that hears, in a threshold domain, of the DTAs that
// failed (unreachable, or a bad share: the same error types as a *QuorumError holds)
// during an enrolment or a permit fetch that succeeded because t other DTAs answered
// validly. It is called at most once per operation, before it returns; report DTAs
// with bad shares to the domain's operator. Additive domains fail instead.
func WithDTAFaults(f func(error)) Option { return func(o *options) { o.dtaFaults = f } }

// WithNow sets the clock (default time.Now).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithDTATimeout sets the time each DTA has to answer one request (default 10 s).
func WithDTATimeout(d time.Duration) Option { return func(o *options) { o.dtaTimeout = d } }

// WithInsecureHTTP allows an http:// auth server URL on a loopback host (127.0.0.0/8,
// ::1, localhost); other hosts need https whatever the options.
// Without TLS there is no channel binding: whoever is on the path can relay a login and
// take the access token.
func WithInsecureHTTP() Option { return func(o *options) { o.insecure = true } }

// WithInsecureDTAHTTP allows plain http:// DTA URLs on hosts that are not loopback.
// Without it, Bootstrap refuses a bundle that names one and no request goes to one
// (loopback hosts — 127.0.0.0/8, ::1, localhost — may always use http, for tests and
// devnets). Over plain http a passive observer on the path reads every share a DTA
// sends: use it only where that path is trusted, e.g. between containers of a test
// set-up.
func WithInsecureDTAHTTP() Option { return func(o *options) { o.insecureDTA = true } }

func newOptions(opts []Option) *options {
	o := &options{now: time.Now, dtaTimeout: 10 * time.Second}
	for _, f := range opts {
		f(o)
	}
	o.setClients()
	return o
}

// Bootstrap pins a domain's trust bundle in dir: it reads the bundle from an http(s)
// URL or a file, checks it has the given SHA-256 fingerprint (ErrBundleFingerprint
// otherwise) and a valid registrar signature, and stores it with its fingerprint.
// A bundle that names a plain http:// DTA URL outside loopback is refused (the
// client would fetch its shares in the clear) unless WithInsecureDTAHTTP is given.
// dir is created (mode 0700) if needed. A directory already enrolled under another
// bundle is refused; one that pinned another bundle, unless WithReplace is given.
func Bootstrap(ctx context.Context, dir, bundleURLorFile, fingerprint string, opts ...Option) error {
	return bootstrap(ctx, dirStorage(dir), bundleURLorFile, fingerprint, func() error {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		return nil
	}, opts)
}

// BootstrapStorage is Bootstrap with the client's files in st instead of a directory.
func BootstrapStorage(ctx context.Context, st Storage, bundleURLorFile, fingerprint string, opts ...Option) error {
	return bootstrap(ctx, st, bundleURLorFile, fingerprint, func() error { return nil }, opts)
}

// bootstrap is Bootstrap into st; prepare runs once the bundle is checked, before st
// is used.
func bootstrap(ctx context.Context, st Storage, bundleURLorFile, fingerprint string, prepare func() error, opts []Option) error {
	o := newOptions(opts)
	fp := normalizeFingerprint(fingerprint)
	if _, err := hex.DecodeString(fp); err != nil || len(fp) != 2*sha256.Size {
		return fmt.Errorf("client: the fingerprint must be the bundle's SHA-256, 64 hex digits; %q is not", fingerprint)
	}
	file, err := readBundleSource(ctx, o.serverHTTP, bundleURLorFile)
	if err != nil {
		return err
	}
	if got := bundle.Fingerprint(file); got != fp {
		// Not its actual fingerprint: copying that from here would pin whatever bundle
		// was served.
		return fmt.Errorf("%w: %s does not have the fingerprint given (%.8s…%s); nothing was stored", ErrBundleFingerprint, bundleURLorFile, fp, fp[len(fp)-4:])
	}
	b, err := bundle.ParsePinned(file, fp)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := b.CheckDTAURLs(o.insecureDTA); err != nil {
		return fmt.Errorf("client: trust bundle: %w; the client would fetch its shares in the clear: "+
			"the domain's registrar must name https:// DTA URLs (or allow it explicitly, for tests: WithInsecureDTAHTTP, --allow-insecure-dta-http)", err)
	}
	if err := prepare(); err != nil {
		return err
	}
	if err := recoverAdoption(st); err != nil && !o.replace {
		return err
	}
	if tok, err := loadToken(st); err == nil && tok != nil && tok.BundleFingerprint != fp {
		return fmt.Errorf("client: %s holds an enrolment under another trust bundle; use another directory", where(st))
	}
	if old, err := st.Load(FingerprintFile); err == nil && normalizeFingerprint(strings.TrimSpace(string(old))) != fp && !o.replace {
		return fmt.Errorf("client: %s has pinned another trust bundle (%.16s…); use another directory, or replace it (WithReplace)",
			where(st), strings.TrimSpace(string(old)))
	}
	if err := st.Store(BundleFile, file); err != nil {
		return err
	}
	if err := st.Store(FingerprintFile, []byte(fp+"\n")); err != nil {
		return err
	}
	// A successor's journal or check time belongs to the bundle pinned before.
	return removeFiles(st, BundlePreviousFile, BundleCheckFile)
}

func readBundleSource(ctx context.Context, hc httpClient, src string) ([]byte, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		f, err := os.Open(src)
		if err != nil {
			return nil, fmt.Errorf("client: reading the bundle: %w", err)
		}
		defer f.Close()
		return readLimited(f, bundle.MaxSize)
	}
	r, err := send(ctx, hc, "GET", src, "", nil, bundle.MaxSize)
	if err != nil {
		return nil, fmt.Errorf("client: fetching the bundle: %w", err)
	}
	if r.status != 200 {
		return nil, fmt.Errorf("client: fetching the bundle from %s: %d %s", src, r.status, statusText(r.status))
	}
	return r.body, nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("client: answer larger than %d bytes", limit)
	}
	return b, nil
}

// A Client is an enrolled (or bootstrapped) identity of one domain, backed by its
// directory or Storage. It is safe for concurrent use.
type Client struct {
	st     Storage
	o      *options
	domain pairing.Domain // the same in every successor of the pinned bundle

	mu sync.Mutex
	// bundle and fingerprint are the pinned trust bundle; a successor replaces them
	// (successor.go). Read them with pinned.
	bundle      *bundle.Bundle
	fingerprint string
	state       *tokenState // nil before Enroll
	id          pairing.IDHash
	token       *pairing.G1
}

// Open loads a client directory: the pinned bundle (its fingerprint and signature are
// checked again) and, if present, the token file (refused when group or others can
// read it).
func Open(dir string, opts ...Option) (*Client, error) {
	return OpenStorage(dirStorage(dir), opts...)
}

// OpenStorage is Open with the client's files in st instead of a directory.
func OpenStorage(s Storage, opts ...Option) (*Client, error) {
	b, fp, err := loadBundle(s)
	if err != nil {
		return nil, err
	}
	c := &Client{st: s, o: newOptions(opts), bundle: b, fingerprint: fp,
		domain: pairing.Domain{Name: b.Domain, PermitPeriod: b.PermitPeriod}}
	st, err := loadToken(s)
	if err != nil {
		return nil, err
	}
	if st != nil {
		id, tk, err := st.check(b.Domain, fp)
		if err != nil {
			return nil, err
		}
		c.state, c.id, c.token = st, id, tk
	}
	return c, nil
}

// Status describes a client.
type Status struct {
	Domain   string
	Enrolled bool
	ID       string
	IDHash   string
	Device   bool
	NotAfter *time.Time // temporary identities
	// Permits are the permit slots held, in order; CurrentPermit says whether one
	// covers now, and PermitsUntil is when the last one ends.
	Permits       []PermitInfo
	CurrentPermit bool
	PermitsUntil  time.Time
}

// PermitInfo is one held time permit.
type PermitInfo struct {
	Slot        uint64
	From, Until time.Time
}

// Status returns the client's identity and permits.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Domain: c.domain.Name}
	if c.state == nil {
		return s
	}
	s.Enrolled, s.ID, s.IDHash, s.Device, s.NotAfter = true, c.state.ID, c.state.IDHash, c.state.Device, c.state.NotAfter
	p := c.domain.PermitPeriod
	if p == 0 {
		return s
	}
	cur := c.domain.Slot(c.o.now())
	for _, k := range slices.Sorted(maps.Keys(c.state.Permits)) {
		pi := PermitInfo{Slot: k, From: time.Unix(int64(k*p), 0).UTC(), Until: time.Unix(int64((k+1)*p), 0).UTC()}
		s.Permits = append(s.Permits, pi)
		s.CurrentPermit = s.CurrentPermit || k == cur
		s.PermitsUntil = pi.Until
	}
	return s
}
