package server

import (
	"context"
	"io"
	"time"

	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// stateStore is everything the server persists: enrolments and their app-level ID
// index, enrolment codes (used ones with their answer), failure records (and the decoy
// record of unknown idhashes), revoked access-token IDs and login sessions. (An
// identity's revocation, which also revokes every access token of it, is its
// enrolment's Revoked time.) Every replica of a domain's auth
// server that shares one stateStore answers any request as any other would: what a
// replica keeps in memory besides it is a cache or in-flight bookkeeping only.
//
// Two implementations: boltStore (one process, DataDir/server.db) and pgStore
// (PostgreSQL, shared by replicas; Config.Store). runStoreSuite (store_suite_test.go)
// is the contract both pass.
type stateStore interface {
	// createEnrolment records a new identity and its one-time code.
	createEnrolment(id pairing.IDHash, e *enrolment, code string, codeExpiry time.Time) error
	// redeem consumes a code: see boltStore.redeem for the contract.
	redeem(req *wire.RedeemRequest, domain string, now time.Time,
		answer redeemAnswer) (*enrolment, []byte, error)
	// pruneCodes deletes the codes that expired before now, used or not, and returns
	// how many.
	pruneCodes(now time.Time) (int, error)

	// enrolment returns the record of id, or errNotFound.
	enrolment(id pairing.IDHash) (*enrolment, error)
	// enrolmentsOf returns the idhashes of every enrolment of an app-level id, in
	// idhash order (errNotFound if there is none).
	enrolmentsOf(appID string) ([]pairing.IDHash, error)
	// listEnrolments returns up to n enrolments in idhash order after the idhash after
	// (nil: from the first), each with its failure record.
	listEnrolments(after []byte, n int) ([]listedEnrolment, error)
	// revoke marks id revoked at now (a second revocation keeps the first time); every
	// later enrolment read, by any replica, sees it.
	revoke(id pairing.IDHash, now time.Time) error

	// revokeToken records the access token ID jti revoked until until (when every
	// token with that ID has expired); revoking it again keeps the later time. Every
	// later tokenRevoked, by any replica, sees it.
	revokeToken(jti string, until time.Time) error
	// tokenRevoked reports whether jti is recorded revoked (pruned or not yet).
	tokenRevoked(jti string) (bool, error)
	// pruneRevokedTokens deletes the token revocations whose time ended before now,
	// and returns how many.
	pruneRevokedTokens(now time.Time) (int, error)

	// failures returns the failure record stored under key (an idhash, or a decoy key);
	// the zero record if there is none.
	failures(key []byte) (failRecord, error)
	// updateFailures replaces the record under key with next(current record) as one
	// atomic update, durable before it returns: concurrent updates, from this process
	// or another replica, are applied one after the other, so no count is lost. next
	// may be called more than once (a retried transaction) and must not have side
	// effects beyond the last call. An empty record is deleted.
	updateFailures(key []byte, next func(failRecord) failRecord) (failRecord, error)

	// writeDecoy writes r, the record of a failure of an idhash not enrolled here, over
	// one of the decoy records, durable before it returns: the one under key (a decoy
	// key, failures.key), or, while another write holds that one, any decoy record that
	// none holds. It never waits for another failure's write to end (but for all 256
	// decoy records held at once): an unknown idhash shares its decoy record with
	// others, an enrolled identity has its own, and waiting behind a write of the
	// shared one would tell them apart.
	writeDecoy(key []byte, r failRecord) error

	// reserveTry holds slot, one of the slots for checks of id in flight shared by
	// every replica, until releaseTry or for ttl (the slot of a replica that died
	// mid-check): false if left(record) slots or more are held, where record is the
	// failure record under key read after the slots were counted, with no reserve of id
	// between. So the limit is as fresh as the count: a check that freed its slot had
	// its failure stored before (failures.done), so the record read includes it (a
	// limit read before the count would not, and let in more checks than tries left).
	// Of concurrent reserves, on any replicas, at most left succeed. The store's own
	// clock times the slots (the database's: replicas' clocks, and Config.Now, do not
	// enter).
	reserveTry(id pairing.IDHash, key []byte, slot [16]byte, left func(failRecord) int, ttl time.Duration) (bool, error)
	// releaseTry frees slot.
	releaseTry(id pairing.IDHash, slot [16]byte) error

	// putSession keeps a login session between pass 1 and pass 2.
	putSession(p *pending) error
	// takeSession removes and returns the session id if it exists and has not expired
	// at now (nil, nil if not): of concurrent takes of one session, on any replicas,
	// at most one gets it.
	takeSession(id [pairing.SessionIDSize]byte, now time.Time) (*pending, error)

	// The OpenID Provider's state (oidcop.Store, oidcstore.go).
	oidcop.Store
	// pruneOIDC deletes the OpenID Provider's entries that expired before now, and
	// returns how many.
	pruneOIDC(now time.Time) (int, error)

	// ping checks that the store answers (readiness).
	ping(ctx context.Context) error
	// backup writes a consistent copy of the store to w, where the store can.
	backup(w io.Writer) error
	close() error
}

// A listedEnrolment is one enrolment of a listing, with its failure record.
type listedEnrolment struct {
	id    pairing.IDHash
	e     *enrolment
	fails failRecord
}
