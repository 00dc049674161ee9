package server

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// storeSuiteTTL is the login session TTL of the stores under test.
const storeSuiteTTL = 30 * time.Second

// openReplicas opens two handles of one fresh store, as two replicas would: for a
// store of one process (bbolt) both are the same handle.
type openReplicas func(t *testing.T) (a, b stateStore)

func openBoltReplicas(t *testing.T) (stateStore, stateStore) {
	st, err := openStore(filepath.Join(t.TempDir(), "server.db"), storeSuiteTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.close() })
	return st, st
}

func TestStoreBolt(t *testing.T) { runStoreSuite(t, openBoltReplicas) }

// runStoreSuite is the contract of a stateStore: every implementation passes it.
func runStoreSuite(t *testing.T, open openReplicas) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b stateStore)
	}{
		{"Enrolments", suiteEnrolments},
		{"ListEnrolments", suiteListEnrolments},
		{"RevokeVisibleAtOnce", suiteRevoke},
		{"RevokedTokens", suiteRevokedTokens},
		{"CodeSingleUse", suiteCodeSingleUse},
		{"CodeProofAndExpiry", suiteCodeProofAndExpiry},
		{"FailuresExactUnderConcurrency", suiteFailuresConcurrent},
		{"LockoutExact", suiteLockoutExact},
		{"DecoyRecord", suiteDecoy},
		{"DecoyWrite", suiteDecoyWrite},
		{"TrySlotsShared", suiteTrySlots},
		{"TrySlotsFreshTriesLeft", suiteTrySlotsFresh},
		{"AdmitFreshTriesLeft", suiteAdmitFresh},
		{"SessionSingleUse", suiteSessions},
		{"OIDCState", suiteOIDC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.run(t, a, b)
		})
	}
}

// suiteTime is a time every store keeps exactly (failure records keep seconds).
func suiteTime() time.Time { return time.Now().Truncate(time.Second) }

func randomIDHash(t *testing.T) pairing.IDHash {
	t.Helper()
	var id pairing.IDHash
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	return id
}

func suiteEnrol(t *testing.T, st stateStore, appID, code string, now time.Time) pairing.IDHash {
	t.Helper()
	id := randomIDHash(t)
	e := &enrolment{ID: appID, Salt: []byte("salt"), PermitDays: 7, Created: now}
	if err := st.createEnrolment(id, e, code, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return id
}

func suiteEnrolments(t *testing.T, a, b stateStore) {
	now := suiteTime()
	na := now.Add(time.Hour)
	id := randomIDHash(t)
	want := &enrolment{ID: "alice", Salt: []byte{1, 2}, Device: true, NotAfter: &na, PermitDays: 3, Created: now}
	if err := a.createEnrolment(id, want, "CODE1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := b.enrolment(id)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != want.ID || !bytes.Equal(got.Salt, want.Salt) || !got.Device || !got.NotAfter.Equal(na) ||
		got.PermitDays != 3 || !got.Created.Equal(now) || got.Revoked != nil || got.ClientKey != nil {
		t.Fatalf("enrolment read back as %+v, want %+v", got, want)
	}
	if _, err := b.enrolment(randomIDHash(t)); !errors.Is(err, errNotFound) {
		t.Fatalf("unknown idhash: %v, want errNotFound", err)
	}
	second := suiteEnrol(t, b, "alice", "CODE2", now)
	suiteEnrol(t, a, "alicia", "CODE3", now)
	ids, err := a.enrolmentsOf("alice")
	wantIDs := []pairing.IDHash{id, second}
	slices.SortFunc(wantIDs, func(x, y pairing.IDHash) int { return bytes.Compare(x[:], y[:]) })
	if err != nil || !slices.Equal(ids, wantIDs) {
		t.Fatalf("enrolmentsOf(alice) = %x, %v; want %x", ids, err, wantIDs)
	}
	if _, err := a.enrolmentsOf("ali"); !errors.Is(err, errNotFound) {
		t.Fatalf("a prefix of an ID: %v, want errNotFound", err)
	}
	for _, id := range []string{"ali\x00ce", "ali\xffce"} { // PostgreSQL's text cannot hold them
		if _, err := a.enrolmentsOf(id); !errors.Is(err, errNotFound) {
			t.Fatalf("enrolmentsOf(%q): %v, want errNotFound", id, err)
		}
	}
}

func suiteListEnrolments(t *testing.T, a, b stateStore) {
	now := suiteTime()
	var ids []pairing.IDHash
	for i := range 7 {
		ids = append(ids, suiteEnrol(t, a, fmt.Sprint("user", i), fmt.Sprint("CODE", i), now))
	}
	slices.SortFunc(ids, func(x, y pairing.IDHash) int { return bytes.Compare(x[:], y[:]) })
	if _, err := a.updateFailures(ids[2][:], func(failRecord) failRecord { return failRecord{Count: 2} }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.updateFailures(decoyKeyAt(0), func(failRecord) failRecord { return failRecord{Count: 9} }); err != nil {
		t.Fatal(err)
	}
	var got []pairing.IDHash
	var after []byte
	for {
		page, err := b.listEnrolments(after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page {
			got = append(got, l.id)
			if want := map[bool]int{true: 2}[l.id == ids[2]]; l.fails.Count != want || l.e == nil {
				t.Fatalf("%x listed with %+v, count %d, want %d", l.id, l.e, l.fails.Count, want)
			}
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].id[:]
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("listed %x, want %x", got, ids)
	}
}

func suiteRevoke(t *testing.T, a, b stateStore) {
	now := suiteTime()
	id := suiteEnrol(t, a, "bob", "CODE", now)
	if err := a.revoke(id, now); err != nil {
		t.Fatal(err)
	}
	e, err := b.enrolment(id)
	if err != nil || e.Revoked == nil || !e.Revoked.Equal(now) || e.usable(now) {
		t.Fatalf("the other replica reads %+v, %v: not revoked at once", e, err)
	}
	if err := b.revoke(id, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e, _ := a.enrolment(id); !e.Revoked.Equal(now) {
		t.Fatalf("a second revocation moved the time to %v", e.Revoked)
	}
	if err := a.revoke(randomIDHash(t), now); !errors.Is(err, errNotFound) {
		t.Fatalf("revoking an unknown idhash: %v", err)
	}
}

// suiteRevokedTokens: a jti revoked on one replica is revoked on the other at once;
// a second revocation keeps the later end; pruning deletes exactly the ended ones.
func suiteRevokedTokens(t *testing.T, a, b stateStore) {
	now := suiteTime()
	revoked := func(t *testing.T, st stateStore, jti string) bool {
		t.Helper()
		r, err := st.tokenRevoked(jti)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	prune := func(t *testing.T, st stateStore, at time.Time) int {
		t.Helper()
		n, err := st.pruneRevokedTokens(at)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Run("ok/revoked-jti", func(t *testing.T) {
		if revoked(t, b, "jti-a") {
			t.Fatal("a jti never revoked reads as revoked")
		}
		if err := a.revokeToken("jti-a", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if !revoked(t, b, "jti-a") || !revoked(t, a, "jti-a") {
			t.Fatal("a revoked jti does not read as revoked on both replicas")
		}
		if revoked(t, b, "jti-") || revoked(t, b, "jti-aa") || revoked(t, b, "JTI-A") {
			t.Fatal("another jti reads as revoked")
		}
	})
	t.Run("ok/revoke-again-keeps-later-end", func(t *testing.T) {
		if err := b.revokeToken("jti-b", now.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := a.revokeToken("jti-b", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := prune(t, a, now.Add(90*time.Minute)); n != 1 || !revoked(t, b, "jti-b") || revoked(t, b, "jti-a") {
			t.Fatalf("after pruning at +90 min (%d pruned): jti-b must stay (its later end), jti-a go", n)
		}
		if err := a.revokeToken("jti-b", now.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n := prune(t, b, now.Add(150*time.Minute)); n != 0 || !revoked(t, a, "jti-b") {
			t.Fatalf("a third revocation did not extend the end (%d pruned)", n)
		}
	})
	t.Run("ok/prune-at-end", func(t *testing.T) {
		for i := range 3 {
			if err := a.revokeToken(fmt.Sprint("jti-p", i), now.Add(time.Duration(i+4)*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if n := prune(t, b, now.Add(4*time.Hour-time.Second)); n != 1 { // jti-b (+3 h)
			t.Fatalf("pruned %d before any of the three ended, want 1 (jti-b)", n)
		}
		if n := prune(t, b, now.Add(5*time.Hour)); n != 2 || revoked(t, a, "jti-p0") || revoked(t, a, "jti-p1") || !revoked(t, a, "jti-p2") {
			t.Fatalf("pruning at the end of two: %d pruned", n)
		}
	})
	t.Run("fail/unknown-jti", func(t *testing.T) {
		if revoked(t, a, "never-revoked") || revoked(t, b, "") {
			t.Fatal("an unknown jti reads as revoked")
		}
	})
}

// suiteRedeem is a redemption of code for a fresh client key.
func suiteRedeem(code, domain string) *wire.RedeemRequest {
	codeID, key := wire.CodeSecrets(code)
	ck := make([]byte, 32)
	rand.Read(ck)
	return &wire.RedeemRequest{CodeID: codeID[:], ClientKey: ck, Proof: wire.CodeProof(key, domain, ck, nil)}
}

func suiteCodeSingleUse(t *testing.T, a, b stateStore) {
	now := suiteTime()
	id := suiteEnrol(t, a, "carol", "CODE", now)
	_, codeKey := wire.CodeSecrets("CODE")
	answer := func(got pairing.IDHash, e *enrolment, proofKey [32]byte) (any, time.Time, error) {
		if got != id || proofKey != codeKey {
			return nil, time.Time{}, fmt.Errorf("answer for %x with another proof key, want %x", got, id)
		}
		return map[string]string{"key": fmt.Sprintf("%x", e.ClientKey)}, now.Add(time.Hour), nil
	}
	// Many clients race for the code, on both replicas: one wins.
	reqs := make([]*wire.RedeemRequest, 16)
	var wins atomic.Int32
	var winner atomic.Int32
	var wg sync.WaitGroup
	for i := range reqs {
		reqs[i] = suiteRedeem("CODE", "example.com")
		st := []stateStore{a, b}[i%2]
		wg.Go(func() {
			_, _, err := st.redeem(reqs[i], "example.com", now, answer)
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(int32(i))
			case !errors.Is(err, errNotFound):
				t.Errorf("redeem %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d redemptions of one code succeeded", wins.Load())
	}
	w := reqs[winner.Load()]
	e, first, err := b.redeem(w, "example.com", now, answer)
	if err != nil || !bytes.Equal(e.ClientKey, w.ClientKey) {
		t.Fatalf("the winner's request again: %v, key %x", err, e.ClientKey)
	}
	_, again, err := a.redeem(w, "example.com", now, answer)
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("the same request gets %s then %s (%v)", first, again, err)
	}
	if got, _ := a.enrolment(id); !bytes.Equal(got.ClientKey, w.ClientKey) {
		t.Fatalf("the enrolment holds key %x, want the winner's", got.ClientKey)
	}
	// The used code is kept until its answer expires, then pruned.
	if n, err := b.pruneCodes(now.Add(30 * time.Minute)); err != nil || n != 0 {
		t.Fatalf("pruned %d (%v) before the answer expired", n, err)
	}
	if n, err := a.pruneCodes(now.Add(2 * time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want the used code", n, err)
	}
	if _, _, err := b.redeem(w, "example.com", now, answer); !errors.Is(err, errNotFound) {
		t.Fatalf("a pruned code: %v", err)
	}
}

func suiteCodeProofAndExpiry(t *testing.T, a, b stateStore) {
	now := suiteTime()
	suiteEnrol(t, a, "dave", "CODE", now)
	answer := func(pairing.IDHash, *enrolment, [32]byte) (any, time.Time, error) {
		return "ok", now.Add(time.Hour), nil
	}
	req := suiteRedeem("CODE", "example.com")
	req.ClientKey = bytes.Repeat([]byte{7}, 32) // replaced in transit
	if _, _, err := b.redeem(req, "example.com", now, answer); !errors.Is(err, errCodeProof) {
		t.Fatalf("a replaced key: %v, want errCodeProof", err)
	}
	// The answer failing leaves the code as it was.
	fail := func(pairing.IDHash, *enrolment, [32]byte) (any, time.Time, error) {
		return nil, time.Time{}, errors.New("no")
	}
	if _, _, err := a.redeem(suiteRedeem("CODE", "example.com"), "example.com", now, fail); err == nil {
		t.Fatal("a failing answer redeemed the code")
	}
	if _, _, err := a.redeem(suiteRedeem("CODE", "example.com"), "example.com", now.Add(2*time.Hour), answer); !errors.Is(err, errNotFound) {
		t.Fatalf("an expired code: %v, want errNotFound", err)
	}
	if _, _, err := b.redeem(suiteRedeem("NOPE", "example.com"), "example.com", now, answer); !errors.Is(err, errNotFound) {
		t.Fatalf("an unknown code: %v, want errNotFound", err)
	}
}

// suiteFailuresConcurrent: failures counted by many goroutines on two replicas at once
// are all counted, in both counts.
func suiteFailuresConcurrent(t *testing.T, a, b stateStore) {
	now := suiteTime()
	id := suiteEnrol(t, a, "erin", "CODE", now)
	const n = 64
	fa, fb := newFailures(1000, 1000, a), newFailures(1000, 1000, b)
	var wg sync.WaitGroup
	for i := range n {
		f := []*failures{fa, fb}[i%2]
		wg.Go(func() {
			ok, err := f.admit(t.Context(), id, true, now)
			if err != nil || !ok {
				t.Errorf("admit: %v %v", ok, err)
			}
			if _, err := f.done(id, true, ok, outcomeFailure, now); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, st := range []stateStore{a, b} {
		r, err := st.failures(id[:])
		if err != nil || r.Count != n || r.Day != n || !r.DayStart.Equal(now) || r.Held {
			t.Fatalf("after %d concurrent failures: %+v, %v", n, r, err)
		}
	}
	// A success resets the consecutive count only.
	v, err := fb.done(id, true, true, outcomeSuccess, now)
	if err != nil || !v.ok {
		t.Fatalf("success: %+v %v", v, err)
	}
	if r, _ := a.failures(id[:]); r.Count != 0 || r.Day != n {
		t.Fatalf("after a success: %+v", r)
	}
}

// suiteLockoutExact: with logins racing on two replicas, exactly max failures block
// the identity on both, and the right PIN then fails there and is counted.
func suiteLockoutExact(t *testing.T, a, b stateStore) {
	now := suiteTime()
	id := suiteEnrol(t, a, "frank", "CODE", now)
	const max, perDay = 3, 10
	fa, fb := newFailures(max, perDay, a), newFailures(max, perDay, b)
	var admitted, exceeded atomic.Int32
	var inFlight, mostInFlight atomic.Int32 // on both replicas together
	var wg sync.WaitGroup
	for i := range 32 {
		f := []*failures{fa, fb}[i%2]
		wg.Go(func() {
			ok, err := f.admit(t.Context(), id, true, now)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				admitted.Add(1)
				n := inFlight.Add(1)
				for m := mostInFlight.Load(); n > m && !mostInFlight.CompareAndSwap(m, n); m = mostInFlight.Load() {
				}
				inFlight.Add(-1) // before done, which lets the next one in
			}
			v, err := f.done(id, true, ok, outcomeFailure, now)
			if err != nil {
				t.Error(err)
			}
			if v.exceeded {
				exceeded.Add(1)
			}
		})
	}
	wg.Wait()
	r, err := b.failures(id[:])
	if err != nil || r.Count != 32 || r.Day != 32 || !r.Held {
		t.Fatalf("after 32 failures: %+v %v", r, err)
	}
	if exceeded.Load() != 1 {
		t.Fatalf("the daily budget was used up %d times, want once", exceeded.Load())
	}
	// The replicas together admit at most max at once (the store's slots). Over the
	// run they may admit more (one that read the count before another's failure was
	// written); done() refuses every one of them once the identity is blocked, so no
	// guess gains by it.
	if m := mostInFlight.Load(); m > max {
		t.Fatalf("%d verifications in flight at once on the two replicas, want at most %d", m, max)
	}
	if n := admitted.Load(); n < max {
		t.Fatalf("%d of 32 verifications admitted, want at least %d", n, max)
	}
	for _, f := range []*failures{fa, fb} {
		if ok, err := f.admit(t.Context(), id, true, now); ok || err != nil {
			t.Fatalf("a blocked identity admitted: %v %v", ok, err)
		}
		if v, err := f.done(id, true, false, outcomeSuccess, now); err != nil || v.ok || v.tries != 0 {
			t.Fatalf("the right PIN of a blocked identity: %+v %v", v, err)
		}
	}
	if r, _ := a.failures(id[:]); r.Count != 34 {
		t.Fatalf("blocked logins not counted: %+v", r)
	}
	if was, err := fb.reset(id, now); !was || err != nil {
		t.Fatalf("reset of a blocked identity: was blocked %v, %v", was, err)
	}
	if ok, err := fa.admit(t.Context(), id, true, now); !ok || err != nil {
		t.Fatalf("unblocked on one replica, still blocked on the other: %v %v", ok, err)
	}
	if v, err := fa.done(id, true, true, outcomeSuccess, now); !v.ok || err != nil || v.tries != max {
		t.Fatalf("success after unblock: %+v %v", v, err)
	}
}

// suiteDecoy: the decoy record takes writes like any other and is never an enrolment.
func suiteDecoy(t *testing.T, a, b stateStore) {
	now := suiteTime()
	rec := failRecord{Count: 1, Day: 1, DayStart: now.Truncate(time.Second)}
	if _, err := a.updateFailures(decoyKeyAt(0), func(failRecord) failRecord { return rec }); err != nil {
		t.Fatal(err)
	}
	if got, err := b.failures(decoyKeyAt(0)); err != nil || got != rec {
		t.Fatalf("decoy record %+v %v, want %+v", got, err, rec)
	}
	if page, err := b.listEnrolments(nil, 10); err != nil || len(page) != 0 {
		t.Fatalf("listing: %v %v", page, err)
	}
	if _, err := b.updateFailures(decoyKeyAt(0), func(failRecord) failRecord { return failRecord{} }); err != nil {
		t.Fatal(err)
	}
	if got, err := a.failures(decoyKeyAt(0)); err != nil || got != (failRecord{}) {
		t.Fatalf("an empty record is deleted: %+v %v", got, err)
	}
}

// suiteVerifiers are the verifiers of the suite's login sessions (for logins and for
// renewals: the same here).
func suiteVerifiers(t *testing.T) (login, renewals *pairing.Verifier) {
	t.Helper()
	key, err := pairing.NewServerKey(pairing.G2Generator())
	if err != nil {
		t.Fatal(err)
	}
	v := &pairing.Verifier{Domain: pairing.Domain{Name: "example.com"}, Key: key}
	return v, v
}

// suiteSession makes a login session created at now, as Server.start does.
func suiteSession(t *testing.T, now time.Time, renew bool) *pending {
	t.Helper()
	v, _ := suiteVerifiers(t)
	id := randomIDHash(t)
	p1 := &pairing.Pass1{IDHash: id, U: pairing.G1Generator(), Z: pairing.G1Generator(), KEM: testKeyShare(t)}
	sess, _, err := v.Challenge(rand.Reader, p1, now)
	if err != nil {
		t.Fatal(err)
	}
	state, err := sess.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &pending{sess: sess, idhash: id, created: now, renew: renew, days: 5, state: state}
}

func suiteSessions(t *testing.T, a, b stateStore) {
	now := suiteTime()
	p := suiteSession(t, now, true)
	if err := a.putSession(p); err != nil {
		t.Fatal(err)
	}
	// Takes race on both replicas: one gets the session.
	var got atomic.Pointer[pending]
	var n atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		st := []stateStore{a, b}[i%2]
		wg.Go(func() {
			q, err := st.takeSession(p.sess.ID(), now.Add(time.Second))
			if err != nil {
				t.Error(err)
			}
			if q != nil {
				n.Add(1)
				got.Store(q)
			}
		})
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Fatalf("a session was taken %d times", n.Load())
	}
	q := got.Load()
	if q.sess.ID() != p.sess.ID() || q.idhash != p.idhash || !q.created.Equal(now) || !q.renew || q.days != 5 {
		t.Fatalf("taken %+v, put %+v", q, p)
	}
	// Pass 1 on one replica, pass 2 on the other.
	other := suiteSession(t, now, false)
	if err := a.putSession(other); err != nil {
		t.Fatal(err)
	}
	if q, err := b.takeSession(other.sess.ID(), now.Add(time.Second)); err != nil || q == nil || q.idhash != other.idhash || q.renew {
		t.Fatalf("taken on the other replica: %+v %v", q, err)
	}
	if q, err := a.takeSession(other.sess.ID(), now.Add(time.Second)); q != nil || err != nil {
		t.Fatalf("taken twice: %v %v", q, err)
	}
	// An expired session is not given out.
	old := suiteSession(t, now, false)
	if err := b.putSession(old); err != nil {
		t.Fatal(err)
	}
	if q, err := a.takeSession(old.sess.ID(), now.Add(storeSuiteTTL)); q != nil || err != nil {
		t.Fatalf("an expired session: %v %v", q, err)
	}
	var unknown [pairing.SessionIDSize]byte
	if q, err := b.takeSession(unknown, now); q != nil || err != nil {
		t.Fatalf("an unknown session: %v %v", q, err)
	}
}

// suiteOIDC: the OpenID Provider's entries are shared by replicas, created once, taken
// once under concurrency, absent once expired, and pruned.
func suiteOIDC(t *testing.T, a, b stateStore) {
	now := suiteTime()
	get := func(t *testing.T, st stateStore, key string, at time.Time) string {
		t.Helper()
		v, err := st.GetOIDC(key, at)
		if errors.Is(err, oidcop.ErrNotFound) {
			return "<absent>"
		} else if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	t.Run("ok/create-visible-on-both", func(t *testing.T) {
		if err := a.CreateOIDC("code/1", []byte("one"), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		if got := get(t, b, "code/1", now); got != "one" {
			t.Fatalf("replica b reads %q", got)
		}
	})
	t.Run("fail/create-twice", func(t *testing.T) {
		if err := b.CreateOIDC("code/1", []byte("two"), now.Add(time.Minute), now); !errors.Is(err, oidcop.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		if got := get(t, a, "code/1", now); got != "one" {
			t.Fatalf("a refused create changed the value to %q", got)
		}
	})
	t.Run("ok/create-over-expired", func(t *testing.T) {
		if err := a.CreateOIDC("code/x", []byte("old"), now.Add(time.Second), now); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateOIDC("code/x", []byte("new"), now.Add(time.Minute), now.Add(2*time.Second)); err != nil {
			t.Fatalf("create over an expired entry: %v", err)
		}
		if got := get(t, a, "code/x", now.Add(2*time.Second)); got != "new" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("ok/put-replaces", func(t *testing.T) {
		for _, v := range []string{"first", "second"} {
			if err := a.PutOIDC("logout/u", []byte(v), now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if got := get(t, b, "logout/u", now); got != "second" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("fail/key-postgresql-text-cannot-hold", func(t *testing.T) {
		for _, key := range []string{"code/a\x00b", "code/\xff\xfe"} {
			if _, err := b.GetOIDC(key, now); !errors.Is(err, oidcop.ErrNotFound) {
				t.Fatalf("GetOIDC(%q): %v, want not found", key, err)
			}
			if _, err := b.TakeOIDC(key, now); !errors.Is(err, oidcop.ErrNotFound) {
				t.Fatalf("TakeOIDC(%q): %v, want not found", key, err)
			}
		}
	})
	t.Run("fail/expired-absent", func(t *testing.T) {
		if got := get(t, b, "code/1", now.Add(time.Minute)); got != "<absent>" {
			t.Fatalf("an entry at its expiry reads %q", got)
		}
		if _, err := b.TakeOIDC("code/1", now.Add(time.Minute)); !errors.Is(err, oidcop.ErrNotFound) {
			t.Fatalf("taking an expired entry: %v", err)
		}
	})
	t.Run("ok/take-once-under-concurrency", func(t *testing.T) {
		if err := a.CreateOIDC("code/once", []byte("req"), now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
		var got atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				v, err := st.TakeOIDC("code/once", now)
				switch {
				case err == nil && string(v) == "req":
					got.Add(1)
				case err != nil && !errors.Is(err, oidcop.ErrNotFound):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got.Load() != 1 {
			t.Fatalf("%d takes got the entry", got.Load())
		}
	})
	t.Run("ok/prune", func(t *testing.T) {
		if err := a.CreateOIDC("at/short", nil, now.Add(time.Second), now); err != nil {
			t.Fatal(err)
		}
		n, err := b.pruneOIDC(now.Add(5 * time.Second))
		if err != nil || n < 1 {
			t.Fatalf("pruned %d: %v", n, err)
		}
		if got := get(t, a, "logout/u", now); got != "second" {
			t.Fatalf("pruning took a live entry: %q", got)
		}
	})
}

// suiteTrySlots: the slots of PIN checks in flight are shared by the replicas: of
// concurrent reserves of one identity on both, exactly limit succeed; a freed or
// expired slot makes room; other identities are not affected.
func suiteTrySlots(t *testing.T, a, b stateStore) {
	id, other := randomIDHash(t), randomIDHash(t)
	const limit = 3
	slot := func() (s [16]byte) { rand.Read(s[:]); return s }
	slots := make([][16]byte, 16)
	won := make([]bool, len(slots))
	var got atomic.Int32
	var wg sync.WaitGroup
	for i := range slots {
		slots[i] = slot()
		st := []stateStore{a, b}[i%2]
		wg.Go(func() {
			ok, err := st.reserveTry(id, id[:], slots[i], fixedLimit(limit), time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				got.Add(1)
				won[i] = true
			}
		})
	}
	wg.Wait()
	if got.Load() != limit {
		t.Fatalf("%d of %d concurrent reserves on two replicas succeeded, want %d", got.Load(), len(slots), limit)
	}
	if ok, err := b.reserveTry(other, other[:], slot(), fixedLimit(1), time.Minute); !ok || err != nil {
		t.Fatalf("another identity's reserve: %v %v", ok, err)
	}
	if ok, _ := a.reserveTry(id, id[:], slot(), fixedLimit(limit), time.Minute); ok {
		t.Fatal("a reserve beyond the limit succeeded")
	}
	for i, w := range won {
		if w {
			if err := []stateStore{a, b}[(i+1)%2].releaseTry(id, slots[i]); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if ok, err := a.reserveTry(id, id[:], slot(), fixedLimit(limit), time.Minute); !ok || err != nil {
		t.Fatalf("a reserve after a release: %v %v", ok, err)
	}
	// Slots that lapse (a replica died holding them) make room once they have.
	lapsing := randomIDHash(t)
	if ok, err := a.reserveTry(lapsing, lapsing[:], slot(), fixedLimit(1), time.Millisecond); !ok || err != nil {
		t.Fatalf("a short slot: %v %v", ok, err)
	}
	time.Sleep(20 * time.Millisecond) // longer than the slot: never too short
	if ok, err := b.reserveTry(lapsing, lapsing[:], slot(), fixedLimit(1), time.Minute); !ok || err != nil {
		t.Fatalf("a reserve after the slot lapsed: %v %v", ok, err)
	}
}

// fixedLimit is a reserveTry limit that does not depend on the failure record.
func fixedLimit(n int) func(failRecord) int { return func(failRecord) int { return n } }

// suiteTrySlotsFresh: reserveTry's limit is of the failure record it reads after
// counting the slots, so a failure stored before a slot was released counts.
func suiteTrySlotsFresh(t *testing.T, a, b stateStore) {
	now := suiteTime()
	id := suiteEnrol(t, a, "gina", "CODE", now)
	f := newFailures(3, 10, a)
	slot := func() (s [16]byte) { rand.Read(s[:]); return s }
	first := slot()
	if ok, err := a.reserveTry(id, id[:], first, f.leftOf(id, true, now), time.Minute); !ok || err != nil {
		t.Fatalf("first reserve: %v %v", ok, err)
	}
	// Two failures stored: one try left, which the slot held takes.
	for range 2 {
		if _, err := a.updateFailures(id[:], func(r failRecord) failRecord { r, _ = f.apply(r, outcomeFailure, true, now); return r }); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := b.reserveTry(id, id[:], slot(), f.leftOf(id, true, now), time.Minute); ok || err != nil {
		t.Fatalf("a second slot with one try left: %v %v", ok, err)
	}
	if err := a.releaseTry(id, first); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.reserveTry(id, id[:], slot(), f.leftOf(id, true, now), time.Minute); !ok || err != nil {
		t.Fatalf("the one try left, once free: %v %v", ok, err)
	}
}

// delayedRead is a store whose next failures() read of key id returns what it read at
// once, but only once release is closed: the gap between admit's read of the tries
// left and its reservation of a slot (a database round trip, a goroutine descheduled).
type delayedRead struct {
	stateStore
	mu      sync.Mutex
	id      []byte
	read    chan struct{}
	release chan struct{}
}

func (s *delayedRead) failures(key []byte) (failRecord, error) {
	r, err := s.stateStore.failures(key)
	s.mu.Lock()
	hold := s.id != nil && bytes.Equal(key, s.id)
	if hold {
		s.id = nil
	}
	s.mu.Unlock()
	if hold {
		close(s.read)
		<-s.release
	}
	return r, err
}

// suiteAdmitFresh: a check that read the tries left before another check's failure
// was stored (and that check's place and slot freed) is not admitted on that stale
// count: with max 3, one failure stored and two checks in flight, a fourth waits until
// a try is free again (here: a success).
func suiteAdmitFresh(t *testing.T, a, b stateStore) {
	now := suiteTime()
	id := suiteEnrol(t, a, "hugo", "CODE", now)
	st := &delayedRead{stateStore: a, read: make(chan struct{}), release: make(chan struct{})}
	f := newFailures(3, 10, st)
	for i := range 3 {
		if ok, err := f.admit(t.Context(), id, true, now); !ok || err != nil {
			t.Fatalf("admit %d: %v %v", i, ok, err)
		}
	}
	st.mu.Lock()
	st.id = id[:]
	st.mu.Unlock()
	res := make(chan error, 1)
	go func() {
		ok, err := f.admit(t.Context(), id, true, now)
		if err == nil && !ok {
			err = errors.New("not admitted")
		}
		res <- err
	}()
	<-st.read // the fourth read 3 tries left
	// The first check fails: 2 tries left, 2 checks in flight.
	if _, err := f.done(id, true, true, outcomeFailure, now); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	select {
	case err := <-res:
		t.Fatalf("a fourth check admitted with 2 tries left and 2 checks in flight (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := f.done(id, true, true, outcomeSuccess, now); err != nil { // 3 left, 1 in flight
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fourth check still waits with a try free")
	}
	for range 2 {
		if _, err := f.done(id, true, true, outcomeFailure, now); err != nil {
			t.Fatal(err)
		}
	}
}

// suiteDecoyWrite: a decoy write goes to the decoy record of its key when nothing else
// writes, and never creates a record outside the decoy keys.
func suiteDecoyWrite(t *testing.T, a, b stateStore) {
	now := suiteTime()
	rec := failRecord{Count: 2, Day: 2, DayStart: now}
	for _, k := range []byte{3, 200} {
		if err := a.writeDecoy(decoyKeyAt(k), rec); err != nil {
			t.Fatal(err)
		}
		if got, err := b.failures(decoyKeyAt(k)); err != nil || got != rec {
			t.Fatalf("decoy record %d: %+v %v, want %+v", k, got, err, rec)
		}
	}
	if page, err := b.listEnrolments(nil, 10); err != nil || len(page) != 0 {
		t.Fatalf("listing: %v %v", page, err)
	}
}
