package pairing

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
	"io"
)

// The session key's secrecy comes from an ephemeral hybrid KEM, X25519 + ML-KEM-768,
// combined as in TLS's X25519MLKEM768: the client's key share is the ML-KEM-768
// encapsulation key followed by an X25519 public key, the server's answer the ML-KEM
// ciphertext followed by the server's X25519 public key, and the shared secret the
// ML-KEM shared key followed by the X25519 shared secret. Both halves come from Go's
// standard library (crypto/mlkem, crypto/ecdh).
const (
	X25519Size           = 32
	EncapsulationKeySize = mlkem.EncapsulationKeySize768 + X25519Size // 1184 + 32
	CiphertextSize       = mlkem.CiphertextSize768 + X25519Size       // 1088 + 32
	SharedSecretSize     = mlkem.SharedKeySize + X25519Size           // 32 + 32
)

// Sizes of the randomness a key share is made from (docs/protocol.md 9.1, 9.2).
const (
	mlkemSeedSize = mlkem.SeedSize // d ‖ z of FIPS 203 ML-KEM.KeyGen_internal
	x25519KeySize = 32
)

// An EncapsulationKey is a client's ephemeral hybrid key share, sent in pass 1.
type EncapsulationKey struct {
	mlkem  *mlkem.EncapsulationKey768
	x25519 *ecdh.PublicKey
}

// Bytes returns the ML-KEM-768 encapsulation key ‖ the X25519 public key.
func (k *EncapsulationKey) Bytes() []byte {
	return append(k.mlkem.Bytes(), k.x25519.Bytes()...)
}

// DecodeEncapsulationKey decodes a client's key share strictly: exactly
// EncapsulationKeySize bytes (ErrLength), an ML-KEM-768 encapsulation key that passes
// FIPS 203's modulus check and a canonical X25519 public key (ErrEncoding).
func DecodeEncapsulationKey(b []byte) (*EncapsulationKey, error) {
	if len(b) != EncapsulationKeySize {
		return nil, fmt.Errorf("%w: key share is %d bytes, want %d", ErrLength, len(b), EncapsulationKeySize)
	}
	m, err := mlkem.NewEncapsulationKey768(b[:mlkem.EncapsulationKeySize768])
	if err != nil {
		return nil, fmt.Errorf("%w: ML-KEM-768 encapsulation key", ErrEncoding)
	}
	x, err := decodeX25519(b[mlkem.EncapsulationKeySize768:])
	if err != nil {
		return nil, err
	}
	return &EncapsulationKey{mlkem: m, x25519: x}, nil
}

// A Ciphertext is the server's answer to a key share, sent in the challenge.
type Ciphertext struct {
	mlkem  []byte
	x25519 *ecdh.PublicKey
}

// Bytes returns the ML-KEM-768 ciphertext ‖ the server's X25519 public key.
func (c *Ciphertext) Bytes() []byte {
	return append(append(make([]byte, 0, CiphertextSize), c.mlkem...), c.x25519.Bytes()...)
}

// DecodeCiphertext decodes a server's ciphertext strictly: exactly CiphertextSize bytes
// (ErrLength) and a canonical X25519 public key (ErrEncoding). Every ML-KEM-768
// ciphertext of the right length is valid (decapsulation rejects implicitly).
func DecodeCiphertext(b []byte) (*Ciphertext, error) {
	if len(b) != CiphertextSize {
		return nil, fmt.Errorf("%w: ciphertext is %d bytes, want %d", ErrLength, len(b), CiphertextSize)
	}
	x, err := decodeX25519(b[mlkem.CiphertextSize768:])
	if err != nil {
		return nil, err
	}
	return &Ciphertext{mlkem: append([]byte(nil), b[:mlkem.CiphertextSize768]...), x25519: x}, nil
}

// decodeX25519 accepts the canonical encodings of RFC 7748 only: the value, read
// little-endian, is below 2^255 − 19 (so the top bit is clear). X25519 itself would
// accept the others; polyroot's decoders allow one encoding per value.
func decodeX25519(b []byte) (*ecdh.PublicKey, error) {
	if !x25519Canonical(b) {
		return nil, fmt.Errorf("%w: X25519 public key not canonical", ErrEncoding)
	}
	k, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: X25519 public key", ErrEncoding)
	}
	return k, nil
}

// x25519Canonical reports whether the 32 bytes b, little-endian, are below p = 2^255 − 19.
func x25519Canonical(b []byte) bool {
	if len(b) != X25519Size || b[31] > 0x7f {
		return false
	}
	if b[31] < 0x7f {
		return true
	}
	for _, c := range b[1:31] {
		if c != 0xff {
			return true
		}
	}
	return b[0] < 0xed // p = 0x7fff…ffed
}

// A decapsulationKey is the client's secret half of its key share: single-use.
type decapsulationKey struct {
	mlkem  *mlkem.DecapsulationKey768
	x25519 *ecdh.PrivateKey
}

// newDecapsulationKey reads the key share's randomness from rand: the 64-byte ML-KEM
// seed d ‖ z, then the 32-byte X25519 private key.
func newDecapsulationKey(rand io.Reader) (*decapsulationKey, error) {
	var seed [mlkemSeedSize + x25519KeySize]byte
	if _, err := io.ReadFull(randOrDefault(rand), seed[:]); err != nil {
		return nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	defer clear(seed[:])
	return decapsulationKeyFromSeed(seed[:mlkemSeedSize], seed[mlkemSeedSize:])
}

func decapsulationKeyFromSeed(mlkemSeed, x25519Key []byte) (*decapsulationKey, error) {
	m, err := mlkem.NewDecapsulationKey768(mlkemSeed)
	if err != nil {
		return nil, fmt.Errorf("pairing: ML-KEM key: %w", err)
	}
	x, err := ecdh.X25519().NewPrivateKey(x25519Key)
	if err != nil {
		return nil, fmt.Errorf("pairing: X25519 key: %w", err)
	}
	return &decapsulationKey{mlkem: m, x25519: x}, nil
}

// encapsulationKey returns the public key share.
func (dk *decapsulationKey) encapsulationKey() *EncapsulationKey {
	return &EncapsulationKey{mlkem: dk.mlkem.EncapsulationKey(), x25519: dk.x25519.PublicKey()}
}

// decapsulate returns the shared secret ML-KEM shared key ‖ X25519 shared secret. An
// X25519 share of small order, whose shared secret is all zero, gives ErrIdentity.
func (dk *decapsulationKey) decapsulate(ct *Ciphertext) ([]byte, error) {
	ssm, err := dk.mlkem.Decapsulate(ct.mlkem)
	if err != nil {
		return nil, fmt.Errorf("%w: ML-KEM ciphertext", ErrEncoding) // unreachable after DecodeCiphertext
	}
	ssx, err := dk.x25519.ECDH(ct.x25519)
	if err != nil {
		return nil, fmt.Errorf("%w: the server's X25519 share has small order", ErrIdentity)
	}
	return append(ssm, ssx...), nil
}

// An encapsulator is the server's randomness for one encapsulation: its ephemeral
// X25519 key and the ML-KEM encapsulation (randomised by crypto/mlkem, or
// derandomised in the known-answer tests).
type encapsulator struct {
	x25519      *ecdh.PrivateKey
	encapsulate func(*mlkem.EncapsulationKey768) (sharedKey, ciphertext []byte, err error)
}

func mlkemEncapsulate(ek *mlkem.EncapsulationKey768) ([]byte, []byte, error) {
	ss, ct := ek.Encapsulate()
	return ss, ct, nil
}

// newEncapsulator reads the server's X25519 private key from rand; the ML-KEM
// encapsulation draws its own randomness from crypto/rand.
func newEncapsulator(rand io.Reader) (*encapsulator, error) {
	var k [x25519KeySize]byte
	if _, err := io.ReadFull(randOrDefault(rand), k[:]); err != nil {
		return nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	defer clear(k[:])
	x, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		return nil, fmt.Errorf("pairing: X25519 key: %w", err)
	}
	return &encapsulator{x25519: x, encapsulate: mlkemEncapsulate}, nil
}

// run answers the client's key share: the shared secret and the ciphertext.
// A client X25519 share of small order gives ErrIdentity.
func (e *encapsulator) run(ek *EncapsulationKey) (ss []byte, ct *Ciphertext, err error) {
	ssx, err := e.x25519.ECDH(ek.x25519)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the client's X25519 share has small order", ErrIdentity)
	}
	ssm, ctm, err := e.encapsulate(ek.mlkem)
	if err != nil {
		return nil, nil, fmt.Errorf("pairing: ML-KEM encapsulation: %w", err)
	}
	return append(ssm, ssx...), &Ciphertext{mlkem: ctm, x25519: e.x25519.PublicKey()}, nil
}
