package dta

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/wire"
)

// The store keeps what a DTA must not forget across restarts: every ticket nonce it has
// acted on (with the log entries it wrote for it) and every revoked identity. bbolt
// syncs each transaction to disk before Update returns.
type store struct {
	db        *bolt.DB
	lastRound atomic.Uint64 // the last round number handed out (newRound)
}

var (
	bucketIssuances = []byte("issuances") // ticket nonce → record
	bucketRevoked   = []byte("revoked")   // idhash hex → revocation ticket nonce
	// bucketExpiry indexes the records by their ticket's expiry, for prune: the key is
	// the expiry (Unix seconds, 8 bytes big-endian) followed by the nonce; no value.
	bucketExpiry = []byte("expiry")
	// bucketRounds completes the records of a group commit's round at once (see
	// record.Round): round number (8 bytes big-endian) → the log index of the round's
	// first entry and the latest ticket expiry among its records (8 bytes big-endian
	// each). Its sequence is the last round number used.
	bucketRounds = []byte("rounds")
)

// A record is what a DTA did for one ticket. It is written before the log entries are
// appended (Indices empty: pending) and completed after; a pending record found at
// start-up is finished by recovery, so an entry is never written twice.
type record struct {
	TicketSHA256 string   `json:"ticket_sha256"`
	Kind         string   `json:"kind"`
	Entries      [][]byte `json:"entries"`
	// Slots and Sealed are, per entry, its permit slot and the sealed share issued (no
	// Sealed for a revocation): a retry of the ticket gets them back unchanged.
	Slots    []uint64 `json:"slots,omitempty"`
	Sealed   [][]byte `json:"sealed,omitempty"`
	Indices  []uint64 `json:"indices,omitempty"`
	SizeHint uint64   `json:"size_hint"` // log size before the entries were appended
	// Round, if not 0, is the group commit round that wrote the record pending, and
	// Offset the place of its first entry among the round's entries. A round's entries
	// are appended to the log together and in order, so one completion per round (in
	// bucketRounds: the index of its first entry) completes all its records: their
	// Indices are first+Offset, first+Offset+1, … Indices, when the record has them,
	// come first (records completed one by one, by recovery or by older versions).
	Round  uint64 `json:"round,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
	// NotAfter is the ticket's expiry (Unix seconds): once it is well past, the ticket is
	// refused as expired before its nonce is looked up, and prune may forget the record.
	// 0 in records written before it was kept: those are never pruned.
	NotAfter int64 `json:"not_after,omitempty"`
}

func (r *record) pending() bool { return len(r.Indices) != len(r.Entries) }

func openStore(dir string) (*store, error) {
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dta: opening the state database: %w", err)
	}
	st := &store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIssuances, bucketRevoked, bucketExpiry, bucketRounds} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		st.lastRound.Store(tx.Bucket(bucketRounds).Sequence())
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("dta: initialising the state database: %w", err)
	}
	db.MaxBatchDelay = time.Millisecond
	return st, nil
}

// newRound returns a round number never used before in this database: the rounds'
// sequence is raised to it by the transaction that writes the round's records, and
// numbers handed out by a transaction that failed are simply skipped.
func (s *store) newRound() uint64 { return s.lastRound.Add(1) }

// complete fills in the Indices of a record of a round whose completion is written.
func complete(tx *bolt.Tx, r *record) {
	if r.Round == 0 || len(r.Indices) == len(r.Entries) {
		return
	}
	v := tx.Bucket(bucketRounds).Get(roundKey(r.Round))
	if len(v) < 8 {
		return // the round's completion is not written: pending
	}
	first := binary.BigEndian.Uint64(v) + r.Offset
	r.Indices = make([]uint64, len(r.Entries))
	for i := range r.Indices {
		r.Indices[i] = first + uint64(i)
	}
}

func roundKey(round uint64) []byte { return binary.BigEndian.AppendUint64(nil, round) }

func (s *store) close() error { return s.db.Close() }

var errNoRecord = errors.New("dta: no record")

func (s *store) get(nonce string) (*record, error) {
	var r record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIssuances).Get([]byte(nonce))
		if b == nil {
			return errNoRecord
		}
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		complete(tx, &r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// getChecked is get and, if revokedIDHash is not empty, whether that identity is
// revoked, read in one transaction.
func (s *store) getChecked(nonce, revokedIDHash string) (r *record, revoked bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if revokedIDHash != "" {
			revoked = tx.Bucket(bucketRevoked).Get([]byte(revokedIDHash)) != nil
		}
		b := tx.Bucket(bucketIssuances).Get([]byte(nonce))
		if b == nil {
			return errNoRecord
		}
		r = new(record)
		if err := json.Unmarshal(b, r); err != nil {
			return err
		}
		complete(tx, r)
		return nil
	})
	if err != nil {
		r = nil
	}
	return r, revoked, err
}

// put writes r under nonce; for a revocation it also marks idhash revoked, in the same
// transaction. It returns once the write is on disk.
func (s *store) put(nonce string, r *record, revokeIDHash string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// Batch coalesces concurrent writers into one transaction and one fsync; the
	// function may run more than once, which is harmless for these idempotent puts.
	return s.db.Batch(func(tx *bolt.Tx) error {
		if revokeIDHash != "" {
			if err := tx.Bucket(bucketRevoked).Put([]byte(revokeIDHash), []byte(nonce)); err != nil {
				return err
			}
		}
		return putRecord(tx, nonce, r, b)
	})
}

// putRecord writes one encoded record and its expiry index key.
func putRecord(tx *bolt.Tx, nonce string, r *record, enc []byte) error {
	if r.NotAfter > 0 {
		if err := tx.Bucket(bucketExpiry).Put(expiryKey(r.NotAfter, nonce), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketIssuances).Put([]byte(nonce), enc)
}

func expiryKey(notAfter int64, nonce string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(notAfter)), nonce...)
}

// prune forgets the completed records of tickets that expired before cutoff, at most
// limit of them, in one transaction; it returns how many it forgot. Pending records are
// kept until recovery completes them. The revocations are never pruned.
func (s *store) prune(cutoff time.Time, limit int) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		issuances, expiry := tx.Bucket(bucketIssuances), tx.Bucket(bucketExpiry)
		var drop [][]byte // deleting while iterating would skip keys
		c := expiry.Cursor()
		for k, _ := c.First(); k != nil && len(drop) < limit; k, _ = c.Next() {
			if len(k) < 8 || int64(binary.BigEndian.Uint64(k[:8])) >= cutoff.Unix() {
				break
			}
			nonce := k[8:]
			if v := issuances.Get(nonce); v != nil {
				var r record
				if err := json.Unmarshal(v, &r); err != nil {
					return fmt.Errorf("record %q: %w", nonce, err)
				}
				complete(tx, &r)
				if r.pending() {
					continue
				}
			}
			drop = append(drop, append([]byte(nil), k...))
		}
		for _, k := range drop {
			if err := issuances.Delete(k[8:]); err != nil {
				return err
			}
			if err := expiry.Delete(k); err != nil {
				return err
			}
		}
		n = len(drop)
		if n < limit {
			// Every completed record that expired before cutoff is gone, so are all the
			// records of a round whose latest expiry is before it: its completion goes
			// too. Oldest rounds first, up to the first one still needed but for those
			// never forgotten (a later round left for a later prune costs nothing but
			// its 24 bytes).
			return pruneRounds(tx.Bucket(bucketRounds), cutoff, limit)
		}
		return nil
	})
	return n, err
}

// pruneRounds deletes, from the oldest, the completions of rounds whose records all
// expired before cutoff, at most limit of them. It stops at the first round whose
// records have not all expired: the rounds after it are about as recent. It passes
// over the rounds that are never forgotten (a record without expiry: a key entry),
// which are few but early, as a DTA logs its key entry when it starts: stopping at
// one would keep every later round's completion for good.
func pruneRounds(rounds *bolt.Bucket, cutoff time.Time, limit int) error {
	var drop [][]byte
	c := rounds.Cursor()
	for k, v := c.First(); k != nil && len(drop) < limit; k, v = c.Next() {
		if len(v) < 16 {
			break
		}
		if notAfter := int64(binary.BigEndian.Uint64(v[8:16])); notAfter == math.MaxInt64 {
			continue
		} else if notAfter >= cutoff.Unix() {
			break
		}
		drop = append(drop, append([]byte(nil), k...))
	}
	for _, k := range drop {
		if err := rounds.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// A storePut is one record to write under its nonce, with the identity it revokes (if
// any).
type storePut struct {
	nonce  string
	rec    *record
	revoke string
}

// A roundDone is the completion of a round: its entries are in the log from index
// first on, in the order of its records' Offsets. notAfter is the latest ticket expiry
// among its records, for prune.
type roundDone struct {
	round, first uint64
	notAfter     int64
}

// commit writes pending and done in one transaction and returns once it is on disk.
func (s *store) commit(pending, done []storePut) error {
	return s.commitRound(0, pending, done, nil)
}

// commitRound writes, in one transaction, the records pending of round (0: records
// that are not part of a round), the records done one by one and the completions of
// whole rounds, and returns once it is on disk: the group commit of the issuance path
// (see committer). The records are encoded before the transaction starts, so the
// single writer is held only for the puts and the sync.
func (s *store) commitRound(round uint64, pending, done []storePut, rounds []roundDone) error {
	all := append(pending[:len(pending):len(pending)], done...)
	if len(all) == 0 && len(rounds) == 0 {
		return nil
	}
	enc := make([][]byte, len(all))
	for i, p := range all {
		b, err := json.Marshal(p.rec)
		if err != nil {
			return err
		}
		enc[i] = b
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		revoked := tx.Bucket(bucketRevoked)
		for i, p := range all {
			if p.revoke != "" {
				if err := revoked.Put([]byte(p.revoke), []byte(p.nonce)); err != nil {
					return err
				}
			}
			if err := putRecord(tx, p.nonce, p.rec, enc[i]); err != nil {
				return err
			}
		}
		b := tx.Bucket(bucketRounds)
		if round > b.Sequence() {
			if err := b.SetSequence(round); err != nil {
				return err
			}
		}
		for _, d := range rounds {
			v := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, d.first), uint64(d.notAfter))
			if err := b.Put(roundKey(d.round), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// revoked reports whether idhash is revoked.
func (s *store) revoked(idhash string) (bool, error) {
	found, err := s.revokedAmong([]string{idhash})
	return found[idhash], err
}

// revokedAmong returns which of idhashes are revoked, in one read transaction.
func (s *store) revokedAmong(idhashes []string) (map[string]bool, error) {
	found := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRevoked)
		for _, id := range idhashes {
			if b.Get([]byte(id)) != nil {
				found[id] = true
			}
		}
		return nil
	})
	return found, err
}

// revokedSubjects returns the log subjects (wire.Subject) of every revoked identity.
func (s *store) revokedSubjects() (map[string]bool, error) {
	out := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRevoked).ForEach(func(k, _ []byte) error {
			var id [32]byte
			if b, err := hex.DecodeString(string(k)); err == nil && len(b) == len(id) {
				copy(id[:], b)
				out[wire.Subject(id)] = true
			}
			return nil
		})
	})
	return out, err
}

// drop removes the record of nonce (and its expiry key), once on disk.
func (s *store) drop(nonce string, r *record) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if r.NotAfter > 0 {
			if err := tx.Bucket(bucketExpiry).Delete(expiryKey(r.NotAfter, nonce)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketIssuances).Delete([]byte(nonce))
	})
}

// pendingRecords returns the records whose entries may not all be in the log.
func (s *store) pendingRecords() (map[string]*record, error) {
	out := map[string]*record{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIssuances).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %q: %w", k, err)
			}
			complete(tx, &r)
			if r.pending() {
				out[string(k)] = &r
			}
			return nil
		})
	})
	return out, err
}
