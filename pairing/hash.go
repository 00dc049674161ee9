package pairing

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Domain separation tags, versioned so that a later protocol version can never be
// confused with this one. Hashes to G1 use the RFC 9380 suite named in the tag; hashes
// to scalars use RFC 9380 hash_to_field with expand_message_xmd(SHA-256), L = 48.
const (
	DSTIdentity = "POLYROOT-V1-ID-BLS12381G1_XMD:SHA-256_SSWU_RO_"
	DSTPermit   = "POLYROOT-V1-PERMIT-BLS12381G1_XMD:SHA-256_SSWU_RO_"
	DSTPIN      = "POLYROOT-V1-PIN-BLS12381FR_XMD:SHA-256_"
	DSTDLEQ     = "POLYROOT-V1-DLEQ-BLS12381FR_XMD:SHA-256_"
	DSTNonce    = "POLYROOT-V1-NONCE-BLS12381FR_XMD:SHA-256_"
	DSTLogin    = "POLYROOT-V2-LOGIN-BLS12381FR_XMD:SHA-256_"
)

// IDHashSize is the length of an identity hash, and SaltSize that of its salt.
const (
	IDHashSize = sha256.Size
	SaltSize   = 16
)

// An IDHash is the salted hash of an app-level identity. It is the only form of an
// identity that DTAs, logs and the chain ever see.
type IDHash [IDHashSize]byte

// NewIDHash returns SHA-256(lp(domain) ‖ lp(id) ‖ salt). A fresh salt at each enrolment
// gives a new, unlinkable identity.
func NewIDHash(domain, id string, salt []byte) (IDHash, error) {
	if len(salt) != SaltSize {
		return IDHash{}, fmt.Errorf("%w: salt is %d bytes, want %d", ErrLength, len(salt), SaltSize)
	}
	return sha256.Sum256(append(lp([]byte(domain), []byte(id)), salt...)), nil
}

// IdentityPoint returns A = H1(idhash), the point a client key s·A is issued on.
func IdentityPoint(id IDHash) *G1 { return HashToG1(id[:], []byte(DSTIdentity)) }

// PermitPoint returns T_k = H1(idhash ‖ k ‖ period), the point of the time permit for
// slot k of a domain whose permits last period seconds (both uint64 big-endian).
func PermitPoint(id IDHash, slot, period uint64) *G1 {
	return HashToG1(permitMessage(id, slot, period), []byte(DSTPermit))
}

// permitMessage is idhash ‖ k ‖ period, the message hashed to T_k.
func permitMessage(id IDHash, slot, period uint64) []byte {
	msg := make([]byte, 0, IDHashSize+16)
	msg = append(msg, id[:]...)
	msg = binary.BigEndian.AppendUint64(msg, slot)
	return binary.BigEndian.AppendUint64(msg, period)
}

// PINScalar returns π = Hs(lp(domain) ‖ lp(idhash) ‖ lp(pin)), the value the PIN takes
// out of the client key. Hashing the domain and idhash in means one PIN guess tests one
// token only.
func PINScalar(domain string, id IDHash, pin []byte) *Scalar {
	return HashToScalar(lp([]byte(domain), id[:], pin), []byte(DSTPIN))
}

// lp concatenates fields, each prefixed with its length as a uint32 big-endian, so that
// no two different lists of fields give the same bytes.
func lp(fields ...[]byte) []byte {
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
