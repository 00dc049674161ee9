package server

import (
	"sync"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// maxSessions bounds the login sessions kept in memory; the oldest go first.
const maxSessions = 100_000

// sessions keeps the server side of logins between pass 1 and pass 2: single use,
// expiring after a TTL, bounded in number.
type sessions struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	m     map[[pairing.SessionIDSize]byte]*pending
	queue [][pairing.SessionIDSize]byte // insertion order
}

type pending struct {
	sess    *pairing.ServerSession
	idhash  pairing.IDHash
	created time.Time
	renew   bool // a permit renewal (wire.PurposeRenew), not a login
	days    int  // permit periods asked for by a renewal (0: the enrolment's default)
	unbound bool // the client asked for no channel binding (wire.StartRequest.Unbound)
	// state rebuilds the session elsewhere (sessionSealer): the server session's
	// state (pairing.ServerSession.MarshalBinary), secret; made by the store that
	// keeps sessions outside the process, when it seals them.
	state []byte
}

func newSessions(ttl time.Duration, max int) *sessions {
	return &sessions{ttl: ttl, max: max, m: map[[pairing.SessionIDSize]byte]*pending{}}
}

func (s *sessions) put(p *pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Drop expired and excess sessions from the front of the queue; a queue entry whose
	// session was already used is simply skipped.
	for len(s.queue) > 0 {
		head := s.queue[0]
		old, ok := s.m[head]
		if ok && p.created.Sub(old.created) < s.ttl && len(s.m) < s.max && len(s.queue) < 2*s.max {
			break
		}
		delete(s.m, head)
		s.queue = s.queue[1:]
	}
	id := p.sess.ID()
	s.m[id] = p
	s.queue = append(s.queue, id)
}

// take removes and returns the session id, if it exists and has not expired at now.
func (s *sessions) take(id [pairing.SessionIDSize]byte, now time.Time) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.m[id]
	if !ok {
		return nil
	}
	delete(s.m, id)
	if now.Sub(p.created) >= s.ttl || now.Before(p.created.Add(-time.Minute)) {
		return nil
	}
	return p
}

// maxSessionKeys bounds the session keys kept for proof of possession.
const maxSessionKeys = 100_000

// sessionKeys keeps each login's session key by its access token's ID until the token
// expires, for app backends in the same process.
type sessionKeys struct {
	mu    sync.Mutex
	m     map[string]keyEntry
	queue []string
}

type keyEntry struct {
	key []byte
	exp time.Time
}

func (k *sessionKeys) put(jti string, key []byte, exp, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]keyEntry{}
	}
	for len(k.queue) > 0 {
		e, ok := k.m[k.queue[0]]
		if ok && now.Before(e.exp) && len(k.m) < maxSessionKeys {
			break
		}
		delete(k.m, k.queue[0])
		k.queue = k.queue[1:]
	}
	k.m[jti] = keyEntry{key: key, exp: exp}
	k.queue = append(k.queue, jti)
}

func (k *sessionKeys) get(jti string, now time.Time) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.m[jti]
	if !ok || !now.Before(e.exp) {
		return nil, false
	}
	return append([]byte(nil), e.key...), true
}
