package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// sessionStateVersion is the first byte of a sealed session state.
const sessionStateVersion = 2

// A sessionSealer seals login sessions for a store shared by replicas, so that a
// session is kept outside the process that made it without its secrets being readable
// there: the state (it holds the session's shared secret) is
// encrypted with AES-256-GCM under a key derived from the token key, which every
// replica of a domain holds and the database does not, and bound to the session ID.
// Who reads the database, its backups or its write-ahead log learns no session key.
type sessionSealer struct {
	aead            cipher.AEAD
	login, renewals *pairing.Verifier
}

func newSessionSealer(tokenKey ed25519.PrivateKey, login, renewals *pairing.Verifier) (*sessionSealer, error) {
	block, err := aes.NewCipher(derivedKey(tokenKey, "polyroot server login session state v1"))
	if err != nil {
		return nil, fmt.Errorf("server: session state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("server: session state key: %w", err)
	}
	return &sessionSealer{aead: aead, login: login, renewals: renewals}, nil
}

// errSessionState: a sealed session that does not open or restore (another domain or
// key). The login is not counted as a failure.
var errSessionState = errors.New("server: a stored login session cannot be restored")

// seal is version ‖ created (Unix ns) ‖ flags (1: renew, 2: unbound) ‖ days ‖ idhash ‖ the server session's
// state (pairing.ServerSession.MarshalBinary: it holds the session's shared secret),
// encrypted: nonce ‖ AES-GCM ciphertext, with the session ID as associated data. A
// challenge cannot be made again from the randomness it was drawn from (its ML-KEM
// encapsulation draws its own), so the state itself is kept.
func (s *sessionSealer) seal(p *pending) ([]byte, error) {
	if len(p.state) == 0 {
		state, err := p.sess.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("server: a login session without its state cannot be stored: %w", err)
		}
		p.state = state
	}
	pt := []byte{sessionStateVersion}
	pt = binary.BigEndian.AppendUint64(pt, uint64(p.created.UnixNano()))
	var flags byte
	if p.renew {
		flags |= sessionRenew
	}
	if p.unbound {
		flags |= sessionUnbound
	}
	pt = append(pt, flags)
	pt = binary.BigEndian.AppendUint32(pt, uint32(p.days))
	pt = append(pt, p.idhash[:]...)
	pt = append(pt, p.state...)
	id := p.sess.ID()
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(pt)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("server: reading randomness: %w", err)
	}
	return s.aead.Seal(nonce, nonce, pt, id[:]), nil
}

// open decrypts the state of session id and restores the session.
func (s *sessionSealer) open(id [pairing.SessionIDSize]byte, sealed []byte) (*pending, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errSessionState
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], id[:])
	const head = 1 + 8 + 1 + 4 + pairing.IDHashSize
	if err != nil || len(pt) <= head || pt[0] != sessionStateVersion {
		return nil, errSessionState
	}
	p := &pending{
		created: time.Unix(0, int64(binary.BigEndian.Uint64(pt[1:]))),
		renew:   pt[9]&sessionRenew != 0,
		unbound: pt[9]&sessionUnbound != 0,
		days:    int(binary.BigEndian.Uint32(pt[10:])),
		state:   pt[head:],
	}
	copy(p.idhash[:], pt[14:head])
	v := s.login
	if p.renew {
		v = s.renewals
	}
	sess, err := v.RestoreSession(p.state)
	if err != nil || sess.ID() != id {
		return nil, errSessionState
	}
	p.sess = sess
	return p, nil
}

// Flags of a sealed session.
const (
	sessionRenew   = 1 << 0
	sessionUnbound = 1 << 1
)
