package dta

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The store keeps what a DTA must not forget across restarts: every ticket nonce it has
// acted on (with the log entries it wrote for it) and every revoked identity. bbolt
// syncs each transaction to disk before Update returns.
type store struct{ db *bolt.DB }

var (
	bucketIssuances = []byte("issuances") // ticket nonce → record
	bucketRevoked   = []byte("revoked")   // idhash hex → revocation ticket nonce
	// bucketExpiry indexes the records by their ticket's expiry, for prune: the key is
	// the expiry (Unix seconds, 8 bytes big-endian) followed by the nonce; no value.
	bucketExpiry = []byte("expiry")
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
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIssuances, bucketRevoked, bucketExpiry} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("dta: initialising the state database: %w", err)
	}
	db.MaxBatchDelay = time.Millisecond
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

var errNoRecord = errors.New("dta: no record")

func (s *store) get(nonce string) (*record, error) {
	var r record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIssuances).Get([]byte(nonce))
		if b == nil {
			return errNoRecord
		}
		return json.Unmarshal(b, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
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
		return nil
	})
	return n, err
}

// A storePut is one record to write under its nonce, with the identity it revokes (if
// any).
type storePut struct {
	nonce  string
	rec    *record
	revoke string
}

// commit writes pending and done in one transaction and returns once it is on disk:
// the group commit of the issuance path (see committer). The records are encoded before
// the transaction starts, so the single writer is held only for the puts and the sync.
func (s *store) commit(pending, done []storePut) error {
	all := append(pending[:len(pending):len(pending)], done...)
	if len(all) == 0 {
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
		return nil
	})
}

func (s *store) revoked(idhash string) (bool, error) {
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(bucketRevoked).Get([]byte(idhash)) != nil
		return nil
	})
	return found, err
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
			if r.pending() {
				out[string(k)] = &r
			}
			return nil
		})
	})
	return out, err
}
