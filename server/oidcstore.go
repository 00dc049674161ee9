package server

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	bolt "go.etcd.io/bbolt"

	"github.com/polyroot/polyroot/internal/oidcop"
)

// The OpenID Provider's state (oidcop.Store) in both state stores: a key → a value
// until an expiry. An expired entry reads as absent at once; pruneOIDC deletes it later.

// bucketOIDC holds it in bbolt: key → expiry (Unix nanoseconds, big-endian) ‖ value.
var bucketOIDC = []byte("oidc")

func oidcRecord(value []byte, expires time.Time) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano())), value...)
}

// liveOIDC returns the value of a stored record unless it expired at now.
func liveOIDC(rec []byte, now time.Time) ([]byte, bool) {
	if len(rec) < 8 || int64(binary.BigEndian.Uint64(rec)) <= now.UnixNano() {
		return nil, false
	}
	return append([]byte(nil), rec[8:]...), true
}

func (s *boltStore) CreateOIDC(key string, value []byte, expires, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOIDC)
		if _, ok := liveOIDC(b.Get([]byte(key)), now); ok {
			return oidcop.ErrExists
		}
		return b.Put([]byte(key), oidcRecord(value, expires))
	})
}

func (s *boltStore) PutOIDC(key string, value []byte, expires time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOIDC).Put([]byte(key), oidcRecord(value, expires))
	})
}

func (s *boltStore) GetOIDC(key string, now time.Time) (value []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		var ok bool
		if value, ok = liveOIDC(tx.Bucket(bucketOIDC).Get([]byte(key)), now); !ok {
			return oidcop.ErrNotFound
		}
		return nil
	})
	return value, err
}

func (s *boltStore) TakeOIDC(key string, now time.Time) (value []byte, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOIDC)
		rec := b.Get([]byte(key))
		if rec == nil {
			return oidcop.ErrNotFound
		}
		var ok bool
		value, ok = liveOIDC(rec, now)
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		if !ok {
			return oidcop.ErrNotFound
		}
		return nil
	})
	return value, err
}

func (s *boltStore) pruneOIDC(now time.Time) (int, error) {
	return s.prune(bucketOIDC, func(v []byte) bool { _, live := liveOIDC(v, now); return !live })
}

func (s *pgStore) CreateOIDC(key string, value []byte, expires, now time.Time) error {
	ctx, cancel := s.ctx()
	defer cancel()
	value = notNull(value)
	// An expired row is replaced; a live one is kept and nothing is returned.
	tag, err := s.pool.Exec(ctx, `INSERT INTO oidc_state (key, value, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
		WHERE oidc_state.expires_at <= $4`, key, value, expires, now)
	if err == nil && tag.RowsAffected() == 0 {
		return oidcop.ErrExists
	}
	return err
}

func (s *pgStore) PutOIDC(key string, value []byte, expires time.Time) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO oidc_state (key, value, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`, key, notNull(value), expires)
	return err
}

// notNull makes a nil value the empty bytea (pgx sends nil as NULL).
func notNull(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

func (s *pgStore) GetOIDC(key string, now time.Time) ([]byte, error) {
	return s.queryOIDC("SELECT value FROM oidc_state WHERE key = $1 AND expires_at > $2", key, now)
}

func (s *pgStore) TakeOIDC(key string, now time.Time) ([]byte, error) {
	return s.queryOIDC(`WITH taken AS (DELETE FROM oidc_state WHERE key = $1 RETURNING value, expires_at)
		SELECT value FROM taken WHERE expires_at > $2`, key, now)
}

func (s *pgStore) queryOIDC(query, key string, now time.Time) ([]byte, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var value []byte
	err := s.pool.QueryRow(ctx, query, key, now).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) || isEncodingError(err) {
		return nil, oidcop.ErrNotFound // a key PostgreSQL's text cannot hold (NUL, not UTF-8) is in no row
	}
	return value, err
}

func (s *pgStore) pruneOIDC(now time.Time) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, "DELETE FROM oidc_state WHERE expires_at <= $1", now)
	return int(tag.RowsAffected()), err
}
