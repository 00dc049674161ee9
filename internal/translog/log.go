// Package translog is a DTA's transparency log: a Tessera tile log (C2SP tlog-tiles)
// on local disk whose checkpoints are signed notes made with the DTA's Ed25519 key.
// Every share a DTA issues is an entry in its log (wire.Entry) before the share leaves
// the DTA, and the DTA hands the client a signed promise (wire.Promise) for it.
//
// Security invariants: Append returns only once the entry is durably sequenced and
// integrated (Tessera's POSIX driver writes through temporary files, fsync and rename);
// entries hold hashes and salted identity hashes, never a share or an identity.
//
// # Caveats
//
// The POSIX storage is for a single DTA process on a local file system: do not put it
// on NFS or share it between processes. Checkpoints are published every
// Options.CheckpointInterval, so a fresh entry is in the tree before it is covered by
// a published checkpoint.
package translog

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/transparency-dev/formats/log"
	merkleproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Options tune the log. Zero values take the defaults.
type Options struct {
	// CheckpointInterval is how often a new checkpoint is signed (default 1 s,
	// at least 100 ms).
	CheckpointInterval time.Duration
	// BatchMaxAge is how long an entry may wait to be sequenced with others (default
	// 25 ms: larger batches share the file system syncs).
	BatchMaxAge time.Duration
	// BatchMaxSize is the most entries sequenced at once (default 256).
	BatchMaxSize uint
}

// A Log is an open transparency log.
type Log struct {
	origin   string
	dir      string
	add      tessera.AddFn
	reader   tessera.LogReader
	shutdown func(context.Context) error
	stop     context.CancelFunc // ends Tessera's background work, after shutdown
	signer   *closingSigner
}

// A closingSigner signs checkpoints until the log closes. Tessera does not wait for its
// checkpoint publisher when its context ends, so without this a publish could still be
// writing into the log's directory after Close returned (and race whoever removes or
// reopens it).
type closingSigner struct {
	note.Signer
	mu     sync.Mutex
	closed bool
	last   []byte // the body of the last checkpoint signed, maybe not yet written
}

var errClosed = errors.New("translog: the log is closed")

func (s *closingSigner) Sign(msg []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	s.last = bytes.Clone(msg)
	return s.Signer.Sign(msg)
}

// close refuses further signatures and returns the body of the last one.
func (s *closingSigner) close() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.last
}

// Open opens or creates the log in dir, with checkpoints for origin signed by key.
// The log's background work (integration, checkpoints) runs until Close, whatever
// happens to ctx afterwards.
func Open(ctx context.Context, dir, origin string, key ed25519.PrivateKey, opts Options) (*Log, error) {
	noteSigner, err := NoteSigner(origin, key)
	if err != nil {
		return nil, err
	}
	signer := &closingSigner{Signer: noteSigner}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.BatchMaxAge == 0 {
		opts.BatchMaxAge = 25 * time.Millisecond
	}
	if opts.BatchMaxSize == 0 {
		opts.BatchMaxSize = 256
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	driver, err := posix.New(bg, posix.Config{Path: dir})
	if err != nil {
		stop()
		return nil, fmt.Errorf("translog: opening %s: %w", dir, err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(bg, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(opts.CheckpointInterval).
		WithBatching(opts.BatchMaxSize, opts.BatchMaxAge))
	if err != nil {
		stop()
		return nil, fmt.Errorf("translog: starting the appender: %w", err)
	}
	return &Log{origin: origin, dir: dir, add: appender.Add, reader: reader, shutdown: shutdown, stop: stop, signer: signer}, nil
}

// Origin returns the log's origin line, the name its checkpoints carry.
func (l *Log) Origin() string { return l.origin }

// Append adds leaf to the log and returns its index once it is durable.
func (l *Log) Append(ctx context.Context, leaf []byte) (uint64, error) {
	idx, err := l.AppendAll(ctx, [][]byte{leaf})
	if err != nil {
		return 0, err
	}
	return idx[0], nil
}

// AppendAll adds leaves to the log, to be sequenced together, and returns their indices
// once all of them are durable.
func (l *Log) AppendAll(ctx context.Context, leaves [][]byte) ([]uint64, error) {
	futures := make([]tessera.IndexFuture, len(leaves))
	for i, leaf := range leaves {
		futures[i] = l.add(ctx, tessera.NewEntry(leaf))
	}
	indices := make([]uint64, len(leaves))
	for i, f := range futures {
		idx, err := f()
		if err != nil {
			return nil, fmt.Errorf("translog: append: %w", err)
		}
		indices[i] = idx.Index
	}
	return indices, nil
}

// Size returns the number of entries integrated into the tree.
func (l *Log) Size(ctx context.Context) (uint64, error) { return l.reader.IntegratedSize(ctx) }

// Checkpoint returns the latest signed checkpoint.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) { return l.reader.ReadCheckpoint(ctx) }

// ScanLeaves calls fn for each leaf with index from ≤ i < to, in order; to must not
// exceed Size. It stops at the first error, from the log or from fn.
func (l *Log) ScanLeaves(ctx context.Context, from, to uint64, fn func(index uint64, leaf []byte) error) error {
	size, err := l.Size(ctx)
	if err != nil {
		return fmt.Errorf("translog: size: %w", err)
	}
	if to > size {
		return fmt.Errorf("translog: scan to %d beyond the log size %d", to, size)
	}
	for bundle := from / layout.EntryBundleWidth; bundle*layout.EntryBundleWidth < to; bundle++ {
		raw, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, bundle, size)
		if err != nil {
			return fmt.Errorf("translog: entry bundle %d: %w", bundle, err)
		}
		for j, leaf := range raw.Entries {
			i := bundle*layout.EntryBundleWidth + uint64(j)
			if i < from || i >= to {
				continue
			}
			if err := fn(i, leaf); err != nil {
				return err
			}
		}
	}
	return nil
}

// Cache-Control of what the log serves. A full tile or entry bundle never changes once
// written (C2SP tlog-tiles), so caches and auditors may keep it for good; the checkpoint
// changes at every interval, and a partial tile is replaced by a wider one as the log
// grows (it may then be deleted), so both are revalidated.
const (
	CacheImmutable  = "public, max-age=31536000, immutable"
	CacheRevalidate = "no-cache"
)

// CacheControl returns the Cache-Control of the resource at p (a path relative to the
// log's root: "checkpoint", "tile/…").
func CacheControl(p string) string {
	p = strings.TrimPrefix(p, "/")
	if strings.HasPrefix(p, "tile/") && !strings.Contains(p, ".p/") {
		return CacheImmutable
	}
	return CacheRevalidate
}

// Handler serves the log read-only as C2SP tlog-tiles: "checkpoint", "tile/…" and
// "tile/entries/…" relative to where it is mounted: regular files only, no directory
// listings or redirects. Tessera's own state is not served. Full tiles and entry
// bundles are served as immutable (CacheControl).
func (l *Log) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean(r.URL.Path)
		if r.Method != http.MethodGet && r.Method != http.MethodHead ||
			!(p == "/checkpoint" || strings.HasPrefix(p, "/tile/")) || p != r.URL.Path {
			http.NotFound(w, r)
			return
		}
		f, err := os.Open(filepath.Join(l.dir, filepath.FromSlash(p)))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() { // no directory listings
			http.NotFound(w, r)
			return
		}
		ctype := "application/octet-stream"
		if p == "/checkpoint" {
			ctype = "text/plain; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Cache-Control", CacheControl(p))
		http.ServeContent(w, r, "", fi.ModTime(), f)
	})
}

// Close writes the entries in flight, then stops the log's background work. When it
// returns, nothing writes into the log's directory any more.
func (l *Log) Close(ctx context.Context) error {
	err := l.shutdown(ctx)
	l.stop()
	l.awaitPublished(ctx, l.signer.close())
	return err
}

// awaitPublished waits (a little, a publish takes milliseconds) until the checkpoint
// file holds the checkpoint whose body was signed last, so that a publish under way when
// the log closed has written it.
func (l *Log) awaitPublished(ctx context.Context, body []byte) {
	if body == nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		cp, err := os.ReadFile(filepath.Join(l.dir, layout.CheckpointPath))
		if err == nil && bytes.HasPrefix(cp, body) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// NoteSigner returns a signed-note signer for origin with an Ed25519 key, in the key
// format of golang.org/x/mod/sumdb/note: PRIVATE+KEY+name+hash+base64(0x01 ‖ seed).
func NoteSigner(origin string, key ed25519.PrivateKey) (note.Signer, error) {
	vkey, err := VerifierKey(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	// vkey is origin+hash+base64(key); the hash is 8 hex digits (base64 may hold '+').
	hash := vkey[len(origin)+1 : len(origin)+9]
	skey := "PRIVATE+KEY+" + origin + "+" + hash + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("translog: checkpoint signer: %w", err)
	}
	return s, nil
}

// VerifierKey returns the signed-note verifier key of a log: what an auditor needs to
// check its checkpoints.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", fmt.Errorf("translog: verifier key for %q: %w", origin, err)
	}
	return vkey, nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the leaf at index in the tree
// of the given size, built from the log's tiles.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	pb, err := client.NewProofBuilder(ctx, size, l.reader.ReadTile)
	if err != nil {
		return nil, fmt.Errorf("translog: proof builder at size %d: %w", size, err)
	}
	p, err := pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("translog: inclusion proof of %d in %d: %w", index, size, err)
	}
	return p, nil
}

// VerifyInclusion checks that leaf is at index in the tree of the given size and root.
func VerifyInclusion(leaf []byte, index, size uint64, proof [][]byte, root []byte) error {
	return merkleproof.VerifyInclusion(rfc6962.DefaultHasher, index, size, wire.LeafHash(leaf), proof, root)
}

// VerifyConsistency checks that the tree of size1 and root1 is a prefix of the tree of
// size2 and root2.
func VerifyConsistency(size1, size2 uint64, proof [][]byte, root1, root2 []byte) error {
	return merkleproof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, proof, root1, root2)
}

// ParseCheckpoint verifies a signed checkpoint of the log origin against the DTA key pub
// and returns its size and root hash.
func ParseCheckpoint(raw []byte, origin string, pub ed25519.PublicKey) (*log.Checkpoint, error) {
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("translog: %w", err)
	}
	cp, _, _, err := log.ParseCheckpoint(raw, origin, v)
	if err != nil {
		return nil, fmt.Errorf("translog: checkpoint of %q: %w", origin, err)
	}
	return cp, nil
}
