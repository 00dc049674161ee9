package server

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// challengeSeedSize is the size of the seed that every random choice of one login's
// challenge is drawn from (challengeRand).
const challengeSeedSize = 32

// newChallengeSeed returns a fresh seed for a login's challenge.
func newChallengeSeed() ([]byte, error) {
	seed := make([]byte, challengeSeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("server: reading randomness: %w", err)
	}
	return seed, nil
}

// challengeRand is the randomness of a challenge: SHAKE256 of the seed. The challenge
// made from a seed is made again, the same, from the same seed and pass 1: so a store
// shared by replicas keeps a login session as its seed and pass 1 (sealed), and the
// replica that gets pass 2 rebuilds the session (sessionSealer.open).
func challengeRand(seed []byte) io.Reader {
	h := sha3.NewSHAKE256()
	h.Write([]byte("polyroot server challenge randomness v1"))
	h.Write(seed)
	return h
}

// sessionStateVersion is the first byte of a sealed session state.
const sessionStateVersion = 1

// A sessionSealer seals login sessions for a store shared by replicas, so that a
// session is kept outside the process that made it without its secrets being readable
// there: the state (the challenge seed holds the server's ephemeral secrets) is
// encrypted with AES-256-GCM under a key derived from the token key, which every
// replica of a domain holds and the database does not, and bound to the session ID.
// Who reads the database, its backups or its write-ahead log learns no session key.
type sessionSealer struct {
	aead            cipher.AEAD
	login, renewals *pairing.Verifier
}

func newSessionSealer(tokenKey ed25519.PrivateKey, login, renewals *pairing.Verifier) (*sessionSealer, error) {
	key, err := hkdf.Key(sha256.New, tokenKey.Seed(), nil, "polyroot server login session state v1", 32)
	if err != nil {
		return nil, fmt.Errorf("server: session state key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("server: session state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("server: session state key: %w", err)
	}
	return &sessionSealer{aead: aead, login: login, renewals: renewals}, nil
}

// errSessionState: a sealed session that does not open, or rebuilds into another
// challenge than the one sent (a replica whose randomness of a challenge does not
// come from its seed alone). The login is not counted as a failure.
var errSessionState = errors.New("server: a stored login session cannot be restored")

// seal is version ‖ created (Unix ns) ‖ renew ‖ days ‖ seed ‖ SHA-256(challenge) ‖
// pass 1, encrypted: nonce ‖ AES-GCM ciphertext, with the session ID as associated data.
func (s *sessionSealer) seal(p *pending) ([]byte, error) {
	if len(p.seed) != challengeSeedSize || len(p.pass1) == 0 {
		return nil, errors.New("server: a login session without its seed and pass 1 cannot be stored")
	}
	pt := []byte{sessionStateVersion}
	pt = binary.BigEndian.AppendUint64(pt, uint64(p.created.UnixNano()))
	var renew byte
	if p.renew {
		renew = 1
	}
	pt = append(pt, renew)
	pt = binary.BigEndian.AppendUint32(pt, uint32(p.days))
	pt = append(pt, p.seed...)
	pt = append(pt, p.challenge[:]...)
	pt = append(pt, p.pass1...)
	id := p.sess.ID()
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("server: reading randomness: %w", err)
	}
	return s.aead.Seal(nonce, nonce, pt, id[:]), nil
}

// open decrypts the state of session id and rebuilds the session, checking that it
// makes the challenge that was sent.
func (s *sessionSealer) open(id [pairing.SessionIDSize]byte, sealed []byte) (*pending, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errSessionState
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], id[:])
	const head = 1 + 8 + 1 + 4 + challengeSeedSize + sha256.Size
	if err != nil || len(pt) <= head || pt[0] != sessionStateVersion {
		return nil, errSessionState
	}
	p := &pending{
		created: time.Unix(0, int64(binary.BigEndian.Uint64(pt[1:]))),
		renew:   pt[9] == 1,
		days:    int(binary.BigEndian.Uint32(pt[10:])),
		seed:    pt[14 : 14+challengeSeedSize],
		pass1:   pt[head:],
	}
	copy(p.challenge[:], pt[14+challengeSeedSize:head])
	var p1 pairing.Pass1
	if err := p1.UnmarshalBinary(p.pass1); err != nil {
		return nil, errSessionState
	}
	p.idhash = p1.IDHash
	v := s.login
	if p.renew {
		v = s.renewals
	}
	sess, ch, err := v.Challenge(challengeRand(p.seed), &p1, p.created)
	if err != nil {
		return nil, errSessionState
	}
	b, err := ch.MarshalBinary()
	if err != nil || sha256.Sum256(b) != p.challenge || !bytes.Equal(idOf(sess), id[:]) {
		return nil, errSessionState
	}
	p.sess = sess
	return p, nil
}

func idOf(s *pairing.ServerSession) []byte {
	id := s.ID()
	return id[:]
}
