//go:build !js

package pairing

// The server's side of the login (ServerKey, Verifier, ServerSession) and of its key
// (VerifyServerShare): public verification with gnark-crypto, which the browser client
// (GOOS=js) has no use for and leaves out.

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	bls "github.com/consensys/gnark-crypto/ecc/bls12-381"
)

// A ServerKey is the domain's combined server secret sQ with the G2 lines of Q and sQ
// precomputed for fast pairings. It is safe for concurrent use: gnark-crypto's
// fixed-argument Miller loop overwrites the lines it is given, so every use works on
// a copy of the pristine lines kept here (≈24 KB per point).
type ServerKey struct {
	linesQ, linesSQ [2][len(bls.LoopCounter) - 1]bls.LineEvaluationAff
	pairings        atomic.Uint64 // see Pairings
	// decoyV, decoyP = r1·P1, r2·P1 for random r1, r2: a pair that fails the pass-2
	// equation (unless r1 = −s·r2), standing in for a rejected item of a batch.
	decoyV, decoyP bls.G1Affine
}

// Pairings returns how many pairing computations (a Miller loop and a final
// exponentiation: the 2-pairing check of pass 2, or the key pairing e(P, sQ)) have
// run with this key. It counts work, for tests and monitoring: every pass 2 checked
// by Finish or Reject costs exactly two, whether it verifies or not.
func (k *ServerKey) Pairings() uint64 { return k.pairings.Load() }

// NewServerKey prepares sQ for verification. It rejects the identity.
func NewServerKey(sQ *G2) (*ServerKey, error) {
	if sQ.IsIdentity() {
		return nil, ErrIdentity
	}
	r1, err := RandomScalar(nil)
	if err != nil {
		return nil, err
	}
	r2, err := RandomScalar(nil)
	if err != nil {
		return nil, err
	}
	return &ServerKey{
		linesQ:  bls.PrecomputeLines(G2Generator().affine()),
		linesSQ: bls.PrecomputeLines(sQ.affine()),
		decoyV:  G1Generator().mulVarTime(r1).affine(),
		decoyP:  G1Generator().mulVarTime(r2).affine(),
	}, nil
}

// checkEquation reports whether e(V, Q)·e(P, sQ) = 1. It refuses the identity
// explicitly: gnark-crypto treats it as neutral, so V = P = identity would pass.
func (k *ServerKey) checkEquation(v, p *bls.G1Affine) bool {
	if v.IsInfinity() || p.IsInfinity() {
		return false
	}
	k.pairings.Add(1)
	ok, err := bls.PairingCheckFixedQ([]bls.G1Affine{*v, *p},
		[][2][len(bls.LoopCounter) - 1]bls.LineEvaluationAff{k.linesQ, k.linesSQ})
	return err == nil && ok
}

// pairSQ returns the encoding of e(P, sQ).
func (k *ServerKey) pairSQ(p *bls.G1Affine) []byte {
	k.pairings.Add(1)
	gt, err := bls.PairFixedQ([]bls.G1Affine{*p}, [][2][len(bls.LoopCounter) - 1]bls.LineEvaluationAff{k.linesSQ})
	if err != nil {
		panic("pairing: " + err.Error()) // unreachable: one point, one set of lines
	}
	b := gt.Bytes()
	return b[:]
}

// A Verifier is the server side of the login protocol for one domain.
type Verifier struct {
	Domain Domain
	Key    *ServerKey
	// Grace is how long after a slot boundary the previous slot's permit is still
	// accepted (default 5 minutes when zero).
	Grace time.Duration
	// Points, when set, caches the login points A' (see LoginPoints); a Verifier
	// without it hashes them at every challenge.
	Points *LoginPoints
}

// AcceptSlot reports whether a login with permit slot k is acceptable at now: the
// current slot, or the previous one within Grace of the boundary.
func (v *Verifier) AcceptSlot(k uint64, now time.Time) bool {
	if v.Domain.PermitPeriod == 0 {
		return k == 0
	}
	cur := v.Domain.Slot(now)
	if k == cur {
		return true
	}
	grace := v.Grace
	if grace == 0 {
		grace = 5 * time.Minute
	}
	boundary := time.Unix(int64(cur*v.Domain.PermitPeriod), 0)
	return cur > 0 && k == cur-1 && now.Sub(boundary) < grace
}

// A ServerSession is one login in progress on the server side: it is single-use.
// Everything that does not depend on pass 2 is computed when it is created, so that
// checking pass 2 costs one decoding and one 2-pairing. It keeps no copy of the
// messages, only the transcript's first fields and the points pass 2 needs.
type ServerSession struct {
	key       *ServerKey
	sid       [SessionIDSize]byte
	prefix    []byte       // the transcript up to the ciphertext (9.4)
	aPrime    bls.G1Affine // A'
	z         bls.G1Affine // Z
	p         bls.G1Affine // U + y·A'
	ss        []byte       // the hybrid shared secret
	used      atomic.Bool
	verifiedV []byte
}

// Challenge answers pass 1 at time now. The caller keeps the returned session (by its
// ID) for at most 30 s and uses it once.
func (v *Verifier) Challenge(rand io.Reader, p1 *Pass1, now time.Time) (*ServerSession, *Challenge, error) {
	if p1 == nil {
		return nil, nil, fmt.Errorf("pairing: incomplete pass 1")
	}
	if !v.AcceptSlot(p1.Slot, now) {
		return nil, nil, ErrPermitSlot
	}
	y, err := RandomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	var sid [SessionIDSize]byte
	if _, err := io.ReadFull(randOrDefault(rand), sid[:]); err != nil {
		return nil, nil, fmt.Errorf("pairing: reading randomness: %w", err)
	}
	e, err := newEncapsulator(rand)
	if err != nil {
		return nil, nil, err
	}
	return v.challenge(p1, sid, y, e)
}

func (v *Verifier) challenge(p1 *Pass1, sid [SessionIDSize]byte, y *Scalar, e *encapsulator) (*ServerSession, *Challenge, error) {
	if p1 == nil || p1.U == nil || p1.Z == nil || p1.KEM == nil {
		return nil, nil, fmt.Errorf("pairing: incomplete pass 1")
	}
	if p1.U.IsIdentity() || p1.Z.IsIdentity() {
		return nil, nil, ErrIdentity
	}
	ss, ct, err := e.run(p1.KEM)
	if err != nil {
		return nil, nil, err
	}
	ch := &Challenge{SessionID: sid, Y: y, KEM: ct}
	s := &ServerSession{key: v.Key, sid: sid, prefix: transcriptPrefix(v.Domain, p1, ch), ss: ss}
	s.aPrime = v.loginPoint(p1.IDHash, p1.Slot)
	s.z = p1.Z.affine()
	aPrime := G1{pub: s.aPrime}
	s.p = p1.U.addVarTime(aPrime.mulVarTime(y)).affine()
	return s, ch, nil
}

// ID returns the session ID that pass 2 must carry.
func (s *ServerSession) ID() [SessionIDSize]byte { return s.sid }

// sessionStateHead is the fixed part of a session state: sid ‖ ss ‖ A' ‖ Z ‖ P.
const sessionStateHead = SessionIDSize + SharedSecretSize + 3*G1Size

// MarshalBinary returns the state of an unused session, for a store that replicas
// share: sid ‖ ss ‖ enc(A') ‖ enc(Z) ‖ enc(P) ‖ the transcript up to the ciphertext.
// It holds the session's shared secret ss: seal it (encrypt and authenticate) before
// it leaves the process. A challenge cannot be made again from the randomness it was
// drawn from (the ML-KEM encapsulation draws its own), so this state is what a replica
// needs to check pass 2. Verifier.RestoreSession reads it back.
func (s *ServerSession) MarshalBinary() ([]byte, error) {
	if s.used.Load() {
		return nil, ErrSessionUsed
	}
	b := make([]byte, 0, sessionStateHead+len(s.prefix))
	b = append(b, s.sid[:]...)
	b = append(b, s.ss...)
	for _, p := range []*bls.G1Affine{&s.aPrime, &s.z, &s.p} {
		e := p.Bytes()
		b = append(b, e[:]...)
	}
	return append(b, s.prefix...), nil
}

// RestoreSession rebuilds a session of v from the state ServerSession.MarshalBinary
// returned, on any replica with the same domain and server key. It checks the encoding
// (the points as DecodeG1 does) and that the state belongs to v's domain and permit
// period (a renewal's session does not restore as a login's); it cannot tell whether
// the session was used: single use across replicas is the store's job.
func (v *Verifier) RestoreSession(b []byte) (*ServerSession, error) {
	if len(b) < sessionStateHead {
		return nil, fmt.Errorf("%w: session state is %d bytes", ErrLength, len(b))
	}
	s := &ServerSession{key: v.Key}
	copy(s.sid[:], b)
	s.ss = append([]byte(nil), b[SessionIDSize:SessionIDSize+SharedSecretSize]...)
	off := SessionIDSize + SharedSecretSize
	for _, p := range []*bls.G1Affine{&s.aPrime, &s.z, &s.p} {
		q, err := DecodeG1(b[off : off+G1Size])
		if err != nil {
			return nil, fmt.Errorf("session state: %w", err)
		}
		*p = q.affine()
		off += G1Size
	}
	s.prefix = append([]byte(nil), b[off:]...)
	if head := lp([]byte(LoginVersion), []byte(v.Domain.Name), u64(v.Domain.PermitPeriod)); !bytes.HasPrefix(s.prefix, head) {
		return nil, fmt.Errorf("pairing: session state of another domain, period or login version")
	}
	return s, nil
}

// Verify checks the pairing equation of pass 2, e(V, Q)·e(U + y·A', sQ) = 1. It uses
// the session up: a second call fails with ErrSessionUsed. On success, Confirm derives
// the key. Use VerifyBatch instead to check many sessions at once. Verify alone does
// less work on failure than Verify and Confirm on success; a server that answers each
// login by itself uses Finish and Reject, whose work does not depend on the outcome.
func (s *ServerSession) Verify(p2 *Pass2) error {
	if err := s.take(p2); err != nil {
		return err
	}
	v := p2.V.affine()
	if !s.key.checkEquation(&v, &s.p) {
		return ErrAuthFailed
	}
	s.verifiedV = p2.V.Bytes()
	return nil
}

// take marks the session used and checks that p2 belongs to it.
func (s *ServerSession) take(p2 *Pass2) error {
	if !s.used.CompareAndSwap(false, true) {
		return ErrSessionUsed
	}
	if p2 == nil || p2.V == nil || p2.SessionID != s.sid {
		return ErrAuthFailed
	}
	return nil
}

// Confirm derives the session key after Verify (or VerifyBatch) accepted p2, checks
// the client's tag, and returns the server's tag and the session key. binding is the
// channel binding of the connection that carried pass 2. ErrChannelBinding means the
// token and PIN were right but the two sides saw different channels.
func (s *ServerSession) Confirm(p2 *Pass2, binding []byte) (*Finish, []byte, error) {
	if s.verifiedV == nil || p2 == nil || p2.V == nil || !hmac.Equal(s.verifiedV, p2.V.Bytes()) {
		return nil, nil, fmt.Errorf("pairing: Confirm of an unverified pass 2")
	}
	s.verifiedV = nil // one confirmation per session
	f, key, tagOK := s.derive(p2, binding)
	if !tagOK {
		return nil, nil, ErrChannelBinding
	}
	return f, key, nil
}

// Finish checks pass 2 and confirms the key: Verify followed by Confirm, except that
// the work of both is done whatever the outcome. When the pairing equation fails, the
// key pairing e(Z + h·A', sQ), the HKDF and the tag comparison are still computed on
// the session's own points, and their results dropped: a wrong PIN costs what a right
// one costs (two pairings), so the time of the answer says nothing about the PIN.
// Checks that need no secret (a used session, a pass 2 of another session) fail early.
func (s *ServerSession) Finish(p2 *Pass2, binding []byte) (*Finish, []byte, error) {
	if err := s.take(p2); err != nil {
		return nil, nil, err
	}
	v := p2.V.affine()
	ok := s.key.checkEquation(&v, &s.p)
	f, key, tagOK := s.derive(p2, binding) // also when !ok: the same work either way
	switch {
	case !ok:
		return nil, nil, ErrAuthFailed
	case !tagOK:
		return nil, nil, ErrChannelBinding
	}
	return f, key, nil
}

// Conclude ends a session whose pass 2 went through VerifyBatch, given the batch's
// result for it (verified). Like Finish, it runs the key schedule whatever that
// result, so a pass 2 that failed costs what a verified one costs; it returns
// verified when it is an error, ErrChannelBinding when the client's tag does not
// match, and the server's Finish and the session key otherwise.
func (s *ServerSession) Conclude(p2 *Pass2, binding []byte, verified error) (*Finish, []byte, error) {
	if errors.Is(verified, ErrSessionUsed) || p2 == nil || p2.V == nil {
		if verified == nil {
			verified = ErrAuthFailed
		}
		return nil, nil, verified // early: nothing secret decides these
	}
	if verified == nil && (s.verifiedV == nil || !hmac.Equal(s.verifiedV, p2.V.Bytes())) {
		return nil, nil, fmt.Errorf("pairing: Conclude of an unverified pass 2")
	}
	s.verifiedV = nil
	f, key, tagOK := s.derive(p2, binding) // also on failure: the same work either way
	switch {
	case verified != nil:
		return nil, nil, verified
	case !tagOK:
		return nil, nil, ErrChannelBinding
	}
	return f, key, nil
}

// Reject does the work of Finish on p2 and fails whatever p2 holds: ErrSessionUsed
// for a used session, ErrAuthFailed otherwise, and never a key. A server calls it for
// a login it must refuse anyway (a blocked, revoked, expired or unknown identity), so
// that the refusal costs what the check of a wrong PIN costs, and the right PIN is not
// told apart from a wrong one by the time of the answer.
func (s *ServerSession) Reject(p2 *Pass2, binding []byte) error {
	if _, _, err := s.Finish(p2, binding); errors.Is(err, ErrSessionUsed) {
		return err
	}
	return ErrAuthFailed
}

// derive is the key schedule of pass 2: h from the transcript, prk from the key
// pairing e(Z + h·A', sQ), the hybrid shared secret and the transcript, then the
// server's tag and the session key; tagOK reports whether the client's tag matches
// (in constant time).
func (s *ServerSession) derive(p2 *Pass2, binding []byte) (f *Finish, key []byte, tagOK bool) {
	t := append(append(s.prefix[:len(s.prefix):len(s.prefix)], lp(p2.V.Bytes())...), lp(binding)...)
	h := HashToScalar(t, []byte(DSTLogin))
	var zh bls.G1Affine // Z + h·A'
	zh.ScalarMultiplication(&s.aPrime, h.bigInt())
	zh.Add(&zh, &s.z)
	prk := extractKey(s.key.pairSQ(&zh), s.ss, t)
	tagOK = hmac.Equal(p2.Tag[:], expandKey(prk, labelClientTag))
	f = &Finish{}
	copy(f.Tag[:], expandKey(prk, labelServerTag))
	return f, expandKey(prk, labelSessionKey), tagOK
}

// VerifyServerShare checks a server share s_i·Q against the DTA's published commitment
// C_i = s_i·P1: e(C_i, Q) = e(P1, s_i·Q).
func VerifyServerShare(commitment *G1, share *G2) error {
	if commitment.IsIdentity() || share.IsIdentity() {
		return ErrIdentity
	}
	c, q := commitment.affine(), G2Generator().affine()
	c.Neg(&c)
	p1, s := G1Generator().affine(), share.affine()
	ok, err := bls.PairingCheck([]bls.G1Affine{c, p1}, []bls.G2Affine{q, s})
	if err != nil || !ok {
		return ErrInvalidShare
	}
	return nil
}
