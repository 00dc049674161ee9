package pairing

import (
	"encoding/binary"
	"fmt"
)

// Sizes of the login messages in their binary encodings.
const (
	SessionIDSize = 16
	TagSize       = 32
	Pass1Size     = IDHashSize + 8 + 2*G1Size + EncapsulationKeySize // idhash ‖ slot ‖ U ‖ Z ‖ ek: 1352
	ChallengeSize = SessionIDSize + ScalarSize + CiphertextSize      // sid ‖ y ‖ ct: 1168
	Pass2Size     = SessionIDSize + G1Size + TagSize                 // sid ‖ V ‖ tag_c: 96
	FinishSize    = TagSize                                          // tag_s: 32
)

// Pass1 is the client's first message: who it is, which permit slot it uses, its
// commitments U = x·A' and Z = r·A', and its ephemeral hybrid key share.
type Pass1 struct {
	IDHash IDHash
	Slot   uint64
	U, Z   *G1
	KEM    *EncapsulationKey
}

// Challenge is the server's answer to pass 1: a session ID, the challenge y and the
// server's encapsulation to the client's key share.
type Challenge struct {
	SessionID [SessionIDSize]byte
	Y         *Scalar
	KEM       *Ciphertext
}

// Pass2 is the client's proof V = −(x+y)·SEC and its key confirmation tag.
type Pass2 struct {
	SessionID [SessionIDSize]byte
	V         *G1
	Tag       [TagSize]byte
}

// Finish is the server's key confirmation tag: only a holder of sQ can make it.
type Finish struct {
	Tag [TagSize]byte
}

// MarshalBinary encodes m as idhash ‖ slot (uint64 big-endian) ‖ U ‖ Z ‖ key share.
func (m *Pass1) MarshalBinary() ([]byte, error) {
	b := append(make([]byte, 0, Pass1Size), m.IDHash[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Slot)
	b = append(b, m.U.Bytes()...)
	b = append(b, m.Z.Bytes()...)
	return append(b, m.KEM.Bytes()...), nil
}

// UnmarshalBinary decodes m strictly: exact length, valid non-identity points, a valid
// key share.
func (m *Pass1) UnmarshalBinary(b []byte) error {
	if len(b) != Pass1Size {
		return fmt.Errorf("%w: pass 1 is %d bytes, want %d", ErrLength, len(b), Pass1Size)
	}
	u, err := DecodeG1(b[40:88])
	if err != nil {
		return fmt.Errorf("pass 1 U: %w", err)
	}
	z, err := DecodeG1(b[88:136])
	if err != nil {
		return fmt.Errorf("pass 1 Z: %w", err)
	}
	ek, err := DecodeEncapsulationKey(b[136:Pass1Size])
	if err != nil {
		return fmt.Errorf("pass 1 key share: %w", err)
	}
	copy(m.IDHash[:], b[:32])
	m.Slot = binary.BigEndian.Uint64(b[32:40])
	m.U, m.Z, m.KEM = u, z, ek
	return nil
}

// MarshalBinary encodes m as sid ‖ y ‖ ciphertext.
func (m *Challenge) MarshalBinary() ([]byte, error) {
	b := append(make([]byte, 0, ChallengeSize), m.SessionID[:]...)
	b = append(b, m.Y.Bytes()...)
	return append(b, m.KEM.Bytes()...), nil
}

// UnmarshalBinary decodes m strictly: exact length, non-zero canonical y, a valid
// ciphertext.
func (m *Challenge) UnmarshalBinary(b []byte) error {
	if len(b) != ChallengeSize {
		return fmt.Errorf("%w: challenge is %d bytes, want %d", ErrLength, len(b), ChallengeSize)
	}
	y, err := DecodeScalar(b[16:48])
	if err != nil {
		return fmt.Errorf("challenge y: %w", err)
	}
	ct, err := DecodeCiphertext(b[48:ChallengeSize])
	if err != nil {
		return fmt.Errorf("challenge ciphertext: %w", err)
	}
	copy(m.SessionID[:], b[:16])
	m.Y, m.KEM = y, ct
	return nil
}

// MarshalBinary encodes m as sid ‖ V ‖ tag.
func (m *Pass2) MarshalBinary() ([]byte, error) {
	b := append(m.SessionID[:0:0], m.SessionID[:]...)
	b = append(b, m.V.Bytes()...)
	return append(b, m.Tag[:]...), nil
}

// UnmarshalBinary decodes m strictly: exact length, valid non-identity V.
func (m *Pass2) UnmarshalBinary(b []byte) error {
	if len(b) != Pass2Size {
		return fmt.Errorf("%w: pass 2 is %d bytes, want %d", ErrLength, len(b), Pass2Size)
	}
	v, err := DecodeG1(b[16:64])
	if err != nil {
		return fmt.Errorf("pass 2 V: %w", err)
	}
	copy(m.SessionID[:], b[:16])
	m.V = v
	copy(m.Tag[:], b[64:96])
	return nil
}

// MarshalBinary encodes m as its tag.
func (m *Finish) MarshalBinary() ([]byte, error) { return append([]byte(nil), m.Tag[:]...), nil }

// UnmarshalBinary decodes m: exactly TagSize bytes.
func (m *Finish) UnmarshalBinary(b []byte) error {
	if len(b) != FinishSize {
		return fmt.Errorf("%w: finish is %d bytes, want %d", ErrLength, len(b), FinishSize)
	}
	copy(m.Tag[:], b)
	return nil
}
