package wire

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/hpke"
)

// DTARequest is the body of every POST: a registrar-signed ticket.
type DTARequest struct {
	Ticket string `json:"ticket"`
}

// DTAResponse answers a share or revocation request.
type DTAResponse struct {
	DTA    uint32     `json:"dta"`
	Shares []DTAShare `json:"shares"` // one per permit slot; one for other kinds
}

// A DTAShare is one issued item with the log entry that records it and the DTA's signed
// promise that the entry is in its log.
type DTAShare struct {
	Slot    uint64   `json:"slot,omitempty"`
	Share   []byte   `json:"share,omitempty"`  // client and permit: S_i, a compressed G1 point
	Proof   []byte   `json:"proof,omitempty"`  // client and permit: the DLEQ proof
	Sealed  []byte   `json:"sealed,omitempty"` // server: s_i·Q sealed with HPKE to the server's key
	Entry   []byte   `json:"entry"`            // the log leaf (an Entry, canonical JSON)
	Promise *Promise `json:"promise"`
}

// HPKE suite for sealing server shares: X25519, HKDF-SHA256, ChaCha20-Poly1305.
const serverShareKEM = hpke.KEM_X25519_HKDF_SHA256

var serverShareSuite = hpke.NewSuite(serverShareKEM, hpke.KDF_HKDF_SHA256, hpke.AEAD_ChaCha20Poly1305)

func serverShareInfo(domain string, index uint32) []byte {
	info := []byte("polyroot/v1 server share\n" + domain + "\n")
	return binary.BigEndian.AppendUint32(info, index)
}

// NewServerShareKey makes an HPKE key pair for receiving server shares; the public half
// goes into the server ticket, the private half stays with the server.
func NewServerShareKey() (public, private []byte, err error) {
	pk, sk, err := serverShareKEM.Scheme().GenerateKeyPair()
	if err != nil {
		return nil, nil, err
	}
	if public, err = pk.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	private, err = sk.MarshalBinary()
	return public, private, err
}

// SealServerShare seals the encoded s_i·Q to the server's public key: enc ‖ ciphertext.
func SealServerShare(serverKey []byte, domain string, index uint32, share []byte) ([]byte, error) {
	pk, err := serverShareKEM.Scheme().UnmarshalBinaryPublicKey(serverKey)
	if err != nil {
		return nil, fmt.Errorf("dta: server key in ticket: %w", err)
	}
	sender, err := serverShareSuite.NewSender(pk, serverShareInfo(domain, index))
	if err != nil {
		return nil, err
	}
	enc, sealer, err := sender.Setup(rand.Reader)
	if err != nil {
		return nil, err
	}
	ct, err := sealer.Seal(share, nil)
	if err != nil {
		return nil, err
	}
	return append(enc, ct...), nil
}

// OpenServerShare opens a sealed server share from DTA index with the server's private key.
func OpenServerShare(private []byte, domain string, index uint32, sealed []byte) ([]byte, error) {
	sk, err := serverShareKEM.Scheme().UnmarshalBinaryPrivateKey(private)
	if err != nil {
		return nil, fmt.Errorf("dta: server private key: %w", err)
	}
	n := serverShareKEM.Scheme().CiphertextSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("dta: sealed share from DTA %d too short", index)
	}
	receiver, err := serverShareSuite.NewReceiver(sk, serverShareInfo(domain, index))
	if err != nil {
		return nil, err
	}
	opener, err := receiver.Setup(sealed[:n])
	if err != nil {
		return nil, fmt.Errorf("dta: sealed share from DTA %d: %w", index, err)
	}
	pt, err := opener.Open(sealed[n:], nil)
	if err != nil {
		return nil, fmt.Errorf("dta: sealed share from DTA %d does not open", index)
	}
	return pt, nil
}
