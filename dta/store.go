package dta

import (
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
)

// A record is what a DTA did for one ticket. It is written before the log entries are
// appended (Indices empty: pending) and completed after; a pending record found at
// start-up is finished by recovery, so an entry is never written twice.
type record struct {
	TicketSHA256 string   `json:"ticket_sha256"`
	Kind         string   `json:"kind"`
	Entries      [][]byte `json:"entries"`
	Indices      []uint64 `json:"indices,omitempty"`
	SizeHint     uint64   `json:"size_hint"` // log size before the entries were appended
}

func (r *record) pending() bool { return len(r.Indices) != len(r.Entries) }

func openStore(dir string) (*store, error) {
	db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("dta: opening the state database: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketIssuances, bucketRevoked} {
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
		return tx.Bucket(bucketIssuances).Put([]byte(nonce), b)
	})
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
		issuances, revoked := tx.Bucket(bucketIssuances), tx.Bucket(bucketRevoked)
		for i, p := range all {
			if p.revoke != "" {
				if err := revoked.Put([]byte(p.revoke), []byte(p.nonce)); err != nil {
					return err
				}
			}
			if err := issuances.Put([]byte(p.nonce), enc[i]); err != nil {
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
