// Package dta is a Distributed Trust Authority: the service a trust-authority operator
// runs. It holds one master share s_i of a domain's key and, on a ticket signed by the
// domain's registrar, issues client key shares s_i·A, time-permit shares s_i·T_k and the
// server's key share s_i·Q, and records revocations. Every issuance is an entry in the
// DTA's transparency log before the response leaves, and the response carries the
// DTA's signed promise for that entry.
//
// Security invariants:
//   - A share is issued only for a ticket whose signature (the bundle's registrar key),
//     domain, kind and expiry check, whose nonce this DTA has not used for another
//     ticket, and (client and permit shares) whose identity is not revoked.
//   - Exactly once: a retried ticket gets the same shares and the same log entries; the
//     record of a ticket is written before its entries and finished after, and a
//     pending record is finished by looking for its entries in the log: at start-up,
//     and while running after a failed append, once the log takes entries again.
//   - The master share and the signing key come from the keystore and appear in no
//     response, log line, error or metric. The server share leaves only sealed with
//     HPKE to the server key named in its ticket.
//
// # Caveats
//
// One process per data directory. Rotating the master share means a new commitment,
// hence a new trust bundle: Reload refuses a keystore share that does not match the
// bundle it is given.
package dta

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/httpx"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/pairing"
)

// Names of the DTA's secrets in its keystore.
const (
	SecretMasterShare = "master-share"
	SecretSigningKey  = "signing-key"
	// SecretMasterShareNext is the share a resharing made (dta reshare), pending until
	// the DTA loads a bundle whose commitment is its: then it becomes SecretMasterShare
	// and the old share is erased (see New and Reload).
	SecretMasterShareNext = "master-share-next"
)

// Config configures a DTA.
type Config struct {
	Bundle   *bundle.Bundle    // the domain's trust bundle; it must list this DTA
	Index    uint32            // this DTA's index in the bundle
	Keys     keystore.Keystore // holds SecretMasterShare and SecretSigningKey
	DataDir  string            // the state database and the log live here
	Logger   *slog.Logger      // default: discard
	Registry prometheus.Registerer
	Now      func() time.Time // default time.Now
	// Log tunes the transparency log. Its BatchMaxAge is the DTA's group-commit window
	// (default 100 ms): issuances are recorded and logged in groups whose oldest member
	// waited at most this long, less when the DTA has nothing else to do (see
	// committer); the log itself sequences each group at once.
	Log translog.Options
	// RatePerSecond and RateBurst limit requests per client address (defaults 50, 100),
	// on every route but the log's, /livez and /readyz.
	RatePerSecond float64
	RateBurst     int
	// LogRatePerSecond and LogRateBurst limit the log's routes (GET /v1/log/…) per
	// client address, apart from the others: an auditor reads two static files per 256
	// entries (defaults DefaultLogRatePerSecond, DefaultLogRateBurst).
	LogRatePerSecond float64
	LogRateBurst     int
	// Anchor, when set, anchors the log's checkpoints on a chain (internal/dtacmd wires a
	// ledger.Anchorer). New starts it in a goroutine once the log is open; Close stops it
	// and waits for it before closing the log. If it is also a prometheus.Collector, its
	// metrics are served with the DTA's (MetricsHandler).
	Anchor Anchor
	// NonceRetention is how long past its ticket's expiry the record of a used ticket
	// nonce is kept (default 24 h: a margin for clock steps); PruneInterval is how
	// often the records past it are forgotten (default 1 h). Until its ticket expires a
	// nonce is always remembered; after, the ticket itself is refused as expired.
	NonceRetention, PruneInterval time.Duration
}

// An Anchor runs beside the service until ctx is cancelled. origin is the log's origin
// line; checkpoint returns the size and root hash of the log's latest checkpoint,
// verified with the DTA's signing key.
type Anchor interface {
	Run(ctx context.Context, origin string, checkpoint func(context.Context) (size uint64, root []byte, err error)) error
}

// A Service is a running DTA. Its Handler serves the HTTP API.
type Service struct {
	cfg     Config
	keys    atomic.Pointer[keys] // swapped whole by Reload
	store   *store
	log     *translog.Log
	locks   nonceLocks // one per ticket nonce in flight
	metrics *metrics
	ready   atomic.Bool
	// storageFailed is when an issuance last failed to be written (a log append, a
	// state database transaction, a recovery; Unix ns; 0: never or recovered since),
	// for /readyz.
	storageFailed atomic.Int64
	// logSize is a lower bound of the log's size, kept in memory so that an issuance
	// need not read it from disk: every entry appended later has an index at least
	// this large, which is all a record's size hint needs.
	logSize atomic.Uint64
	// stopAnchor stops the Anchor goroutine and waits for it (nil without one).
	stopAnchor func()
	// stopPruner stops the pruning goroutine and waits for it.
	stopPruner func()
	// readyz answers /readyz; stopReadinessWatch stops its background evaluation.
	readyz             *httpx.Readiness
	stopReadinessWatch func()
	// commits records and logs issuances in groups (nil until New has recovered).
	commits *committer
	// answers keeps the responses of completed tickets for their retries (answers.go).
	answers *answerCache
}

// The default limit of the log's routes per client address: a burst that covers an
// audit of about 128,000 entries (2 requests per 256), then about 64,000 entries a second.
const (
	DefaultLogRatePerSecond = 500
	DefaultLogRateBurst     = 1000
)

// Group commit defaults: the window, the largest group (one log batch), and how long
// the log waits for more entries after a group has been handed to it.
const (
	defaultCommitWindow = 100 * time.Millisecond
	maxCommitGroup      = 256
	logBatchAge         = 250 * time.Microsecond
)

// keys is what Reload swaps: the secrets with the bundle and record they match.
type keys struct {
	master     *pairing.Scalar
	commitment *pairing.G1
	signing    ed25519.PrivateKey
	bundle     *bundle.Bundle
	record     *bundle.DTA
}

// Init creates a DTA's master share and signing key in ks and returns its public
// record for the trust bundle. It refuses to overwrite existing keys.
func Init(ctx context.Context, ks keystore.Keystore, domain string, index uint32, url string) (*bundle.DTA, error) {
	rec, err := InitForDKG(ctx, ks, domain, index, url)
	if err != nil {
		return nil, err
	}
	s, err := pairing.RandomScalar(nil)
	if err != nil {
		return nil, err
	}
	if err := ks.Put(ctx, SecretMasterShare, s.Bytes()); err != nil {
		return nil, err
	}
	rec.Commitment = hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes())
	return rec, nil
}

// InitForDKG creates a DTA's signing key only, for a threshold domain whose master
// shares come from a distributed key generation (package dkgnet), and returns its
// record without a commitment. It refuses a keystore that holds either key.
func InitForDKG(ctx context.Context, ks keystore.Keystore, domain string, index uint32, url string) (*bundle.DTA, error) {
	for _, name := range []string{SecretMasterShare, SecretSigningKey} {
		if _, err := ks.Get(ctx, name); err == nil {
			return nil, fmt.Errorf("dta: the keystore already holds %s; refusing to overwrite it", name)
		} else if !errors.Is(err, keystore.ErrNotFound) {
			return nil, err
		}
	}
	_, signing, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	if err := ks.Put(ctx, SecretSigningKey, signing.Seed()); err != nil {
		return nil, err
	}
	return &bundle.DTA{
		Index:      index,
		URL:        url,
		SigningKey: hex.EncodeToString(signing.Public().(ed25519.PublicKey)),
		LogOrigin:  LogOrigin(domain, index),
	}, nil
}

// SigningKey reads the DTA's Ed25519 signing key from ks.
func SigningKey(ctx context.Context, ks keystore.Keystore) (ed25519.PrivateKey, error) {
	seed, err := ks.Get(ctx, SecretSigningKey)
	if err != nil {
		return nil, fmt.Errorf("dta: the signing key: %w", err)
	}
	defer clear(seed)
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("dta: the keystore's signing key is not an Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LogOrigin is the default origin line of DTA index's log for domain.
func LogOrigin(domain string, index uint32) string {
	return fmt.Sprintf("polyroot/%s/dta-%d", domain, index)
}

// LogDir is the directory of the transparency log in a DTA's data directory: the
// tiles and checkpoint it serves at /v1/log/.
func LogDir(dataDir string) string { return filepath.Join(dataDir, "log") }

// New loads the keys, opens the state and the log, finishes any issuance a crash left
// pending, logs the bundle's key entry if it names a transcript not logged before
// (wire.KindKey), and returns a ready Service.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NonceRetention <= 0 {
		cfg.NonceRetention = 24 * time.Hour
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = time.Hour
	}
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond, cfg.RateBurst = 50, 100
	}
	if cfg.LogRatePerSecond == 0 {
		cfg.LogRatePerSecond, cfg.LogRateBurst = DefaultLogRatePerSecond, DefaultLogRateBurst
	}
	rec, ok := cfg.Bundle.Find(cfg.Index)
	if !ok {
		return nil, fmt.Errorf("dta: the trust bundle of %s has no DTA %d", cfg.Bundle.Domain, cfg.Index)
	}
	s := &Service{cfg: cfg, metrics: newMetrics(cfg.Registry), answers: newAnswerCache(maxAnswerBytes)}
	s.readyz = s.newReadiness()
	s.metrics.registry.MustRegister(s.readyz)
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(s.readyz)
	}
	k, activate, err := s.loadKeys(ctx, cfg.Bundle, rec)
	if err != nil {
		return nil, err
	}
	s.keys.Store(k)
	if err := os.MkdirAll(LogDir(cfg.DataDir), 0o700); err != nil {
		return nil, fmt.Errorf("dta: data directory: %w", err)
	}
	if s.store, err = openStore(cfg.DataDir); err != nil {
		return nil, err
	}
	window := cfg.Log.BatchMaxAge
	if window == 0 {
		window = defaultCommitWindow
	}
	// The committer hands the log whole groups: the log need not wait for more entries,
	// only for the rest of the group's Adds.
	logOpts := cfg.Log
	logOpts.BatchMaxAge = logBatchAge
	s.log, err = translog.Open(ctx, LogDir(cfg.DataDir), rec.LogOrigin, k.signing, logOpts)
	if err != nil {
		s.store.close()
		return nil, err
	}
	if err := s.recoverPending(ctx); err != nil {
		s.Close(ctx)
		return nil, err
	}
	size, err := s.log.Size(ctx)
	if err != nil {
		s.Close(ctx)
		return nil, err
	}
	s.logSize.Store(size)
	s.commits = newCommitter(s, window, maxCommitGroup)
	if err := s.logKey(ctx, k); err != nil { // keyentry.go: before serving under the bundle
		s.Close(ctx)
		return nil, err
	}
	if err := activate(ctx); err != nil {
		s.Close(ctx)
		return nil, err
	}
	if cfg.Anchor != nil {
		s.startAnchor(ctx, rec.LogOrigin)
	}
	s.startPruner()
	s.ready.Store(true)
	s.startReadinessWatch()
	return s, nil
}

// startAnchor runs cfg.Anchor in a goroutine until Close.
func (s *Service) startAnchor(ctx context.Context, origin string) {
	if c, ok := s.cfg.Anchor.(prometheus.Collector); ok {
		if err := s.metrics.registry.Register(c); err != nil {
			s.cfg.Logger.Warn("anchor metrics not served", "err", err)
		}
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.cfg.Anchor.Run(actx, origin, s.checkpoint); err != nil {
			s.cfg.Logger.Error("anchoring stopped", "err", err)
		}
	}()
	s.stopAnchor = func() { cancel(); <-done }
}

// checkpoint returns the size and root of the log's latest checkpoint, verified.
func (s *Service) checkpoint(ctx context.Context) (uint64, []byte, error) {
	raw, err := s.log.Checkpoint(ctx)
	if err != nil {
		return 0, nil, err
	}
	k := s.keys.Load()
	cp, err := translog.ParseCheckpoint(raw, k.record.LogOrigin, k.signing.Public().(ed25519.PublicKey))
	if err != nil {
		return 0, nil, err
	}
	return cp.Size, cp.Hash, nil
}

// loadKeys reads the keys and checks them against the DTA's record in the bundle. It
// changes nothing in the keystore: activate makes the keystore's changes that
// ActivateShare would (a resharing's share promoted, the old one erased), and the
// caller runs it once it serves under b, its key entry logged. Until then a failure
// (of the key entry, of the log) leaves the keystore as it was: the current keys stay
// usable, and so does a restart under the current bundle. A crash before activate
// has run leaves the new share pending, and the next load of b promotes it.
func (s *Service) loadKeys(ctx context.Context, b *bundle.Bundle, rec *bundle.DTA) (k *keys, activate func(context.Context) error, err error) {
	master, activate, err := pickShare(ctx, s.cfg.Keys, rec, s.cfg.Logger)
	if err != nil {
		return nil, nil, err
	}
	signing, err := SigningKey(ctx, s.cfg.Keys)
	if err != nil {
		return nil, nil, err
	}
	k = &keys{master: master, commitment: pairing.G1Generator().Mul(master).PublicForm(),
		signing: signing, bundle: b, record: rec}
	if hex.EncodeToString(k.commitment.Bytes()) != rec.Commitment {
		return nil, nil, fmt.Errorf("dta: the master share in the keystore does not match commitment C_%d in the trust bundle", rec.Index)
	}
	if hex.EncodeToString(k.signing.Public().(ed25519.PublicKey)) != rec.SigningKey {
		return nil, nil, fmt.Errorf("dta: the signing key in the keystore does not match DTA %d's key in the trust bundle", rec.Index)
	}
	return k, activate, nil
}

// Reload re-reads the keys from the keystore (after a rotation) and, if they match b,
// the new trust bundle, swaps keys, bundle and record in at once; otherwise it keeps
// the current ones. A bundle whose commitment is that of the pending share of a
// resharing activates it (ActivateShare): the old share is erased. The domain, the log origin and the signing key cannot change.
// A bundle naming a transcript not logged before gets its key entry (wire.KindKey) in
// the log first; if that fails, the current keys stay, and so does the old share in
// the keystore: the share is activated only after the key entry. Should the keystore
// fail midway through the activation itself (the old share erased, the new one not
// yet in its place), the DTA goes on serving the old share from memory and the error
// says so: a reload again (or a restart under b) finishes the activation, while a
// restart under the old bundle no longer finds its share.
func (s *Service) Reload(ctx context.Context, b *bundle.Bundle) error {
	cur := s.keys.Load()
	rec, ok := b.Find(s.cfg.Index)
	if !ok || rec.LogOrigin != cur.record.LogOrigin || b.Domain != cur.bundle.Domain {
		return fmt.Errorf("dta: the new bundle does not list this DTA with the same domain and log")
	}
	if rec.SigningKey != cur.record.SigningKey {
		return fmt.Errorf("dta: a new signing key needs a new log; refusing")
	}
	k, activate, err := s.loadKeys(ctx, b, rec)
	if err != nil {
		return err
	}
	if err := s.logKey(ctx, k); err != nil { // keyentry.go: before serving under b
		return err
	}
	if err := activate(ctx); err != nil {
		return err
	}
	s.keys.Store(k)
	return nil
}

// Record returns the DTA's public record.
func (s *Service) Record() bundle.DTA { return *s.keys.Load().record }

// Close stops the service's log and closes its state.
func (s *Service) Close(ctx context.Context) error {
	if s.stopReadinessWatch != nil {
		s.stopReadinessWatch()
		s.stopReadinessWatch = nil
	}
	s.ready.Store(false)
	if s.stopPruner != nil {
		s.stopPruner()
		s.stopPruner = nil
	}
	if s.stopAnchor != nil {
		s.stopAnchor()
		s.stopAnchor = nil
	}
	if s.commits != nil {
		s.commits.close() // the queued issuances and the outstanding completions, first
	}
	return errors.Join(s.log.Close(ctx), s.store.close())
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
