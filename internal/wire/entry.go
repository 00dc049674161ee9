package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"
)

// Kinds of issuance entry.
const (
	KindClient = "client"
	KindPermit = "permit"
	KindServer = "server"
	KindRevoke = "revoke"
	// KindKey is not an issuance: a DTA writes one when it starts serving under a
	// threshold bundle that names the transcript of the key generation or resharing
	// that made its share (bundle.Bundle.TranscriptSHA256), once per sharing. It
	// names the bundle's serial, the transcript's hash and the DTA's commitment C_i, so
	// that the log records every sharing the DTA served under.
	KindKey = "key"
)

// MaxEntrySize bounds an encoded entry; Parse refuses larger ones.
const MaxEntrySize = 1024

// EntryVersion is the version of the entry format this package writes and reads.
const EntryVersion = 2

// An Entry is one issuance as the log records it, or (KindKey) the sharing a DTA
// serves under. Logs are public, so an entry holds
// nothing that lets anyone test a guess: no share, no hash of a share (with a stolen
// token, a hash of a client share would test PIN guesses offline), no idhash (from
// which anyone could start a login and block its owner), no app-level identity. It
// holds the identity's Subject, the hash of the sealed answer (HPKE ciphertexts are
// randomised, so the hash says nothing about the share) and the ticket's hash.
type Entry struct {
	Version      int    `json:"v"`
	DTA          uint32 `json:"dta"`
	Domain       string `json:"domain"`
	Kind         string `json:"kind"`
	Subject      string `json:"subject,omitempty"` // hex Subject(idhash); absent for server shares
	Slot         uint64 `json:"slot,omitempty"`    // permit slot
	SealedSHA256 string `json:"sealed_sha256,omitempty"`
	// Serial, TranscriptSHA256 and Commitment are those of a key entry (and absent from
	// the others): the bundle's serial (absent for 0), the hex SHA-256 of its DKG or
	// resharing transcript, and the DTA's commitment C_i in it (96 hex digits).
	Serial           uint64 `json:"serial,omitempty"`
	TranscriptSHA256 string `json:"transcript_sha256,omitempty"`
	Commitment       string `json:"commitment,omitempty"`
	TicketSHA256     string `json:"ticket_sha256,omitempty"` // absent only from key entries
	Time             int64  `json:"time"`                    // unix seconds
}

// subjectContext separates Subject from every other use of SHA-256 on an idhash.
const subjectContext = "polyroot/v1 log subject"

// Subject returns the hex name under which logs record the identity idhash:
// SHA-256("polyroot/v1 log subject" ‖ idhash). Pass 1 of a login needs the idhash
// itself, which the subject does not reveal, so reading the logs does not let anyone
// make logins for (and block) the identities in them.
func Subject(idhash [32]byte) string {
	h := sha256.Sum256(append([]byte(subjectContext), idhash[:]...))
	return hex.EncodeToString(h[:])
}

// ErrEntry reports a malformed entry.
var ErrEntry = errors.New("wire: malformed entry")

// Marshal returns the entry's canonical encoding: JSON with the fields in the order
// above. It checks the entry first.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// ParseEntry decodes and checks an entry. It accepts only canonical encodings: the
// bytes Marshal gives for the entry they decode to.
func ParseEntry(b []byte) (*Entry, error) {
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrEntry, len(b))
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	var e Entry
	if err := d.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEntry, err)
	}
	canon, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrEntry)
	}
	return &e, nil
}

func (e *Entry) check() error {
	hexN := func(s string, n int, need bool) bool {
		if s == "" {
			return !need
		}
		b, err := hex.DecodeString(s)
		return err == nil && len(b) == n && hex.EncodeToString(b) == s
	}
	hash32 := func(s string, need bool) bool { return hexN(s, 32, need) }
	isKey := e.Kind == KindKey
	switch {
	case e.Version != EntryVersion:
		return fmt.Errorf("%w: version %d", ErrEntry, e.Version)
	case e.DTA == 0 || e.Domain == "" || len(e.Domain) > 253:
		return fmt.Errorf("%w: DTA index or domain", ErrEntry)
	case !hash32(e.TicketSHA256, !isKey) || isKey && e.TicketSHA256 != "":
		return fmt.Errorf("%w: ticket hash", ErrEntry)
	case !isKey && (e.Serial != 0 || e.TranscriptSHA256 != "" || e.Commitment != ""):
		return fmt.Errorf("%w: key fields in a %s entry", ErrEntry, e.Kind)
	case e.Time <= 0:
		return fmt.Errorf("%w: time", ErrEntry)
	}
	switch e.Kind {
	case KindKey:
		if e.Subject != "" || e.Slot != 0 || e.SealedSHA256 != "" || !hash32(e.TranscriptSHA256, true) || !hexN(e.Commitment, 48, true) {
			return fmt.Errorf("%w: key entry fields", ErrEntry)
		}
	case KindClient, KindPermit:
		if !hash32(e.Subject, true) || !hash32(e.SealedSHA256, true) || (e.Kind == KindClient && e.Slot != 0) {
			return fmt.Errorf("%w: %s entry fields", ErrEntry, e.Kind)
		}
	case KindServer:
		if e.Subject != "" || e.Slot != 0 || !hash32(e.SealedSHA256, true) {
			return fmt.Errorf("%w: server entry fields", ErrEntry)
		}
	case KindRevoke:
		if !hash32(e.Subject, true) || e.Slot != 0 || e.SealedSHA256 != "" {
			return fmt.Errorf("%w: revoke entry fields", ErrEntry)
		}
	default:
		return fmt.Errorf("%w: kind %q", ErrEntry, e.Kind)
	}
	return nil
}

// LeafHash is the RFC 6962 hash of a leaf, SHA-256(0x00 ‖ leaf).
func LeafHash(leaf []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(leaf) }

// A Promise is a DTA's signed statement that an entry is at Index in its log: what a
// client keeps to check, later, that its share was logged (like a CT SCT).
type Promise struct {
	Origin    string `json:"origin"`
	Index     uint64 `json:"index"`
	LeafHash  []byte `json:"leaf_hash"`
	Signature []byte `json:"signature"`
}

const promiseContext = "polyroot/v1 issuance promise\n"

func (p *Promise) signed() []byte {
	b := []byte(promiseContext)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Origin)))
	b = append(b, p.Origin...)
	b = binary.BigEndian.AppendUint64(b, p.Index)
	return append(b, p.LeafHash...)
}

// NewPromise signs that leaf is at index in the log named origin.
func NewPromise(key ed25519.PrivateKey, origin string, index uint64, leaf []byte) *Promise {
	p := &Promise{Origin: origin, Index: index, LeafHash: LeafHash(leaf)}
	p.Signature = ed25519.Sign(key, p.signed())
	return p
}

// ErrPromise reports a promise whose signature or leaf hash does not verify.
var ErrPromise = errors.New("wire: invalid promise")

// Verify checks the promise's signature by the DTA key pub and, if leaf is not nil,
// that it promises that leaf.
func (p *Promise) Verify(pub ed25519.PublicKey, leaf []byte) error {
	if len(p.LeafHash) != sha256.Size || !ed25519.Verify(pub, p.signed(), p.Signature) {
		return ErrPromise
	}
	if leaf != nil && string(LeafHash(leaf)) != string(p.LeafHash) {
		return fmt.Errorf("%w: it is for another entry", ErrPromise)
	}
	return nil
}
