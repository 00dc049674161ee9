package wire

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"io"

	"github.com/cloudflare/circl/dh/x25519"
	"golang.org/x/crypto/chacha20poly1305"
)

// The HPKE that seals every share: RFC 9180 in base mode, one message per context,
// one suite: DHKEM(X25519, HKDF-SHA256) (0x0020), HKDF-SHA256 (0x0001),
// ChaCha20-Poly1305 (0x0003).
//
// It is composed here from circl's X25519, crypto/hkdf and x/crypto's
// ChaCha20-Poly1305 rather than taken from crypto/hpke or circl/hpke because both
// bring every KEM they know into the program that imports them (crypto/hpke through
// crypto/ecdh the NIST curves, circl/hpke also X448 and Kyber): crypto/ecdh alone
// adds 180 KB gzipped to a WebAssembly program, whose budget here is 1.5 MB (the
// browser client). TestHPKEVector holds it
// to RFC 9180's test vector A.2.1 for this suite and FuzzHPKEStdlib to crypto/hpke in
// both directions.

// hpkeSuiteID and hpkeKEMSuiteID are RFC 9180's suite_id for the key schedule and
// for the KEM.
var (
	hpkeSuiteID    = []byte{'H', 'P', 'K', 'E', 0x00, 0x20, 0x00, 0x01, 0x00, 0x03}
	hpkeKEMSuiteID = []byte{'K', 'E', 'M', 0x00, 0x20}
)

// hpkePSKIDHash is the key schedule's psk_id_hash: base mode has no PSK ID, so it is
// the same for every message.
var hpkePSKIDHash = labeledExtract(hpkeSuiteID, nil, "psk_id_hash", nil)

// errHPKEKey reports a public key of small order: the Diffie–Hellman result would be
// all zero, which RFC 9180 (7.1.4) requires both sides to refuse.
var errHPKEKey = errors.New("wire: X25519 key of small order")

func labeledExtract(suiteID []byte, salt []byte, label string, ikm []byte) []byte {
	in := append(append(append([]byte("HPKE-v1"), suiteID...), label...), ikm...)
	prk, _ := hkdf.Extract(sha256.New, in, salt) // HMAC-SHA256 takes any key and input
	return prk
}

func labeledExpand(suiteID []byte, prk []byte, label string, info []byte, length int) []byte {
	in := append([]byte{byte(length >> 8), byte(length)}, "HPKE-v1"...)
	in = append(append(append(in, suiteID...), label...), info...)
	out, _ := hkdf.Expand(sha256.New, prk, string(in), length) // length ≤ 255·32
	return out
}

// hpkeSharedSecret is DHKEM's ExtractAndExpand of the Diffie–Hellman result dh with
// kem_context = enc ‖ pkR.
func hpkeSharedSecret(dh, enc, pkR *x25519.Key) []byte {
	prk := labeledExtract(hpkeKEMSuiteID, nil, "eae_prk", dh[:])
	return labeledExpand(hpkeKEMSuiteID, prk, "shared_secret", append(enc[:], pkR[:]...), 32)
}

// hpkeKeySchedule is RFC 9180's KeySchedule in base mode (no PSK): the AEAD key and
// the base nonce, which is the nonce of the context's first and only message.
func hpkeKeySchedule(sharedSecret, info []byte) (key, nonce []byte) {
	ctx := []byte{0x00} // mode_base
	ctx = append(ctx, hpkePSKIDHash...)
	ctx = append(ctx, labeledExtract(hpkeSuiteID, nil, "info_hash", info)...)
	secret := labeledExtract(hpkeSuiteID, sharedSecret, "secret", nil)
	return labeledExpand(hpkeSuiteID, secret, "key", ctx, chacha20poly1305.KeySize),
		labeledExpand(hpkeSuiteID, secret, "base_nonce", ctx, chacha20poly1305.NonceSize)
}

// hpkeSeal encapsulates to pkR with an ephemeral key read from rand and seals
// plaintext under aad: enc (32 bytes) ‖ ciphertext ‖ tag.
func hpkeSeal(rand io.Reader, pkR *x25519.Key, info, aad, plaintext []byte) ([]byte, error) {
	var skE, enc, dh x25519.Key
	if _, err := io.ReadFull(rand, skE[:]); err != nil {
		return nil, err
	}
	defer clear(skE[:])
	x25519.KeyGen(&enc, &skE)
	if !x25519.Shared(&dh, &skE, pkR) {
		return nil, errHPKEKey
	}
	defer clear(dh[:])
	key, nonce := hpkeKeySchedule(hpkeSharedSecret(&dh, &enc, pkR), info)
	aead, _ := chacha20poly1305.New(key) // the key is KeySize bytes
	return aead.Seal(enc[:], nonce, plaintext, aad), nil
}

// hpkeOpen decapsulates the first 32 bytes of sealed with skR and opens the rest
// under aad. Any failure is ErrSealed.
func hpkeOpen(skR *x25519.Key, info, aad, sealed []byte) ([]byte, error) {
	var enc, pkR, dh x25519.Key
	if len(sealed) < len(enc)+chacha20poly1305.Overhead {
		return nil, ErrSealed
	}
	copy(enc[:], sealed)
	x25519.KeyGen(&pkR, skR)
	if !x25519.Shared(&dh, skR, &enc) {
		return nil, ErrSealed
	}
	defer clear(dh[:])
	key, nonce := hpkeKeySchedule(hpkeSharedSecret(&dh, &enc, &pkR), info)
	aead, _ := chacha20poly1305.New(key)
	pt, err := aead.Open(nil, nonce, sealed[len(enc):], aad)
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}
