package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Buckets of the state database (DataDir/server.db).
var (
	bucketEnrolments = []byte("enrolments") // idhash → enrolment (JSON)
	bucketIDs        = []byte("ids")        // app-level id → idhash of its latest enrolment
	// bucketIDEnrolments indexes every enrolment of an app-level id: the key is
	// idKeyPrefix(id) ‖ idhash, the value empty.
	bucketIDEnrolments = []byte("id-enrolments")
	bucketCodes        = []byte("codes")    // SHA-256(code) → pendingCode (JSON)
	bucketFailures     = []byte("failures") // idhash → failure record (failRecord.encode)
	// bucketRevokedTokens holds the revoked access-token IDs: jti → the Unix second
	// (int64, big-endian) until which the revocation is kept.
	bucketRevokedTokens = []byte("revoked-tokens")
)

// decoyKeyAt returns decoy key i of the 256 in bucketFailures: 31 zero bytes and i. A
// failure of an idhash that is not enrolled here writes its record under one of them
// (failures.key), overwritten, so that such failures cost the synced write of an
// enrolled identity's failure without growing the database. They are many so that a
// flood of failures of garbage idhashes does not queue on one record (a row lock, with
// PostgreSQL) and make the failures of unknown idhashes slower than those of enrolled
// ones. No idhash looks like a decoy key (it is a hash), and loadFailures skips them.
func decoyKeyAt(i byte) []byte {
	k := make([]byte, len(pairing.IDHash{}))
	k[len(k)-1] = i
	return k
}

// decoyKeys are the 256 decoy keys.
var decoyKeys = func() [][]byte {
	k := make([][]byte, 256)
	for i := range k {
		k[i] = decoyKeyAt(byte(i))
	}
	return k
}()

// isDecoyKey reports whether k is one of the decoy keys.
func isDecoyKey(k []byte) bool {
	return len(k) == len(pairing.IDHash{}) && bytes.Count(k[:len(k)-1], []byte{0}) == len(k)-1
}

// A failRecord is the stored failure state of one identity.
type failRecord struct {
	Count    int       // consecutive failures; a success resets them
	Day      int       // failures in the window that started at DayStart
	DayStart time.Time // start of the 24 h window of the daily budget (zero: none)
	Held     bool      // blocked by the daily budget until the registrar unblocks
}

// failRecordSize is the size of every encoded record: all failures write as much.
const failRecordSize = 20

// encode is count (uint32), day (uint32), window start (int64 Unix seconds, 0 for
// none) and flags (uint32: 1 = held), big-endian.
func (r failRecord) encode() []byte {
	b := make([]byte, 0, failRecordSize)
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(r.Count, 0), math.MaxUint32)))
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(r.Day, 0), math.MaxUint32)))
	var start int64
	if !r.DayStart.IsZero() {
		start = r.DayStart.Unix()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	var flags uint32
	if r.Held {
		flags |= 1
	}
	return binary.BigEndian.AppendUint32(b, flags)
}

// decodeFailRecord reads a record; a 4-byte value is a count from before the daily
// budget.
func decodeFailRecord(v []byte) (failRecord, bool) {
	switch len(v) {
	case 4:
		return failRecord{Count: int(binary.BigEndian.Uint32(v))}, true
	case failRecordSize:
		r := failRecord{Count: int(binary.BigEndian.Uint32(v)), Day: int(binary.BigEndian.Uint32(v[4:])),
			Held: binary.BigEndian.Uint32(v[16:])&1 != 0}
		if start := int64(binary.BigEndian.Uint64(v[8:])); start != 0 {
			r.DayStart = time.Unix(start, 0)
		}
		return r, true
	}
	return failRecord{}, false
}

// An enrolment is the registrar's record of one identity.
type enrolment struct {
	ID         string     `json:"id"`
	Salt       []byte     `json:"salt"`
	Device     bool       `json:"device,omitempty"`
	NotAfter   *time.Time `json:"not_after,omitempty"` // temporary identities
	PermitDays int        `json:"permit_days"`
	Created    time.Time  `json:"created"`
	Revoked    *time.Time `json:"revoked,omitempty"`
	// ClientKey is the X25519 key the client proved at redeem for its client shares:
	// its client ticket names it, so the DTAs seal its shares to it.
	ClientKey []byte `json:"client_key,omitempty"`
	// PermitKey is the X25519 key the client proved at redeem for its permits: every
	// permit ticket of this identity names it (ClientKey when it is empty, as from
	// clients that send one key).
	PermitKey []byte `json:"permit_key,omitempty"`
}

// permitKey is the key e's permits are sealed to.
func (e *enrolment) permitKey() []byte {
	if len(e.PermitKey) != 0 {
		return e.PermitKey
	}
	return e.ClientKey
}

// usable reports whether the identity may log in at now (blocks aside).
func (e *enrolment) usable(now time.Time) bool {
	return e != nil && e.Revoked == nil && (e.NotAfter == nil || now.Before(*e.NotAfter))
}

// A pendingCode is an enrolment code. Only the code's hash is stored. A redeemed code is
// kept, with its answer, until its tickets expire: see store.redeem.
type pendingCode struct {
	IDHash    pairing.IDHash `json:"idhash"`
	ExpiresAt time.Time      `json:"expires_at"` // once redeemed: when the answer's tickets expire
	// ProofKey checks the client's proof that it knows the code (wire.CodeProof); the
	// code itself is never stored, and the bucket is keyed by the code's ID.
	ProofKey [32]byte `json:"proof_key"`
	// Answer is the answer to the code's redemption (set once redeemed).
	Answer json.RawMessage `json:"answer,omitempty"`
}

// boltStore is the stateStore of one process: bbolt in DataDir/server.db (which
// bbolt locks: one process per data directory), with login sessions in memory.
type boltStore struct {
	db       *bolt.DB
	sessions *sessions
	tries    trySlots // in memory: one process has the file (bbolt's lock)
}

// trySlots are the slots of PIN checks in flight of one process (stateStore.reserveTry).
type trySlots struct {
	mu    sync.Mutex
	slots map[pairing.IDHash]map[[16]byte]time.Time // slot → expires
}

// reserve holds slot if fewer than limit() slots of id are held. limit is called
// after the count, under the lock that releases take: see stateStore.reserveTry.
func (t *trySlots) reserve(id pairing.IDHash, slot [16]byte, limit func() (int, error), ttl time.Duration) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	held := t.slots[id]
	for s, exp := range held {
		if !now.Before(exp) {
			delete(held, s)
		}
	}
	n, err := limit()
	if err != nil || len(held) >= n {
		return false, err
	}
	if held == nil {
		if t.slots == nil {
			t.slots = map[pairing.IDHash]map[[16]byte]time.Time{}
		}
		held = map[[16]byte]time.Time{}
		t.slots[id] = held
	}
	held[slot] = now.Add(ttl)
	return true, nil
}

func (t *trySlots) release(id pairing.IDHash, slot [16]byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.slots[id], slot)
	if len(t.slots[id]) == 0 {
		delete(t.slots, id)
	}
}

func (s *boltStore) reserveTry(id pairing.IDHash, key []byte, slot [16]byte, left func(failRecord) int, ttl time.Duration) (bool, error) {
	return s.tries.reserve(id, slot, func() (int, error) {
		r, err := s.failures(key)
		return left(r), err
	}, ttl)
}

func (s *boltStore) releaseTry(id pairing.IDHash, slot [16]byte) error {
	s.tries.release(id, slot)
	return nil
}

var errNotFound = errors.New("not found")

// openStore opens (or creates) the bbolt state database at path; login sessions are
// kept in memory for sessionTTL.
func openStore(path string, sessionTTL time.Duration) (*boltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEnrolments, bucketIDs, bucketCodes, bucketFailures, bucketRevokedTokens, bucketOIDC} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketIDEnrolments) != nil {
			return nil
		}
		// A database from before the index: build it from the enrolments.
		index, err := tx.CreateBucket(bucketIDEnrolments)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketEnrolments).ForEach(func(k, v []byte) error {
			var e enrolment
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			return index.Put(append(idKeyPrefix(e.ID), k...), nil)
		})
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltStore{db: db, sessions: newSessions(sessionTTL, maxSessions)}, nil
}

func (s *boltStore) close() error { return s.db.Close() }

func (s *boltStore) ping(context.Context) error {
	return s.db.View(func(*bolt.Tx) error { return nil })
}

func (s *boltStore) putSession(p *pending) error {
	s.sessions.put(p)
	return nil
}

func (s *boltStore) takeSession(id [pairing.SessionIDSize]byte, now time.Time) (*pending, error) {
	return s.sessions.take(id, now), nil
}

// createEnrolment records a new identity and its one-time code.
func (s *boltStore) createEnrolment(id pairing.IDHash, e *enrolment, code string, codeExpiry time.Time) error {
	codeID, proofKey := wire.CodeSecrets(code)
	ej, err := json.Marshal(e)
	if err != nil {
		return err
	}
	cj, err := json.Marshal(pendingCode{IDHash: id, ExpiresAt: codeExpiry, ProofKey: proofKey})
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketEnrolments).Put(id[:], ej); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIDs).Put([]byte(e.ID), id[:]); err != nil {
			return err
		}
		if err := tx.Bucket(bucketIDEnrolments).Put(append(idKeyPrefix(e.ID), id[:]...), nil); err != nil {
			return err
		}
		return tx.Bucket(bucketCodes).Put(codeID[:], cj)
	})
}

// redeem consumes a code for the client key of req, if req proves knowledge of the
// code (errCodeProof if not; errNotFound for an unknown, expired or used code), and
// returns the enrolment and the answer. The answer of a fresh redemption is what
// answer makes of the enrolment, called inside the transaction (an error leaves the
// code as it was), and valid until the time it returns. The client key and that answer
// are written in one transaction, so the code works once, and every permit ticket of
// the enrolment names that key. The answer is kept with the used code until it
// expires: the same request again (the same client key and proof), whose answer was
// lost to a crash or the network, gets the same answer, with the same tickets, so that
// no code is burnt without an answer and a replay makes the DTAs issue nothing new. A
// request for any other key gets errNotFound.
func (s *boltStore) redeem(req *wire.RedeemRequest, domain string, now time.Time,
	answer redeemAnswer) (*enrolment, []byte, error) {
	var e *enrolment
	var out []byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		codes := tx.Bucket(bucketCodes)
		raw := codes.Get(req.CodeID)
		if raw == nil {
			return errNotFound
		}
		var pc pendingCode
		if err := json.Unmarshal(raw, &pc); err != nil {
			return err
		}
		if !now.Before(pc.ExpiresAt) {
			return errNotFound // the pruner deletes it (an error here rolls any delete back)
		}
		var err error
		if e, err = getEnrolment(tx, pc.IDHash); err != nil {
			return err
		}
		var fresh bool
		if out, fresh, err = redeemCode(&pc, e, req, domain, answer); err != nil || !fresh {
			return err
		}
		ej, err := json.Marshal(e)
		if err != nil {
			return err
		}
		cj, err := json.Marshal(pc)
		if err != nil {
			return err
		}
		if err := codes.Put(req.CodeID, cj); err != nil {
			return err
		}
		return tx.Bucket(bucketEnrolments).Put(pc.IDHash[:], ej)
	})
	return e, out, err
}

// A redeemAnswer makes the answer to the fresh redemption of a code of enrolment e
// (whose ClientKey and PermitKey are now the requester's), given the code's proof key, and says until
// when it is valid.
type redeemAnswer func(id pairing.IDHash, e *enrolment, proofKey [32]byte) (any, time.Time, error)

// redeemCode decides a redemption of the unexpired code pc of enrolment e (see
// boltStore.redeem): it returns the answer, and whether it is fresh, in which case
// the caller stores pc and e, which now hold the answer and the client key, in one
// transaction.
func redeemCode(pc *pendingCode, e *enrolment, req *wire.RedeemRequest, domain string,
	answer redeemAnswer) (out []byte, fresh bool, err error) {
	proofOK := hmac.Equal(req.Proof, wire.CodeProof(pc.ProofKey, domain, req.ClientKey, req.PermitKey))
	switch {
	case e.ClientKey != nil: // used: only its own request again
		if !proofOK || !bytes.Equal(e.ClientKey, req.ClientKey) || !bytes.Equal(e.PermitKey, req.PermitKey) || pc.Answer == nil {
			return nil, false, errNotFound
		}
		return pc.Answer, false, nil
	case !proofOK:
		return nil, false, errCodeProof // the code stays: its owner may still redeem it
	}
	e.ClientKey, e.PermitKey = req.ClientKey, req.PermitKey
	a, until, err := answer(pc.IDHash, e, pc.ProofKey)
	if err != nil {
		return nil, false, err
	}
	if out, err = json.Marshal(a); err != nil {
		return nil, false, err
	}
	pc.Answer, pc.ExpiresAt = out, until
	return out, true, nil
}

// pruneCodes deletes the codes that expired before now, used or not, and returns
// how many.
func (s *boltStore) pruneCodes(now time.Time) (int, error) {
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		codes := tx.Bucket(bucketCodes)
		var expired [][]byte
		err := codes.ForEach(func(k, v []byte) error {
			var pc pendingCode
			if json.Unmarshal(v, &pc) == nil && !now.Before(pc.ExpiresAt) {
				expired = append(expired, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range expired {
			err = errors.Join(err, codes.Delete(k))
		}
		n = len(expired)
		return err
	})
	return n, err
}

// errCodeProof: a known, unexpired code whose proof does not verify for the client key
// sent: someone who saw the request but not the code replaced the key.
var errCodeProof = errors.New("code proof does not verify")

func getEnrolment(tx *bolt.Tx, id pairing.IDHash) (*enrolment, error) {
	raw := tx.Bucket(bucketEnrolments).Get(id[:])
	if raw == nil {
		return nil, errNotFound
	}
	var e enrolment
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// enrolment returns the record of id, or errNotFound.
func (s *boltStore) enrolment(id pairing.IDHash) (*enrolment, error) {
	var e *enrolment
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		e, err = getEnrolment(tx, id)
		return err
	})
	return e, err
}

// idKeyPrefix is the length-prefixed app-level id that starts the index keys of its
// enrolments: no id's prefix is the prefix of another's.
func idKeyPrefix(appID string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(appID))), appID...)
}

// enrolmentsOf returns the idhashes of every enrolment of an app-level id, in idhash
// order (errNotFound if there is none).
func (s *boltStore) enrolmentsOf(appID string) ([]pairing.IDHash, error) {
	var ids []pairing.IDHash
	prefix := idKeyPrefix(appID)
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketIDEnrolments).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			var id pairing.IDHash
			if len(k) == len(prefix)+len(id) {
				copy(id[:], k[len(prefix):])
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err == nil && len(ids) == 0 {
		err = errNotFound
	}
	return ids, err
}

func (s *boltStore) listEnrolments(after []byte, n int) ([]listedEnrolment, error) {
	var out []listedEnrolment
	err := s.db.View(func(tx *bolt.Tx) error {
		fails := tx.Bucket(bucketFailures)
		c := tx.Bucket(bucketEnrolments).Cursor()
		k, v := c.First()
		if after != nil {
			if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < n; k, v = c.Next() {
			var l listedEnrolment
			if len(k) != len(l.id) {
				continue
			}
			l.e = new(enrolment)
			if err := json.Unmarshal(v, l.e); err != nil {
				return err
			}
			copy(l.id[:], k)
			l.fails, _ = decodeFailRecord(fails.Get(k))
			out = append(out, l)
		}
		return nil
	})
	return out, err
}

// revoke marks id revoked at now (a second revocation keeps the first time).
func (s *boltStore) revoke(id pairing.IDHash, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		e, err := getEnrolment(tx, id)
		if err != nil {
			return err
		}
		if e.Revoked == nil {
			e.Revoked = &now
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketEnrolments).Put(id[:], raw)
	})
}

// revokeToken records jti revoked until until (a later time of a second revocation wins).
func (s *boltStore) revokeToken(jti string, until time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRevokedTokens)
		if v := b.Get([]byte(jti)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= until.Unix() {
			return nil
		}
		return b.Put([]byte(jti), binary.BigEndian.AppendUint64(nil, uint64(until.Unix())))
	})
}

func (s *boltStore) tokenRevoked(jti string) (bool, error) {
	var revoked bool
	err := s.db.View(func(tx *bolt.Tx) error {
		revoked = tx.Bucket(bucketRevokedTokens).Get([]byte(jti)) != nil
		return nil
	})
	return revoked, err
}

func (s *boltStore) pruneRevokedTokens(now time.Time) (int, error) {
	return s.prune(bucketRevokedTokens, func(v []byte) bool {
		return len(v) == 8 && int64(binary.BigEndian.Uint64(v)) <= now.Unix()
	})
}

// prune deletes the entries of bucket whose value ended says is over, and returns
// how many.
func (s *boltStore) prune(bucket []byte, ended func(v []byte) bool) (int, error) {
	var n int
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		var over [][]byte
		b.ForEach(func(k, v []byte) error {
			if ended(v) {
				over = append(over, bytes.Clone(k))
			}
			return nil
		})
		for _, k := range over {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(over)
		return nil
	})
	return n, err
}

// loadFailures returns every stored failure record of an identity.
func (s *boltStore) loadFailures() (map[pairing.IDHash]failRecord, error) {
	out := map[pairing.IDHash]failRecord{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFailures).ForEach(func(k, v []byte) error {
			var id pairing.IDHash
			if len(k) != len(id) || isDecoyKey(k) {
				return nil
			}
			if r, ok := decodeFailRecord(v); ok {
				copy(id[:], k)
				out[id] = r
			}
			return nil
		})
	})
	return out, err
}

func (s *boltStore) failures(key []byte) (failRecord, error) {
	var r failRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		r, _ = decodeFailRecord(tx.Bucket(bucketFailures).Get(key))
		return nil
	})
	return r, err
}

// writeDecoy writes the decoy record under key: bbolt has one writer at a time for
// all records, so a decoy record's write waits for no more than any other's.
func (s *boltStore) writeDecoy(key []byte, r failRecord) error {
	_, err := s.updateFailures(key, func(failRecord) failRecord { return r })
	return err
}

// updateFailures runs in db.Batch, which groups concurrent writers in one synced
// commit (and may run a transaction again alone: next is then called again).
func (s *boltStore) updateFailures(key []byte, next func(failRecord) failRecord) (failRecord, error) {
	var r failRecord
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFailures)
		cur, _ := decodeFailRecord(b.Get(key))
		if r = next(cur); r == (failRecord{}) {
			return b.Delete(key)
		}
		return b.Put(key, r.encode())
	})
	return r, err
}

// backup writes a consistent copy of the database.
func (s *boltStore) backup(w io.Writer) error {
	return s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
}
