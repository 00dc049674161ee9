package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Files in a client directory.
const (
	BundleFile      = "bundle.json"   // the pinned trust bundle, byte for byte
	FingerprintFile = "bundle.sha256" // its pinned SHA-256 fingerprint (hex)
	TokenFile       = "token.json"    // the token, permits and receipts; mode 0600
)

// maxTokenFile bounds the token file we read (permits for a year and their receipts
// for a few DTAs fit easily).
const maxTokenFile = 8 << 20

// tokenVersion is the version of token.json: 2 since shares are sealed to the client's
// key (version 1 tokens cannot receive permits any more; enrol again).
const tokenVersion = 2

// tokenState is the content of token.json. It holds the token TK = sA − π·A and
// combined permits, never sA, a share, a sealed share, the PIN or anything computed
// from the PIN. Its receipts hold only log entries (hashes of sealed shares).
type tokenState struct {
	Version           int               `json:"version"`
	BundleFingerprint string            `json:"bundle_fingerprint"`
	Domain            string            `json:"domain"`
	ID                string            `json:"id"`
	IDHash            string            `json:"idhash"` // hex
	Device            bool              `json:"device,omitempty"`
	NotAfter          *time.Time        `json:"not_after,omitempty"`
	Token             []byte            `json:"token"`             // TK, a compressed G1 point
	SealKey           []byte            `json:"seal_key"`          // X25519 private key that opens permits sealed to this client
	Permits           map[uint64][]byte `json:"permits,omitempty"` // slot → combined permit s·T_k
	Receipts          []Receipt         `json:"promises,omitempty"`
}

// A Receipt is a DTA's log entry and signed promise for one share it issued to this
// client, kept so that the client (or an auditor) can later check the entry is in
// the DTA's transparency log.
type Receipt struct {
	DTA     uint32        `json:"dta"`
	Kind    string        `json:"kind"`
	Slot    uint64        `json:"slot,omitempty"`
	Entry   []byte        `json:"entry"`
	Promise *wire.Promise `json:"promise"`
	// Received is when the client accepted the share, by its own clock (zero in
	// receipts kept before it was recorded): a DTA that has not anchored the entry
	// long after it cannot hide behind a made-up entry time.
	Received time.Time `json:"received,omitzero"`
}

// writeFileAtomic writes data to dir/name with mode perm: a temporary file in dir,
// fsync, rename over the target, fsync of the directory. Readers see the old or the
// new file, never a mix; a crash leaves at most a stray temporary file.
func writeFileAtomic(dir, name string, data []byte, perm fs.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil { // CreateTemp makes 0600; make it exact anyway
		return fmt.Errorf("client: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("client: writing %s: %w", name, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("client: syncing %s: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("client: syncing directory %s: %w", dir, err)
	}
	return nil
}

// normalizeFingerprint accepts hex in either case, with an optional "sha256:" prefix
// and colons.
func normalizeFingerprint(fp string) string {
	fp = strings.TrimSpace(strings.ToLower(fp))
	fp = strings.TrimPrefix(fp, "sha256:")
	return strings.ReplaceAll(fp, ":", "")
}

// loadBundle reads the pinned bundle and re-checks its fingerprint and signature,
// after finishing an adoption of a successor that a crash interrupted.
func loadBundle(st Storage) (*bundle.Bundle, string, error) {
	if err := recoverAdoption(st); err != nil {
		return nil, "", err
	}
	fpb, err := st.Load(FingerprintFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", fmt.Errorf("client: %s holds no pinned trust bundle; run bootstrap first", where(st))
	}
	if err != nil {
		return nil, "", err
	}
	file, err := st.Load(BundleFile)
	if err != nil {
		return nil, "", err
	}
	fp := normalizeFingerprint(string(fpb))
	if bundle.Fingerprint(file) != fp {
		return nil, "", fmt.Errorf("%w (%s was changed after bootstrap)", ErrBundleFingerprint, BundleFile)
	}
	b, err := bundle.ParsePinned(file, fp)
	if err != nil {
		return nil, "", fmt.Errorf("client: pinned bundle: %w", err)
	}
	return b, fp, nil
}

// loadToken reads the token file (a directory refuses one that group or others can
// read). It returns nil, nil when there is none.
func loadToken(s Storage) (*tokenState, error) {
	p := describe(s, TokenFile)
	data, err := loadFile(s, TokenFile)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, nil
	}
	if len(data) > maxTokenFile {
		return nil, fmt.Errorf("client: %s is too large", p)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var st tokenState
	if err := d.Decode(&st); err != nil {
		return nil, fmt.Errorf("client: %s is malformed: %v", p, err)
	}
	if st.Version != tokenVersion {
		return nil, fmt.Errorf("client: %s has version %d, want %d: enrol again with a new code", p, st.Version, tokenVersion)
	}
	return &st, nil
}

// check verifies that a loaded token belongs to the pinned bundle and decodes.
func (st *tokenState) check(domain, fingerprint string) (pairing.IDHash, *pairing.G1, error) {
	var id pairing.IDHash
	if st.BundleFingerprint != fingerprint || st.Domain != domain {
		return id, nil, fmt.Errorf("client: the token was enrolled under another trust bundle; enrol again")
	}
	if b, err := hex.DecodeString(st.IDHash); err != nil || len(b) != len(id) {
		return id, nil, fmt.Errorf("client: token file: bad idhash")
	} else {
		copy(id[:], b)
	}
	tk, err := pairing.DecodeG1(st.Token)
	if err != nil {
		return id, nil, fmt.Errorf("client: token file: %w", err)
	}
	return id, tk, nil
}

func saveToken(s Storage, st *tokenState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return s.Store(TokenFile, append(data, '\n'))
}
