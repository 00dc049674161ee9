package wire

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cloudflare/circl/dh/x25519"
)

// DTARequest is the body of every POST: a registrar-signed ticket.
type DTARequest struct {
	Ticket string `json:"ticket"`
}

func isJWSByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// DTAResponse answers a share or revocation request.
type DTAResponse struct {
	DTA    uint32     `json:"dta"`
	Shares []DTAShare `json:"shares"` // one per permit slot; one for other kinds
}

// A DTAShare is one issued item with the log entry that records it and the DTA's signed
// promise that the entry is in its log. Shares never travel in the clear: Sealed is
// the share (and, for client and permit shares, its DLEQ proof) sealed with HPKE to
// the key the ticket names (Seal); revocations carry no Sealed.
type DTAShare struct {
	Slot    uint64   `json:"slot,omitempty"`
	Sealed  []byte   `json:"sealed,omitempty"` // enc ‖ ciphertext; see Seal
	Entry   []byte   `json:"entry"`            // the log leaf (an Entry, canonical JSON)
	Promise *Promise `json:"promise"`
}

// AppendJSON appends the JSON encoding of r to b: the bytes encoding/json gives for r
// (field order, omitempty, standard base64 with padding, HTML-safe string escapes),
// built without reflection. A DTA answers every issuance with it.
func (r *DTAResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"dta":`...)
	b = strconv.AppendUint(b, uint64(r.DTA), 10)
	b = append(b, `,"shares":`...)
	if r.Shares == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range r.Shares {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.Shares[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (s *DTAShare) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if s.Slot != 0 {
		b = append(b, `"slot":`...)
		b = strconv.AppendUint(b, s.Slot, 10)
		b = append(b, ',')
	}
	if len(s.Sealed) != 0 {
		b = append(b, `"sealed":`...)
		b = appendBase64(b, s.Sealed)
		b = append(b, ',')
	}
	b = append(b, `"entry":`...)
	b = appendBase64(b, s.Entry)
	b = append(b, `,"promise":`...)
	if p := s.Promise; p == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"origin":`...)
		b = appendString(b, p.Origin)
		b = append(b, `,"index":`...)
		b = strconv.AppendUint(b, p.Index, 10)
		b = append(b, `,"leaf_hash":`...)
		b = appendBase64(b, p.LeafHash)
		b = append(b, `,"signature":`...)
		b = appendBase64(b, p.Signature)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendBase64 appends a []byte as encoding/json does: null for nil, else a string of
// standard base64 with padding.
func appendBase64(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// appendString appends a JSON string as encoding/json does: printable ASCII other than
// the characters it escapes goes as it is; anything else takes encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// A SealContext names one issued share: the HPKE info binds the domain, the DTA, the
// kind and the slot, and the additional data the SHA-256 of the ticket it answers, so
// a sealed share opens only as the share it was issued as.
type SealContext struct {
	Domain       string
	DTA          uint32
	Kind         string // KindClient, KindPermit or KindServer
	Slot         uint64
	TicketSHA256 [32]byte
}

// info is "polyroot/v1 sealed share" ‖ lp(domain) ‖ u32(DTA) ‖ lp(kind) ‖ u64(slot),
// lp a uint32 big-endian length prefix.
func (c *SealContext) info() []byte {
	b := []byte("polyroot/v1 sealed share")
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Domain)))
	b = append(b, c.Domain...)
	b = binary.BigEndian.AppendUint32(b, c.DTA)
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.Kind)))
	b = append(b, c.Kind...)
	return binary.BigEndian.AppendUint64(b, c.Slot)
}

// NewSealKey makes an X25519 key pair for receiving sealed shares: the public half (32
// bytes) goes into tickets, the private half stays with the client or the server.
func NewSealKey() (public, private []byte, err error) {
	var sk, pk x25519.Key
	if _, err := rand.Read(sk[:]); err != nil {
		return nil, nil, err
	}
	x25519.KeyGen(&pk, &sk)
	return pk[:], sk[:], nil
}

// sealKey reads a 32-byte X25519 key, public or private.
func sealKey(b []byte) (*x25519.Key, error) {
	var k x25519.Key
	if len(b) != len(k) {
		return nil, fmt.Errorf("wire: seal key: %d bytes, want %d", len(b), len(k))
	}
	copy(k[:], b)
	return &k, nil
}

// SealPublicKey returns the public half of a private seal key.
func SealPublicKey(private []byte) ([]byte, error) {
	sk, err := sealKey(private)
	if err != nil {
		return nil, err
	}
	var pk x25519.Key
	x25519.KeyGen(&pk, sk)
	return pk[:], nil
}

// Seal seals plaintext to the public key for the issuance c: enc ‖ ciphertext (HPKE,
// hpke.go).
func Seal(public []byte, c *SealContext, plaintext []byte) ([]byte, error) {
	pk, err := sealKey(public)
	if err != nil {
		return nil, err
	}
	return hpkeSeal(rand.Reader, pk, c.info(), c.TicketSHA256[:], plaintext)
}

// ErrSealed reports a sealed share that does not open with the key and context given.
var ErrSealed = errors.New("wire: the sealed share does not open")

// Open opens a share sealed to the private key for the issuance c.
func Open(private []byte, c *SealContext, sealed []byte) ([]byte, error) {
	sk, err := sealKey(private)
	if err != nil {
		return nil, err
	}
	return hpkeOpen(sk, c.info(), c.TicketSHA256[:], sealed)
}
