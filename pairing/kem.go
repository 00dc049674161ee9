package pairing

import (
	"crypto/mlkem"
	"fmt"
	"io"

	"github.com/cloudflare/circl/dh/x25519"
)

// The session key's secrecy comes from an ephemeral hybrid KEM, X25519 + ML-KEM-768,
// combined as in TLS's X25519MLKEM768: the client's key share is the ML-KEM-768
// encapsulation key followed by an X25519 public key, the server's answer the ML-KEM
// ciphertext followed by the server's X25519 public key, and the shared secret the
// ML-KEM shared key followed by the X25519 shared secret. ML-KEM-768 is Go's
// crypto/mlkem, X25519 circl's (constant-time, like crypto/ecdh's, but without the
// NIST curves crypto/ecdh links into every program, the browser client's included).
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
	x25519 x25519.Key
}

// Bytes returns the ML-KEM-768 encapsulation key ‖ the X25519 public key.
func (k *EncapsulationKey) Bytes() []byte {
	return append(k.mlkem.Bytes(), k.x25519[:]...)
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
	x25519 x25519.Key
}

// Bytes returns the ML-KEM-768 ciphertext ‖ the server's X25519 public key.
func (c *Ciphertext) Bytes() []byte {
	return append(append(make([]byte, 0, CiphertextSize), c.mlkem...), c.x25519[:]...)
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
func decodeX25519(b []byte) (x25519.Key, error) {
	var k x25519.Key
	if !x25519Canonical(b) {
		return k, fmt.Errorf("%w: X25519 public key not canonical", ErrEncoding)
	}
	copy(k[:], b)
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
	x25519 x25519.Key // the private key; the public one is x25519Public
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
	if len(x25519Key) != x25519KeySize {
		return nil, fmt.Errorf("pairing: X25519 key: %d bytes", len(x25519Key))
	}
	dk := &decapsulationKey{mlkem: m}
	copy(dk.x25519[:], x25519Key)
	return dk, nil
}

// x25519Public returns the public key of the private key sk.
func x25519Public(sk *x25519.Key) x25519.Key {
	var pk x25519.Key
	x25519.KeyGen(&pk, sk)
	return pk
}

// x25519Shared is the X25519 shared secret of sk and pk; false when pk has small
// order (the secret would be all zero).
func x25519Shared(sk, pk *x25519.Key) ([]byte, bool) {
	var ss x25519.Key
	if !x25519.Shared(&ss, sk, pk) {
		return nil, false
	}
	return ss[:], true
}

// encapsulationKey returns the public key share.
func (dk *decapsulationKey) encapsulationKey() *EncapsulationKey {
	return &EncapsulationKey{mlkem: dk.mlkem.EncapsulationKey(), x25519: x25519Public(&dk.x25519)}
}

// decapsulate returns the shared secret ML-KEM shared key ‖ X25519 shared secret. An
// X25519 share of small order, whose shared secret is all zero, gives ErrIdentity.
func (dk *decapsulationKey) decapsulate(ct *Ciphertext) ([]byte, error) {
	ssm, err := dk.mlkem.Decapsulate(ct.mlkem)
	if err != nil {
		return nil, fmt.Errorf("%w: ML-KEM ciphertext", ErrEncoding) // unreachable after DecodeCiphertext
	}
	ssx, ok := x25519Shared(&dk.x25519, &ct.x25519)
	if !ok {
		return nil, fmt.Errorf("%w: the server's X25519 share has small order", ErrIdentity)
	}
	return append(ssm, ssx...), nil
}

// An encapsulator is the server's randomness for one encapsulation: its ephemeral
// X25519 key and the ML-KEM encapsulation (randomised by crypto/mlkem, or
// derandomised in the known-answer tests).
type encapsulator struct {
	x25519      x25519.Key // the private key
	encapsulate func(*mlkem.EncapsulationKey768) (sharedKey, ciphertext []byte, err error)
}

func mlkemEncapsulate(ek *mlkem.EncapsulationKey768) ([]byte, []byte, error) {
	ss, ct := ek.Encapsulate()
	return ss, ct, nil
}

// newEncapsulator reads the server's X25519 private key from rand; the ML-KEM
// encapsulation draws its own randomness from crypto/rand.
func newEncapsulator(rand io.Reader) (*encapsulator, error) {
	e := &encapsulator{encapsulate: mlkemEncapsulate}
	if _, err := io.ReadFull(randOrDefault(rand), e.x25519[:]); err != nil {
		return nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	return e, nil
}

// run answers the client's key share: the shared secret and the ciphertext.
// A client X25519 share of small order gives ErrIdentity.
func (e *encapsulator) run(ek *EncapsulationKey) (ss []byte, ct *Ciphertext, err error) {
	ssx, ok := x25519Shared(&e.x25519, &ek.x25519)
	if !ok {
		return nil, nil, fmt.Errorf("%w: the client's X25519 share has small order", ErrIdentity)
	}
	ssm, ctm, err := e.encapsulate(ek.mlkem)
	if err != nil {
		return nil, nil, fmt.Errorf("pairing: ML-KEM encapsulation: %w", err)
	}
	return append(ssm, ssx...), &Ciphertext{mlkem: ctm, x25519: x25519Public(&e.x25519)}, nil
}
