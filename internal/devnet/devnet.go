// Package devnet runs a whole local domain in one process: its DTAs (three by default,
// additive), the auth server and a chain the DTAs anchor their logs on, each service on its own
// loopback listener. It is what `polyroot devnet --dir D` and `polyroot demo` run.
//
// The chain is an embedded in-memory one by default (new on each start, so the logs
// are anchored again), served over JSON-RPC on loopback so that it can be audited
// (rpc_url in devnet.json), or a real one over JSON-RPC, which the bundle of the first
// start then names (its anchoring): that D always needs that chain and contract. The
// secrets are in encrypted file keystores in D by default, or in Vault.
//
// The auth server serves HTTPS with a certificate of the devnet CA (D/ca.pem, made on
// the first start and limited to loopback names), so that clients trusting that CA
// see channel binding at work.
//
// The devnet is for local use only: its DTAs serve plain HTTP on loopback, and the
// keystores' passphrase, the registrar key, the anchoring keys, the devnet CA's key
// and the admin token are generated and stored in D (mode 0600). Each service's
// metrics are on an operations listener of its own, on loopback too (devnet.json names
// their URLs). On a restart on the same D everything is reused (keys, bundle, logs,
// server state, ports, the CA, an rpc chain's contract).
package devnet

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkg"
	"github.com/polyroot/polyroot/internal/dtacmd"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/internal/servercmd"
	"github.com/polyroot/polyroot/internal/webui"
	"github.com/polyroot/polyroot/ledger"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// devnetScryptLogN is the devnet's keystore work factor: low, because the passphrase
// is stored beside the keystores in the devnet's directory anyway, and a high factor
// only makes every start slow (a dozen secrets are read and written).
const devnetScryptLogN = 12

// newDomainName names a new devnet's domain devnet-XXXXXX.localhost, with a random
// XXXXXX: a client pointed at another devnet's server is then told that it serves
// another domain, where one name for every devnet made that look like a wrong PIN.
func newDomainName() string {
	var b [3]byte
	rand.Read(b[:])
	return "devnet-" + hex.EncodeToString(b[:]) + ".localhost"
}

// exampleClientID is the example relying party's client ID at the devnet's OpenID
// Provider.
const exampleClientID = "example"

// DefaultDTAs is a new devnet's number of DTAs when Options.DTAs is 0; MaxDTAs the
// most it runs (each DTA is a service with two listeners and a keystore).
const (
	DefaultDTAs = 3
	MaxDTAs     = 16
)

// Options configures Start and Run.
type Options struct {
	Dir string

	// DTAs is the number of DTAs, N, of a new devnet: 2 to MaxDTAs, 0 for DefaultDTAs.
	// A devnet keeps its DTAs from its first start (devnet.json); 0 takes them.
	DTAs int
	// Threshold, if not 0, makes a new devnet a threshold domain: any Threshold of its
	// DTAs (2 to N) make the keys, from master shares that the DTAs make among
	// themselves with a distributed key generation on the first start (its transcript
	// in D/dkg-transcript.json). 0: additive (every DTA needed), or the mode of the
	// first start.
	Threshold int

	// BasePort: the server listens on BasePort, DTA i on BasePort+i, their metrics on
	// BasePort+N+1 (server) and BasePort+N+1+i (DTA i), and the embedded chain's
	// JSON-RPC on BasePort+2N+2; the example relying party is registered with the
	// OpenID Provider at BasePort+2N+3. 0: free ports on first start (then reused from
	// devnet.json).
	BasePort int
	// ScryptLogN is the file keystores' scrypt work factor; 0: devnetScryptLogN.
	ScryptLogN int
	Logger     *slog.Logger // default: discard
	Out        io.Writer    // Run's summary and next commands; default discard

	// Chain is where the DTAs anchor their logs: "embedded" (default) or "rpc", an EVM
	// JSON-RPC endpoint (RPCURL) with the key file (KeyFile: hex, mode 0600) of a
	// funded account, which deploys IssuanceLog on the first start (its address is
	// kept in devnet.json) and pays for the DTAs' anchoring keys.
	Chain        string
	RPCURL       string
	KeyFile      string
	AnchorPeriod time.Duration // default 10 s

	// Vault, when set, holds the DTAs' and the server's secrets instead of file
	// keystores in Dir: under Vault.Path/dta-<i> and Vault.Path/server.
	Vault *keystore.VaultConfig

	// Store is the auth server's state store: "bbolt" (default; D/server/data/server.db)
	// or "postgres", the PostgreSQL database at DatabaseURL (which may hold a password:
	// it is never printed, logged or written to D). Start applies the schema's
	// migrations to it before anything else, as `server serve --migrate` does, so a
	// database that cannot be reached stops the devnet before it starts. A devnet keeps
	// the store of its first start (devnet.json).
	Store       string
	DatabaseURL string

	// ServerTLSCert and ServerTLSKey, PEM files, are the auth server's certificate and
	// key. Default: one of the devnet CA (D/ca.pem), issued at every start.
	ServerTLSCert, ServerTLSKey string
	// PlainHTTP makes the auth server serve plain HTTP (no TLS, no channel binding):
	// for tests only.
	PlainHTTP bool
	// WebDir holds the browser client for the login page (server.Config.WebDir).
	WebDir string
	// DTAProbeInterval is how often the auth server asks the DTAs' /readyz (default 2 s).
	DTAProbeInterval time.Duration
	// HTTPClient is what Admin uses to reach the auth server (default: one trusting
	// the devnet CA).
	HTTPClient *http.Client
}

// Info is devnet.json.
type Info struct {
	Domain      string   `json:"domain"`
	ServerURL   string   `json:"server_url"`
	DTAURLs     []string `json:"dta_urls"`
	Chain       string   `json:"chain"`
	RPCURL      string   `json:"rpc_url,omitempty"`
	Contract    string   `json:"contract"`
	Bundle      string   `json:"bundle"`
	Fingerprint string   `json:"bundle_fingerprint"`
	AdminToken  string   `json:"admin_token_file"`
	Store       string   `json:"store,omitempty"` // the auth server's state store: bbolt or postgres (never its URL)
	// CAFile is the devnet CA's certificate, which certifies the auth server (none when
	// it serves plain HTTP or a certificate of the caller's).
	CAFile string `json:"ca_file,omitempty"`

	// OIDCIssuer is the auth server's OpenID Provider; the example relying party
	// (examples/relying-party) is registered with it as ExampleClientID, its secret in
	// ExampleClientSecretFile, at ExampleURL (a port picked on the first start, not
	// held: the example listens on it when it runs).
	OIDCIssuer              string `json:"oidc_issuer"`
	ExampleClientID         string `json:"example_client_id"`
	ExampleClientSecretFile string `json:"example_client_secret_file"`
	ExampleURL              string `json:"example_url"`

	// The services' metrics, on their operations listeners (never on the URLs above).
	ServerMetricsURL string   `json:"server_metrics_url"`
	DTAMetricsURLs   []string `json:"dta_metrics_urls"`
}

// A Devnet is a running devnet. Its DTAs can be stopped and started again one by one.
// Its methods are not safe for concurrent use.
type Devnet struct {
	Info Info

	opts       Options
	n          int // DTAs
	registrar  ed25519.PrivateKey
	keys       []keystore.Keystore // DTA i+1's
	anchorKeys []*ecdsa.PrivateKey // DTA i+1's anchoring key
	chainID    uint64              // the rpc chain's
	chain      ledger.Chain
	closeChain func()
	dtas       []*service
	server     *service
	serverHTTP *http.Client // trusts the devnet CA
	storeDesc  string       // the summary's description of the state store
	threshold  int          // a threshold bundle's T (0: additive), for the summary
	transcript string       // with threshold: the transcript of the ceremony that made the bundle's shares
	failed     chan error   // a service that stopped by itself
}

// A service is one DTA or the auth server, serving in a goroutine.
type service struct {
	cancel  context.CancelFunc
	stopped atomic.Bool   // set by shutdown: the end is not a failure
	exited  chan struct{} // closed when Serve returned, err set
	err     error
}

// shutdown stops the service gracefully and returns Serve's result.
func (s *service) shutdown() error {
	s.stopped.Store(true)
	s.cancel()
	<-s.exited
	return s.err
}

func (d *Devnet) path(name ...string) string {
	return filepath.Join(append([]string{d.opts.Dir}, name...)...)
}

// Start sets the devnet up in opts.Dir (first start) or reuses it, and returns once
// every service accepts connections. Close stops it.
func Start(ctx context.Context, opts Options) (_ *Devnet, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.AnchorPeriod <= 0 {
		opts.AnchorPeriod = 10 * time.Second
	}
	if opts.DTAProbeInterval <= 0 {
		opts.DTAProbeInterval = 2 * time.Second
	}
	switch opts.Chain {
	case "":
		opts.Chain = dtacmd.ChainEmbedded
	case dtacmd.ChainEmbedded:
	case dtacmd.ChainRPC:
		if opts.RPCURL == "" || opts.KeyFile == "" {
			return nil, errors.New("devnet: the rpc chain needs an RPC URL and the key file of a funded account")
		}
	default:
		return nil, fmt.Errorf("devnet: chain %q: want embedded or rpc", opts.Chain)
	}
	if opts.PlainHTTP && opts.ServerTLSCert != "" {
		return nil, errors.New("devnet: plain HTTP and a TLS certificate: choose one")
	}
	if opts.Dir == "" {
		return nil, errors.New("devnet: no directory")
	}
	storeDesc, err := prepareStore(ctx, &opts)
	if err != nil {
		return nil, err
	}
	// Absolute: the paths in devnet.json and in the printed commands work from any
	// directory.
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	if opts.DTAs != 0 && (opts.DTAs < 2 || opts.DTAs > MaxDTAs) {
		return nil, fmt.Errorf("devnet: %d DTAs: want 2 to %d (one DTA alone would know every client key)", opts.DTAs, MaxDTAs)
	}
	d := &Devnet{opts: opts, closeChain: func() {}, storeDesc: storeDesc}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	// The devnet reads the secrets it finds there (admin token, registrar key,
	// passphrase, CA key): in a directory another user owns or can write to, they could
	// be that user's.
	if fi, err := os.Stat(opts.Dir); err != nil {
		return nil, err
	} else if !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 || ownedByOther(fi) {
		return nil, fmt.Errorf("devnet: %s is not a directory of this user's that only it can write to (mode %v): "+
			"another user could plant the devnet's secrets there; use a directory of your own", opts.Dir, fi.Mode())
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
		}
	}()
	_, statErr := os.Stat(d.path("devnet.json"))
	if err := d.loadInfo(opts); err != nil {
		return nil, err
	}
	if opts.Threshold != 0 && (opts.Threshold < 2 || opts.Threshold > d.n) {
		return nil, fmt.Errorf("devnet: threshold %d: want 2 to the number of DTAs (%d)", opts.Threshold, d.n)
	}
	if errors.Is(statErr, fs.ErrNotExist) && dkg.MinKeyGenMembers(opts.Threshold) > d.n { // its key generation is to come
		return nil, fmt.Errorf("devnet: threshold %d of %d DTAs: want 2 to %d (a key generation needs at least 2t−1 DTAs)", opts.Threshold, d.n, (d.n+1)/2)
	}
	d.failed, d.dtas = make(chan error, d.n+1), make([]*service, d.n)
	if err := d.openKeystores(ctx); err != nil {
		return nil, err
	}
	var pinned *bundle.Anchoring // what the bundle of an earlier start names
	if b, _, err := dtacmd.ReadBundle(d.path("bundle.json")); err == nil {
		pinned = b.Anchoring
	}
	register, err := d.setUpChain(ctx, pinned)
	if err != nil {
		return nil, fmt.Errorf("devnet: %s chain: %w", d.Info.Chain, err)
	}
	b, err := d.ensureBundle(ctx)
	if err != nil {
		return nil, err
	}
	if register != nil {
		if err := register(b); err != nil {
			return nil, fmt.Errorf("devnet: %s chain: %w", d.Info.Chain, err)
		}
	}
	for i := range d.n {
		if err := d.StartDTA(i + 1); err != nil {
			return nil, err
		}
	}
	if err := d.startServer(ctx, b); err != nil {
		return nil, err
	}
	raw, _ := json.MarshalIndent(d.Info, "", "  ")
	if err := os.WriteFile(d.path("devnet.json"), append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return d, nil
}

// Run starts the devnet, prints its summary and the next commands, and serves until
// ctx is cancelled or a service fails; then it stops every service.
func Run(ctx context.Context, opts Options) error {
	d, err := Start(ctx, opts)
	if err != nil {
		return err
	}
	d.printNext(d.opts.Out)
	select {
	case <-ctx.Done():
	case err = <-d.failed:
	}
	return errors.Join(err, d.Close())
}

// prepareStore checks the state store settings and, for postgres, applies the schema's
// migrations: before anything starts, so that a database that cannot be reached, or
// refuses the devnet, is the only thing that happened. It returns the store's
// description for the summary, without the URL's password.
func prepareStore(ctx context.Context, opts *Options) (string, error) {
	switch opts.Store {
	case "", storeBolt:
		opts.Store = storeBolt
		if opts.DatabaseURL != "" {
			return "", errors.New("devnet: a database URL is for the postgres store only (give the store postgres, or no URL)")
		}
		return "", nil
	case storePostgres:
	default:
		return "", fmt.Errorf("devnet: store %q: want %s or %s", opts.Store, storeBolt, storePostgres)
	}
	if opts.DatabaseURL == "" {
		return "", errors.New("devnet: the postgres store needs the database URL")
	}
	cfg, err := pgconn.ParseConfig(opts.DatabaseURL)
	if err != nil {
		return "", errors.New("devnet: the database URL does not parse (a postgres:// URL or key=value settings)")
	}
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	from, to, err := server.MigratePostgres(mctx, opts.DatabaseURL)
	if err != nil {
		return "", fmt.Errorf("devnet: the postgres state store: %w", err)
	}
	if from != to {
		opts.Logger.Info("PostgreSQL schema migrated", "from", from, "to", to)
	}
	desc := fmt.Sprintf("PostgreSQL, database %s at %s as %s (schema version %d)",
		cfg.Database, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), cfg.User, to)
	opts.Logger.Info("auth server state store", "store", storePostgres, "database", cfg.Database,
		"host", cfg.Host, "port", cfg.Port, "user", cfg.User, "schema_version", to)
	return desc, nil
}

// The auth server's state stores (Options.Store).
const (
	storeBolt     = "bbolt"
	storePostgres = "postgres"
)

// loadInfo reads devnet.json on a restart, else picks the addresses; it picks the
// metrics and JSON-RPC addresses too when devnet.json has none (made before they
// had their own). Every address must be free: a busy one is named, with what to do.
func (d *Devnet) loadInfo(opts Options) error {
	info := &d.Info
	ports := &portPicker{taken: map[string]bool{}}
	defer ports.close()
	raw, readErr := os.ReadFile(d.path("devnet.json"))
	if readErr == nil {
		if err := json.Unmarshal(raw, info); err != nil || len(info.DTAURLs) < 2 || len(info.DTAURLs) > MaxDTAs {
			return fmt.Errorf("devnet: %s is not a devnet's: remove it or use another directory", d.path("devnet.json"))
		}
		if opts.DTAs != 0 && opts.DTAs != len(info.DTAURLs) {
			return fmt.Errorf("devnet: --dtas %d: the devnet in %s has %d DTAs since its first start (its signed bundle names them): "+
				"leave --dtas out, or use another --dir", opts.DTAs, d.opts.Dir, len(info.DTAURLs))
		}
		d.n = len(info.DTAURLs)
	} else {
		d.n = cmp.Or(opts.DTAs, DefaultDTAs)
	}
	n := d.n
	// pick picks the address of the devnet's i-th port (BasePort+i, or a free one).
	pick := func(i int) (string, error) {
		if opts.BasePort == 0 {
			return ports.pick(0)
		}
		a, err := ports.pick(opts.BasePort + i)
		if err != nil {
			return "", fmt.Errorf("devnet: port %d (%s) is not free (%w): give the devnet ports that are, "+
				"with another --base-port (it uses %d to %d), or leave --base-port out to let it pick free ones",
				opts.BasePort+i, serviceName(n, i), cause(err), opts.BasePort, opts.BasePort+2*n+3)
		}
		return a, nil
	}
	if readErr == nil {
		if was, now := cmp.Or(info.Store, storeBolt), cmp.Or(opts.Store, storeBolt); was != now {
			return fmt.Errorf("devnet: --store %s: the devnet in %s keeps its auth server's state in %s since its first start "+
				"(devnet.json): start it with --store %s (and the same database) again, or use another --dir", now, d.opts.Dir, was, was)
		}
		if p := portOf(info.ServerURL); opts.BasePort != 0 && opts.BasePort != p {
			return fmt.Errorf("devnet: --base-port %d: the devnet in %s has its ports from %d since its first start "+
				"(devnet.json; the DTAs' URLs are in its signed bundle): leave --base-port out, or use another --dir", opts.BasePort, d.opts.Dir, p)
		}
		// This devnet's own addresses, kept from its first start, by the number of
		// their port (BasePort+i).
		urls := map[int]string{0: info.ServerURL, n + 1: info.ServerMetricsURL}
		for i := range n {
			urls[1+i] = info.DTAURLs[i]
			if len(info.DTAMetricsURLs) == n {
				urls[n+2+i] = info.DTAMetricsURLs[i]
			}
		}
		if info.Chain == dtacmd.ChainEmbedded && opts.Chain == dtacmd.ChainEmbedded {
			urls[2*n+2] = info.RPCURL
		}
		for i := range 2*n + 3 {
			if urls[i] == "" {
				continue
			}
			if err := ports.hold(hostPort(urls[i]), serviceName(n, i)); err != nil {
				return err
			}
		}
	} else {
		*info = Info{Domain: newDomainName()}
		for i := 0; i <= n; i++ {
			a, err := pick(i)
			if err != nil {
				return err
			}
			if i == 0 {
				info.ServerURL = "http://" + a
			} else {
				info.DTAURLs = append(info.DTAURLs, "http://"+a)
			}
		}
	}
	if info.ServerMetricsURL == "" || len(info.DTAMetricsURLs) != n {
		info.ServerMetricsURL, info.DTAMetricsURLs = "", nil
		for i := 0; i <= n; i++ {
			a, err := pick(n + 1 + i)
			if err != nil {
				return err
			}
			if i == 0 {
				info.ServerMetricsURL = "http://" + a + httpx.MetricsPath
			} else {
				info.DTAMetricsURLs = append(info.DTAMetricsURLs, "http://"+a+httpx.MetricsPath)
			}
		}
	}
	scheme := "https://"
	if opts.PlainHTTP {
		scheme = "http://"
	}
	info.ServerURL = scheme + hostPort(info.ServerURL)
	if info.Chain != opts.Chain || (opts.Chain == dtacmd.ChainRPC && info.RPCURL != opts.RPCURL) {
		info.Contract = "" // another chain: deploy again
	}
	switch {
	case opts.Chain == dtacmd.ChainRPC:
		info.RPCURL = opts.RPCURL
	case info.Chain != dtacmd.ChainEmbedded || info.RPCURL == "":
		// The embedded chain's own JSON-RPC endpoint (not yet, or another chain's URL).
		a, err := pick(2*n + 2)
		if err != nil {
			return err
		}
		info.RPCURL = "http://" + a
	}
	if info.ExampleURL == "" {
		a, err := pick(2*n + 3)
		if err != nil {
			return err
		}
		info.ExampleURL = "http://" + a
	}
	info.OIDCIssuer, info.ExampleClientID, info.ExampleClientSecretFile = info.ServerURL+"/oidc", exampleClientID, d.path("example-client-secret")
	info.Chain, info.Store = opts.Chain, cmp.Or(opts.Store, storeBolt)
	info.Bundle, info.AdminToken, info.CAFile = d.path("bundle.json"), d.path("admin-token"), ""
	return nil
}

// serviceName names what listens on the i-th port (BasePort+i) of a devnet of N DTAs.
func serviceName(n, i int) string {
	switch {
	case i == 0:
		return "the auth server's"
	case i <= n:
		return fmt.Sprintf("DTA %d's", i)
	case i == n+1:
		return "the auth server's metrics"
	case i <= 2*n+1:
		return fmt.Sprintf("DTA %d's metrics", i-n-1)
	case i == 2*n+2:
		return "the chain's JSON-RPC"
	default:
		return "the example relying party's"
	}
}

// openKeystores opens the DTAs' keystores and reads or creates the registrar key.
func (d *Devnet) openKeystores(ctx context.Context) error {
	regHex, err := secretFile(d.path("registrar.key"), randHex(ed25519.SeedSize))
	if err != nil {
		return err
	}
	seed, err := hex.DecodeString(regHex)
	if err != nil || len(seed) != ed25519.SeedSize {
		return fmt.Errorf("devnet: %s is not a registrar seed", d.path("registrar.key"))
	}
	d.registrar = ed25519.NewKeyFromSeed(seed)
	d.keys = make([]keystore.Keystore, d.n)
	for i := range d.keys {
		if d.keys[i], err = d.keystore(ctx, "dta-"+strconv.Itoa(i+1)); err != nil {
			return err
		}
	}
	return nil
}

// keystore opens the keystore of one service: a file keystore in D/name/keys, or the
// Vault path name under the configured one.
func (d *Devnet) keystore(ctx context.Context, name string) (keystore.Keystore, error) {
	if v := d.opts.Vault; v != nil {
		cfg := *v
		cfg.Path = path.Join(cfg.Path, name)
		return keystore.NewVault(ctx, cfg)
	}
	pass, err := secretFile(d.path("passphrase"), randHex(24))
	if err != nil {
		return nil, err
	}
	var kopts []keystore.FileOption
	logN := d.opts.ScryptLogN
	if logN <= 0 {
		logN = devnetScryptLogN
	}
	kopts = append(kopts, keystore.WithScryptWorkFactor(logN))
	return keystore.OpenFile(d.path(name, "keys"), []byte(pass), kopts...)
}

// ensureBundle creates the DTAs' keys and the signed bundle on the first start, and
// reads the bundle.
func (d *Devnet) ensureBundle(ctx context.Context) (*bundle.Bundle, error) {
	if _, err := os.Stat(d.path("bundle.json")); errors.Is(err, os.ErrNotExist) {
		b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: d.Info.Domain, Mode: "additive",
			Threshold: d.n, PermitPeriod: 3600, RegistrarKey: hex.EncodeToString(d.registrar.Public().(ed25519.PublicKey))}
		if d.opts.Threshold != 0 {
			recs, sum, err := d.generateKeys(ctx)
			if err != nil {
				return nil, err
			}
			b.Mode, b.Threshold, b.DTAs, b.TranscriptSHA256 = "threshold", d.opts.Threshold, recs, sum
		}
		for i := range d.n - len(b.DTAs) {
			rec, err := dta.Init(ctx, d.keys[i], d.Info.Domain, uint32(i+1), d.Info.DTAURLs[i])
			if err != nil {
				return nil, d.halfMade(ctx, i, err)
			}
			b.DTAs = append(b.DTAs, *rec)
		}
		if d.Info.Chain == dtacmd.ChainRPC { // the embedded chain's contract is new at every start
			b.Anchoring = &bundle.Anchoring{ChainID: d.chainID, Contract: strings.ToLower(d.Info.Contract)}
		}
		file, fp, err := bundle.Sign(b, d.registrar)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(d.path("bundle.sha256"), []byte(fp+"\n"), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(d.path("bundle.json"), file, 0o644); err != nil {
			return nil, err
		}
	}
	b, fp, err := dtacmd.ReadBundle(d.path("bundle.json"))
	if err != nil {
		return nil, err
	}
	if t := d.opts.Threshold; t != 0 && (b.Mode != "threshold" || b.Threshold != t) {
		return nil, fmt.Errorf("devnet: --threshold %d: the devnet in %s is %s, %d of %d DTAs, since its first start (its signed bundle): "+
			"leave --threshold out, or use another --dir", t, d.opts.Dir, b.Mode, b.Threshold, len(b.DTAs))
	}
	d.Info.Fingerprint = fp
	if b.Mode == "threshold" {
		d.threshold, d.transcript = b.Threshold, d.path(transcriptFile)
		if b.Serial > 0 {
			d.transcript = d.path(reshareTranscriptFile(b.Serial))
		}
	}
	return b, nil
}

// halfMade explains err, DTA i+1's failure to create its keys, when the keystore
// already holds some: an earlier first start stopped before writing the bundle.
func (d *Devnet) halfMade(ctx context.Context, i int, err error) error {
	for _, name := range []string{dta.SecretMasterShare, dta.SecretSigningKey} {
		if _, gerr := d.keys[i].Get(ctx, name); gerr == nil {
			return fmt.Errorf("%w: DTA %d has keys but %s has no bundle.json, so an earlier first start stopped half-way: "+
				"remove %s (and, with Vault, the devnet's Vault path) and start again", err, i+1, d.opts.Dir, d.opts.Dir)
		}
	}
	return err
}

// setUpChain makes each DTA's anchoring key and gets the contract: on the embedded
// chain at every start (it is new), on an rpc chain once (then reused from
// devnet.json), and always the one the bundle names (pinned) if it names one. When it
// deployed the contract, register registers every DTA's log of the bundle for its key
// (the bundle, made after, may name the contract); else it is nil.
func (d *Devnet) setUpChain(ctx context.Context, pinned *bundle.Anchoring) (register func(*bundle.Bundle) error, err error) {
	d.anchorKeys = make([]*ecdsa.PrivateKey, d.n)
	var addrs []common.Address
	for i := range d.n {
		h, err := secretFile(d.anchorKeyFile(i+1), randHex(32))
		if err != nil {
			return nil, err
		}
		if d.anchorKeys[i], err = crypto.HexToECDSA(strings.TrimSpace(h)); err != nil {
			return nil, fmt.Errorf("%s: %w", d.anchorKeyFile(i+1), err)
		}
		addrs = append(addrs, ledger.Address(d.anchorKeys[i]))
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var owner *ecdsa.PrivateKey
	if d.Info.Chain == dtacmd.ChainEmbedded {
		if pinned != nil {
			return nil, fmt.Errorf("the devnet's bundle anchors on chain %d at %s since its first start: start it with --chain rpc on that chain, or use another --dir",
				pinned.ChainID, pinned.Contract)
		}
		e, err := ledger.NewEmbeddedRPC(time.Second, hostPort(d.Info.RPCURL), addrs...)
		if err != nil {
			return nil, err
		}
		d.chain, d.closeChain, owner = e.Chain(), func() { e.Close() }, e.Key()
		d.Info.Contract = ""
	} else {
		key, err := ledger.LoadKeyFile(d.opts.KeyFile)
		if err != nil {
			return nil, err
		}
		c, err := ledger.Dial(sctx, d.opts.RPCURL)
		if err != nil {
			return nil, err
		}
		d.chain, d.closeChain, owner = c, c.Close, key
		id, err := c.ChainID(sctx)
		if err != nil {
			return nil, fmt.Errorf("chain ID: %w", err)
		}
		d.chainID = id.Uint64()
		if pinned != nil {
			d.Info.Contract = common.HexToAddress(pinned.Contract).Hex()
		}
		if d.Info.Contract != "" {
			code, err := c.CodeAt(sctx, common.HexToAddress(d.Info.Contract), nil)
			if err != nil {
				return nil, err
			}
			switch {
			case pinned != nil && (len(code) == 0 || pinned.ChainID != d.chainID):
				return nil, fmt.Errorf("the devnet's bundle anchors at %s on chain %d since its first start, which %s (chain %d) does not have (was it reset?): "+
					"start a new devnet with another --dir", pinned.Contract, pinned.ChainID, ledger.RedactURL(d.opts.RPCURL), d.chainID)
			case len(code) == 0:
				d.Info.Contract = "" // a chain that was reset: deploy again
			}
		}
		// Each anchoring key pays for its anchors: top it up when it runs low.
		low, topUp := big.NewInt(params.Ether/10), big.NewInt(params.Ether)
		for _, a := range addrs {
			bal, err := c.BalanceAt(sctx, a, nil)
			if err != nil {
				return nil, err
			}
			if bal.Cmp(low) < 0 {
				if err := ledger.Fund(sctx, c, key, a, topUp); err != nil {
					return nil, err
				}
			}
		}
	}
	if d.Info.Contract != "" {
		return nil, nil
	}
	contract, err := ledger.Deploy(sctx, d.chain, owner)
	if err != nil {
		return nil, err
	}
	d.Info.Contract = contract.Hex()
	return func(b *bundle.Bundle) error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		for i := range d.n {
			rec, _ := b.Find(uint32(i + 1))
			if err := ledger.Register(rctx, d.chain, owner, contract, rec.LogOrigin, addrs[i]); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (d *Devnet) anchorKeyFile(i int) string { return d.path("anchor-" + strconv.Itoa(i) + ".key") }

// Admin calls the auth server's registrar API (POST /v1/admin/<route>) with the
// admin token: in is the JSON request, out receives the JSON answer. An error answer
// is returned as an error with its code and message.
func (d *Devnet) Admin(ctx context.Context, route string, in, out any) error {
	token, err := os.ReadFile(d.Info.AdminToken)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Info.ServerURL+"/v1/admin/"+route, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(token))
	c := d.opts.HTTPClient
	if c == nil {
		c = d.serverHTTP
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e httpx.Error
		if json.Unmarshal(raw, &e) == nil && e.Code != "" {
			return fmt.Errorf("devnet: admin %s: HTTP %d: %w", route, resp.StatusCode, &e)
		}
		return fmt.Errorf("devnet: admin %s: HTTP %d", route, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// Chain returns the chain the DTAs anchor on (embedded or rpc), for audits.
func (d *Devnet) Chain() ledger.Chain { return d.chain }

// Registrar returns the domain's registrar key (it signs tickets and the bundle).
func (d *Devnet) Registrar() ed25519.PrivateKey { return d.registrar }

// DTAs returns the devnet's number of DTAs, N.
func (d *Devnet) DTAs() int { return d.n }

// DTAKeystore returns DTA i's keystore (1 ≤ i ≤ N): what its operator holds.
func (d *Devnet) DTAKeystore(i int) keystore.Keystore { return d.keys[i-1] }

// StartDTA starts DTA i (1 ≤ i ≤ N), stopped or not yet started, on its address and
// data, and returns once it accepts connections.
func (d *Devnet) StartDTA(i int) error {
	if i < 1 || i > d.n || d.dtas[i-1] != nil {
		return fmt.Errorf("devnet: DTA %d is not a stopped DTA", i)
	}
	anchoring := dtacmd.Anchoring{Period: d.opts.AnchorPeriod, Contract: d.Info.Contract}
	if d.Info.Chain == dtacmd.ChainEmbedded {
		anchoring.Shared, anchoring.SharedKey = d.chain, d.anchorKeys[i-1]
	} else {
		anchoring.RPCURL, anchoring.KeyFile = d.opts.RPCURL, d.anchorKeyFile(i)
	}
	cfg := dtacmd.Config{
		Listen: hostPort(d.Info.DTAURLs[i-1]), MetricsListen: hostPort(d.Info.DTAMetricsURLs[i-1]),
		BundleFile: d.path("bundle.json"), Index: uint32(i),
		DataDir: d.path("dta-"+strconv.Itoa(i), "data"), Keys: d.keys[i-1],
		Logger: d.opts.Logger.With("dta", i), Chain: d.Info.Chain, Anchoring: anchoring,
	}
	svc, err := d.run("DTA "+strconv.Itoa(i), cfg.Listen, func(ctx context.Context) error { return dtacmd.Serve(ctx, cfg) })
	d.dtas[i-1] = svc
	return err
}

// StopDTA stops DTA i gracefully; the rest of the devnet keeps running.
func (d *Devnet) StopDTA(i int) error {
	if i < 1 || i > d.n || d.dtas[i-1] == nil {
		return fmt.Errorf("devnet: DTA %d is not running", i)
	}
	svc := d.dtas[i-1]
	d.dtas[i-1] = nil
	return svc.shutdown()
}

// startServer provisions the server key from the DTAs on the first start, then
// starts the auth server.
func (d *Devnet) startServer(ctx context.Context, b *bundle.Bundle) error {
	admin, err := secretFile(d.path("admin-token"), randHex(24))
	if err != nil {
		return err
	}
	sks, err := d.keystore(ctx, "server")
	if err != nil {
		return err
	}
	if _, err := sks.Get(ctx, server.SecretServerKey); errors.Is(err, keystore.ErrNotFound) {
		sQ, err := server.Provision(ctx, b, d.registrar, nil)
		if err != nil {
			return err
		}
		if err := sks.Put(ctx, server.SecretServerKey, sQ.Bytes()); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	d.serverHTTP = http.DefaultClient
	certFile, keyFile := d.opts.ServerTLSCert, d.opts.ServerTLSKey
	if certFile == "" && !d.opts.PlainHTTP {
		ca, err := d.ensureCA()
		if err != nil {
			return err
		}
		if certFile, keyFile, err = d.issueServerCert(ca); err != nil {
			return err
		}
		d.Info.CAFile, d.serverHTTP = d.path(caFile), trusting(ca)
	}
	secret, err := secretFile(d.Info.ExampleClientSecretFile, randHex(32))
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(secret))
	cfg := servercmd.Config{
		Listen: hostPort(d.Info.ServerURL), MetricsListen: hostPort(d.Info.ServerMetricsURL),
		BundleFile: d.path("bundle.json"), RegistrarKey: d.registrar, Keys: sks,
		AdminToken: admin, DataDir: d.path("server", "data"), Logger: d.opts.Logger.With("service", "server"),
		TLSCert: certFile, TLSKey: keyFile, DTAProbeInterval: d.opts.DTAProbeInterval,
		// Migrated by Start (prepareStore).
		Store: d.opts.Store, DatabaseURL: d.opts.DatabaseURL,
		WebDir: d.opts.WebDir,
		// Everything is on loopback: plain-HTTP redirect URIs are allowed.
		OIDC: server.OIDCConfig{Issuer: d.Info.OIDCIssuer, AllowInsecure: true, Clients: []oidcop.Client{{
			ID: exampleClientID, AuthMethod: oidcop.AuthSecretBasic, SecretSHA256: hex.EncodeToString(sum[:]),
			RedirectURIs: []string{d.Info.ExampleURL + "/callback"}, PostLogoutRedirectURIs: []string{d.Info.ExampleURL + "/"}}}},
	}
	d.server, err = d.run("auth server", cfg.Listen, func(ctx context.Context) error { return servercmd.Serve(ctx, cfg) })
	return err
}

// run starts serve in a goroutine and waits until addr accepts connections. A service
// that fails later is reported on d.failed.
func (d *Devnet) run(name, addr string, serve func(context.Context) error) (*service, error) {
	ctx, cancel := context.WithCancel(context.Background())
	svc := &service{cancel: cancel, exited: make(chan struct{})}
	go func() {
		defer close(svc.exited)
		// nil: a clean stop, by shutdown or by SIGINT/SIGTERM, which each service
		// handles itself as the devnet does.
		err := serve(ctx)
		if err != nil {
			svc.err = fmt.Errorf("%s: %w", name, err)
		}
		if err != nil && !svc.stopped.Load() {
			select {
			case d.failed <- svc.err:
			default:
			}
		}
	}()
	for deadline := time.Now().Add(time.Minute); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil && addr == hostPort(d.Info.ServerURL) && strings.HasPrefix(d.Info.ServerURL, "https://") {
			// A TLS server logs a connection closed before its handshake.
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // only to close cleanly: nothing is sent
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			tc.Handshake()
			c = tc
		}
		if err == nil {
			c.Close()
			return svc, nil
		}
		select {
		case <-svc.exited:
			return nil, svc.err
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return svc, fmt.Errorf("%s did not accept connections at %s within a minute", name, addr)
		}
	}
}

// Close stops the auth server, then the DTAs, then releases the chain.
func (d *Devnet) Close() error {
	var errs []error
	stop := func(svc *service) {
		if svc != nil {
			errs = append(errs, svc.shutdown())
		}
	}
	stop(d.server)
	d.server = nil
	for i, svc := range d.dtas {
		stop(svc)
		d.dtas[i] = nil
	}
	d.closeChain()
	d.closeChain = func() {}
	return errors.Join(errs...)
}

// The environment variables the printed commands read (the flags' sources in
// internal/cli), exported in the summary.
const (
	envServerURL      = "POLYROOT_SERVER_URL"
	envCAFile         = "POLYROOT_CA_FILE"
	envAdminTokenFile = "POLYROOT_ADMIN_TOKEN_FILE"
	envClientDir      = "POLYROOT_CLIENT_DIR"
	envBundle         = "POLYROOT_BUNDLE"
	envRPCURL         = "POLYROOT_RPC_URL"
	envContract       = "POLYROOT_CONTRACT"
)

// printNext prints the summary and the next commands, each complete (it works pasted
// alone), then the export lines that let other commands leave the flags out.
func (d *Devnet) printNext(w io.Writer) {
	info, q := d.Info, shellQuote
	fmt.Fprintf(w, "polyroot devnet of %s ready (local use only: loopback, secrets in %s)\n", info.Domain, d.opts.Dir)
	trust := ""
	switch {
	case info.CAFile != "":
		fmt.Fprintf(w, "  auth server: %s (TLS, devnet CA %s; metrics %s)\n", info.ServerURL, info.CAFile, info.ServerMetricsURL)
		trust = " --ca-file " + q(info.CAFile)
	case strings.HasPrefix(info.ServerURL, "https://"):
		fmt.Fprintf(w, "  auth server: %s (TLS; metrics %s)\n", info.ServerURL, info.ServerMetricsURL)
	default:
		fmt.Fprintf(w, "  auth server: %s (plain HTTP, no channel binding; metrics %s)\n", info.ServerURL, info.ServerMetricsURL)
		trust = " --insecure-http"
	}
	for i, u := range info.DTAURLs {
		fmt.Fprintf(w, "  DTA %d:       %s (metrics %s)\n", i+1, u, info.DTAMetricsURLs[i])
	}
	if info.Chain == dtacmd.ChainEmbedded {
		fmt.Fprintf(w, "  chain:       embedded (in memory, new on each start), JSON-RPC %s, contract %s\n", info.RPCURL, info.Contract)
	} else {
		fmt.Fprintf(w, "  chain:       %s, contract %s\n", info.RPCURL, info.Contract)
	}
	fmt.Fprintf(w, "  bundle:      %s (%s)\n", info.Bundle, info.Fingerprint)
	if d.threshold != 0 {
		fmt.Fprintf(w, "  threshold:   %d of %d: any %d of the DTAs serve the domain; they made its key among themselves (transcript %s)\n",
			d.threshold, d.n, d.threshold, d.transcript)
	}
	if info.Store == storePostgres {
		fmt.Fprintf(w, "  state store: %s\n", d.storeDesc)
	} else {
		fmt.Fprintf(w, "  state store: bbolt (%s)\n", d.path("server", "data", "server.db"))
	}

	server := " --server " + q(info.ServerURL) + trust
	fmt.Fprintf(w, "\nNext, in another shell: enrol alice, then log her in (choose her PIN at enroll):\n")
	fmt.Fprintf(w, "  %s=%s polyroot server enrol%s alice@example.com\n", envAdminTokenFile, q(info.AdminToken), server)
	fmt.Fprintf(w, "  polyroot client bootstrap --dir alice --bundle %s --fingerprint %s\n", q(info.Bundle), info.Fingerprint)
	fmt.Fprintf(w, "  polyroot client enroll --dir alice%s   # asks for the code, then her PIN twice\n", server)
	fmt.Fprintf(w, "  polyroot client login --dir alice%s\n", server)
	fmt.Fprintf(w, "Or in a browser: enrol with the code on the login page, then log in to the example app through OpenID Connect:\n")
	if _, err := os.Stat(filepath.Join(d.opts.WebDir, webui.WASMFile)); d.opts.WebDir == "" || err != nil {
		fmt.Fprintf(w, "  (the browser client is not installed beside this polyroot, so these pages cannot log in: run the one `make build` writes, bin/polyroot)\n")
	}
	if info.CAFile != "" {
		// Before the URLs: a browser refuses them on this devnet.
		fmt.Fprintf(w, "  (a browser does not trust the devnet CA: for these pages, start the devnet with --insecure-http instead)\n")
	}
	fmt.Fprintf(w, "  %s/login/enrol#code=CODE&fp=%s\n", info.ServerURL, info.Fingerprint)
	fmt.Fprintf(w, "  go run ./examples/relying-party --devnet %s    # from the root of a polyroot clone; then open %s\n", q(d.opts.Dir), info.ExampleURL)
	chain := " --rpc-url " + q(info.RPCURL) + " --contract " + info.Contract
	fmt.Fprintf(w, "Audit the DTAs' logs on the chain, and check alice's shares in them (anchored every %s):\n", d.opts.AnchorPeriod)
	fmt.Fprintf(w, "  polyroot audit --bundle %s%s\n", q(info.Bundle), chain)
	fmt.Fprintf(w, "  polyroot client verify-issuance --dir alice --fetch%s\n", chain)
	fmt.Fprintf(w, "  polyroot client verify-issuance --dir alice\n")
	fmt.Fprintf(w, "To leave these flags out of other commands (client status, server enrolments, …):\n")
	if trust == " --insecure-http" {
		// No variable sets it: plain HTTP stays the explicit choice of each command.
		fmt.Fprintf(w, "  (still pass --insecure-http to each command that talks to the auth server: no environment variable sets it)\n")
	}
	fmt.Fprintf(w, "  export %s=%s\n", envServerURL, q(info.ServerURL))
	if info.CAFile != "" {
		fmt.Fprintf(w, "  export %s=%s\n", envCAFile, q(info.CAFile))
	}
	fmt.Fprintf(w, "  export %s=%s\n", envAdminTokenFile, q(info.AdminToken))
	fmt.Fprintf(w, "  export %s=\"$PWD/alice\"\n", envClientDir)
	fmt.Fprintf(w, "  export %s=%s\n", envBundle, q(info.Bundle))
	fmt.Fprintf(w, "  export %s=%s\n", envRPCURL, q(info.RPCURL))
	fmt.Fprintf(w, "  export %s=%s\n", envContract, info.Contract)
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%_+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// secretFile returns the content of path, creating it (mode 0600) with gen() first
// when it does not exist.
func secretFile(path string, gen func() (string, error)) (string, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		return string(raw), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	s, err := gen()
	if err != nil {
		return "", err
	}
	return s, os.WriteFile(path, []byte(s), 0o600)
}

func randHex(n int) func() (string, error) {
	return func() (string, error) {
		b := make([]byte, n)
		_, err := rand.Read(b)
		return hex.EncodeToString(b), err
	}
}

// cause is a listen error without the operation and address (the message names
// them): "bind: address already in use".
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// portOf is a URL's port (0 when it has none).
func portOf(url string) int {
	_, port, _ := net.SplitHostPort(hostPort(url))
	n, _ := strconv.Atoi(port)
	return n
}

// hostPort is a URL's host:port.
func hostPort(url string) string {
	_, hp, _ := strings.Cut(url, "://")
	hp, _, _ = strings.Cut(hp, "/")
	return hp
}
