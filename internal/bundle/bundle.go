// Package bundle is a domain's trust bundle: the one signed document that names the
// domain's DTAs (index, URL, commitment C_i, Ed25519 key, log origin), the sharing mode
// and threshold, the permit period and the registrar's key. A client pins it by its
// SHA-256 fingerprint at bootstrap.
//
// Security invariants: Parse returns a Bundle only when the registrar's signature over
// the exact bundle bytes verifies and every field is well formed (points decode and are
// not the identity, indices are distinct, t ≤ n; in threshold mode the commitments lie
// on one polynomial of degree t−1, so that any t DTAs make the same keys). The fingerprint is over the exact
// file bytes, so any change to the file changes it.
package bundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/polyroot/polyroot/pairing"
)

// MaxSize bounds an encoded bundle.
const MaxSize = 64 << 10

// ErrInvalid reports a malformed or wrongly signed bundle.
var ErrInvalid = errors.New("bundle: invalid trust bundle")

// A DTA is one trust authority's public record.
type DTA struct {
	Index      uint32 `json:"index"`
	URL        string `json:"url"`
	Commitment string `json:"commitment"`  // hex of C_i = s_i·P1, 48 bytes
	SigningKey string `json:"signing_key"` // hex Ed25519 public key, 32 bytes
	LogOrigin  string `json:"log_origin"`
}

// A Bundle is the content of a trust bundle.
type Bundle struct {
	Version      int    `json:"version"`
	Protocol     string `json:"protocol"`
	Domain       string `json:"domain"`
	Mode         string `json:"mode"`      // "additive" or "threshold"
	Threshold    int    `json:"threshold"` // t; n in additive mode
	PermitPeriod uint64 `json:"permit_period"`
	RegistrarKey string `json:"registrar_key"` // hex Ed25519 public key
	DTAs         []DTA  `json:"dtas"`
	// MinPINLength is the least number of characters that clients accept at enrolment
	// (code points without format characters, of the PIN as typed and of its NFKC
	// form, whichever is fewer); 0 means DefaultMinPINLength.
	MinPINLength int `json:"min_pin_length,omitempty"`
	// Serial orders the bundles of one domain: a registrar that publishes a new bundle
	// for the same master key s (after a resharing) gives it a greater serial, and
	// clients adopt it only as a successor (CheckSuccessor). Absent (0) is the first;
	// omitted when 0, so that bundles from before serials keep their bytes.
	Serial uint64 `json:"serial,omitempty"`
	// TranscriptSHA256 is the hex SHA-256 of the exact bytes of the transcript of the
	// distributed key generation or resharing that made the DTAs' shares (dta dkg,
	// dta reshare --transcript-out), published beside the bundle; threshold mode only.
	// Each DTA logs it in a key entry when it starts serving under the bundle
	// (wire.KindKey). Omitted when empty, so that bundles from before it keep their bytes.
	TranscriptSHA256 string `json:"transcript_sha256,omitempty"`
	// Anchoring names where the DTAs anchor their logs. Auditors take the chain and the
	// contract from here rather than from a flag or a web page, so that everyone who
	// pins this bundle audits the same anchors: a log shown one way to some and another
	// way to others (a split view) cannot be anchored twice. Omitted when nil, so that
	// bundles from before it keep their bytes.
	Anchoring *Anchoring `json:"anchoring,omitempty"`
}

// Anchoring is the chain and the IssuanceLog contract of a domain's anchors.
type Anchoring struct {
	ChainID  uint64 `json:"chain_id"` // the chain's EIP-155 ID (eth_chainId)
	Contract string `json:"contract"` // 0x and 40 lower-case hex digits
}

// Equal reports whether a and b name the same chain and contract (both nil: neither
// names any).
func (a *Anchoring) Equal(b *Anchoring) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// check reports a malformed anchoring.
func (a *Anchoring) check() error {
	if a.ChainID == 0 || !isAddress(a.Contract) {
		return fmt.Errorf("%w: anchoring: chain_id must be at least 1 and contract 0x and 40 lower-case hex digits, not the zero address", ErrInvalid)
	}
	return nil
}

// isAddress reports whether s is a non-zero contract address in lower-case hex, 0x first.
func isAddress(s string) bool {
	if len(s) != 42 || s[:2] != "0x" || strings.Trim(s[2:], "0") == "" {
		return false
	}
	for _, c := range s[2:] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DefaultMinPINLength is the PIN policy of a bundle that states none.
const DefaultMinPINLength = 4

// MaxMinPINLength bounds a bundle's MinPINLength.
const MaxMinPINLength = 64

// PINPolicy is the least PIN length the bundle asks clients to accept at enrolment.
func (b *Bundle) PINPolicy() int {
	if b.MinPINLength == 0 {
		return DefaultMinPINLength
	}
	return b.MinPINLength
}

type signed struct {
	Bundle    json.RawMessage `json:"bundle"`
	Signature string          `json:"signature"` // hex Ed25519 over the compact bundle JSON
}

// Sign checks b and returns the signed bundle file, made with the registrar's key (whose
// public half must be b.RegistrarKey), and its fingerprint.
func Sign(b *Bundle, registrar ed25519.PrivateKey) (file []byte, fingerprint string, err error) {
	if hex.EncodeToString(registrar.Public().(ed25519.PublicKey)) != b.RegistrarKey {
		return nil, "", fmt.Errorf("%w: the signing key is not the bundle's registrar key", ErrInvalid)
	}
	if err := b.check(); err != nil {
		return nil, "", err
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, "", err
	}
	file, err = json.MarshalIndent(signed{Bundle: raw, Signature: hex.EncodeToString(ed25519.Sign(registrar, raw))}, "", "  ")
	if err != nil {
		return nil, "", err
	}
	file = append(file, '\n')
	return file, Fingerprint(file), nil
}

// Fingerprint is the hex SHA-256 of a bundle file.
func Fingerprint(file []byte) string {
	h := sha256.Sum256(file)
	return hex.EncodeToString(h[:])
}

// Parse checks a bundle file's signature and content.
func Parse(file []byte) (*Bundle, error) {
	if len(file) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalid, len(file))
	}
	var s signed
	if err := strictUnmarshal(file, &s); err != nil {
		return nil, err
	}
	var b Bundle
	if err := strictUnmarshal(s.Bundle, &b); err != nil {
		return nil, err
	}
	key, err := b.registrarKey()
	if err != nil {
		return nil, err
	}
	if !s.verify(key) {
		return nil, fmt.Errorf("%w: registrar signature does not verify", ErrInvalid)
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return &b, nil
}

// verify checks the signature with key. It is over the compact JSON of the bundle
// object: the file may be indented, the signed bytes are not.
func (s *signed) verify(key ed25519.PublicKey) bool {
	var compact bytes.Buffer
	if err := json.Compact(&compact, s.Bundle); err != nil {
		return false
	}
	sig, err := hex.DecodeString(s.Signature)
	return err == nil && ed25519.Verify(key, compact.Bytes(), sig)
}

// ParsePinned parses a bundle file and checks that its fingerprint is the pinned one.
func ParsePinned(file []byte, fingerprint string) (*Bundle, error) {
	if got := Fingerprint(file); got != fingerprint {
		return nil, fmt.Errorf("%w: fingerprint %s, pinned %s", ErrInvalid, got, fingerprint)
	}
	return Parse(file)
}

func strictUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if d.More() {
		return fmt.Errorf("%w: trailing data", ErrInvalid)
	}
	return nil
}

func (b *Bundle) registrarKey() (ed25519.PublicKey, error) {
	k, err := hex.DecodeString(b.RegistrarKey)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: registrar key", ErrInvalid)
	}
	return k, nil
}

// RegistrarPublicKey returns the registrar's Ed25519 key.
func (b *Bundle) RegistrarPublicKey() ed25519.PublicKey {
	k, _ := b.registrarKey() // checked by Parse and Sign
	return k
}

// SharingMode returns the pairing package's mode.
func (b *Bundle) SharingMode() pairing.Mode {
	if b.Mode == "threshold" {
		return pairing.Threshold
	}
	return pairing.Additive
}

// Find returns the record of the DTA with the given index.
func (b *Bundle) Find(index uint32) (*DTA, bool) {
	for i := range b.DTAs {
		if b.DTAs[i].Index == index {
			return &b.DTAs[i], true
		}
	}
	return nil, false
}

// CommitmentPoint decodes the DTA's C_i.
func (d *DTA) CommitmentPoint() (*pairing.G1, error) {
	b, err := hex.DecodeString(d.Commitment)
	if err != nil {
		return nil, fmt.Errorf("%w: DTA %d commitment: %v", ErrInvalid, d.Index, err)
	}
	p, err := pairing.DecodeG1(b)
	if err != nil {
		return nil, fmt.Errorf("%w: DTA %d commitment: %v", ErrInvalid, d.Index, err)
	}
	return p, nil
}

// PublicKey decodes the DTA's Ed25519 key.
func (d *DTA) PublicKey() (ed25519.PublicKey, error) {
	k, err := hex.DecodeString(d.SigningKey)
	if err != nil || len(k) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: DTA %d signing key", ErrInvalid, d.Index)
	}
	return k, nil
}

func (b *Bundle) check() error {
	n := len(b.DTAs)
	switch {
	case b.Version != 1 || b.Protocol != pairing.ProtocolVersion:
		return fmt.Errorf("%w: version %d, protocol %q", ErrInvalid, b.Version, b.Protocol)
	case b.Domain == "" || len(b.Domain) > 253:
		return fmt.Errorf("%w: domain", ErrInvalid)
	case n < 2 || n > 64:
		// One DTA, or a threshold of one, is a single root of trust again: that DTA alone
		// knows every client key and, with a stolen token, tests PINs offline.
		return fmt.Errorf("%w: %d DTAs (2 to 64)", ErrInvalid, n)
	case b.Mode == "additive" && b.Threshold != n, b.Mode == "threshold" && (b.Threshold < 2 || b.Threshold > n):
		return fmt.Errorf("%w: threshold %d of %d in %s mode (at least 2)", ErrInvalid, b.Threshold, n, b.Mode)
	case b.Mode != "additive" && b.Mode != "threshold":
		return fmt.Errorf("%w: mode %q", ErrInvalid, b.Mode)
	case b.MinPINLength < 0 || b.MinPINLength > MaxMinPINLength:
		return fmt.Errorf("%w: min_pin_length %d (0 for the default %d, else 1 to %d)", ErrInvalid, b.MinPINLength, DefaultMinPINLength, MaxMinPINLength)
	}
	if _, err := b.registrarKey(); err != nil {
		return err
	}
	if b.TranscriptSHA256 != "" && (b.Mode != "threshold" || !isHash(b.TranscriptSHA256)) {
		return fmt.Errorf("%w: transcript_sha256 (64 lower-case hex digits, threshold mode only)", ErrInvalid)
	}
	if b.Anchoring != nil {
		if err := b.Anchoring.check(); err != nil {
			return err
		}
	}
	seen := map[uint32]bool{}
	origins := map[string]bool{}
	for i := range b.DTAs {
		d := &b.DTAs[i]
		if d.Index == 0 || seen[d.Index] {
			return fmt.Errorf("%w: DTA index %d zero or repeated", ErrInvalid, d.Index)
		}
		seen[d.Index] = true
		if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: DTA %d URL %q", ErrInvalid, d.Index, d.URL)
		}
		if d.LogOrigin == "" || origins[d.LogOrigin] {
			return fmt.Errorf("%w: DTA %d log origin empty or repeated", ErrInvalid, d.Index)
		}
		origins[d.LogOrigin] = true
		if _, err := d.CommitmentPoint(); err != nil {
			return err
		}
		if _, err := d.PublicKey(); err != nil {
			return err
		}
	}
	if b.Mode == "threshold" && b.Threshold < n {
		return b.checkPolynomial()
	}
	return nil
}

// isHash reports whether s is a SHA-256 hash in 64 lower-case hex digits.
func isHash(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size && hex.EncodeToString(b) == s
}

// checkPolynomial checks that a threshold bundle's commitments lie on one polynomial
// of degree t−1 "in the exponent": C_j = Σ λ_i(j)·C_i over the first t DTAs, for every
// other DTA j. Otherwise different sets of t DTAs would make different keys, and which
// DTAs answered a client would decide whether its key works. (The commitments are
// public: this is about consistency, not secrecy.)
func (b *Bundle) checkPolynomial() error {
	t := b.Threshold
	for _, d := range b.DTAs[t:] {
		sum, err := interpolate(b.DTAs[:t], pairing.NewScalar(uint64(d.Index)))
		if err != nil {
			return err
		}
		c, _ := d.CommitmentPoint()
		if !sum.Equal(c) {
			return fmt.Errorf("%w: threshold mode: the commitment of DTA %d does not lie on the polynomial of DTAs %s's (the master shares are not one %d-of-%d sharing)",
				ErrInvalid, d.Index, firstIndices(b.DTAs[:t]), t, len(b.DTAs))
		}
	}
	return nil
}

// interpolate returns Σ λ_i(x)·C_i over the commitments of base, λ_i(x) being the
// Lagrange coefficients of base's indices at x. Indices and commitments are public:
// variable time is fine.
func interpolate(base []DTA, x *pairing.Scalar) (*pairing.G1, error) {
	var sum *pairing.G1
	for i := range base {
		xi := pairing.NewScalar(uint64(base[i].Index))
		num, den := pairing.NewScalar(1), pairing.NewScalar(1)
		for k := range base {
			if k == i {
				continue
			}
			xk := pairing.NewScalar(uint64(base[k].Index))
			num.Mul(num, new(pairing.Scalar).Sub(x, xk))
			den.Mul(den, new(pairing.Scalar).Sub(xi, xk))
		}
		inv, err := new(pairing.Scalar).InvertVarTime(den)
		if err != nil {
			return nil, fmt.Errorf("%w: DTA indices", ErrInvalid)
		}
		c, err := base[i].CommitmentPoint()
		if err != nil {
			return nil, err
		}
		term := c.Mul(num.Mul(num, inv))
		if sum == nil {
			sum = term
		} else {
			sum = sum.Add(term)
		}
	}
	if sum == nil {
		return nil, fmt.Errorf("%w: no DTAs", ErrInvalid)
	}
	return sum, nil
}

func firstIndices(ds []DTA) string {
	var sb bytes.Buffer
	for i, d := range ds {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprint(&sb, d.Index)
	}
	return sb.String()
}
