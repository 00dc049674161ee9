package server

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// pgTimeout bounds one store operation, so that a database that hangs fails requests
// (and /readyz) instead of holding them.
const pgTimeout = 10 * time.Second

// pgSessionPruneInterval is how often expired login sessions are deleted: sessions
// whose pass 2 never came.
const pgSessionPruneInterval = time.Minute

// pgStore is the stateStore that replicas share: PostgreSQL, schema in pgschema/.
// Everything a request reads or changes is in the database, each change one
// transaction, so any replica answers any request. In memory it keeps only a cache:
// the login sessions it made itself (sessions), used when pass 2 comes back to it,
// after the database has given that session out (once, to one replica).
type pgStore struct {
	pool   *pgxpool.Pool
	sealer *sessionSealer
	ttl    time.Duration
	cache  *sessions
	stop   func()
}

// readCommitted is every transaction's isolation level, whatever the database's
// default: they lock the rows they change (FOR UPDATE, upserts), and under a stricter
// level a revocation racing a redemption would fail with a serialization error.
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// openPostgres connects to databaseURL and checks that its schema is this server's.
func openPostgres(ctx context.Context, databaseURL string, sealer *sessionSealer, sessionTTL time.Duration) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, errors.New("server: the database URL does not parse (a postgres:// URL or key=value settings)")
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, pgConnectError(err, databaseURL)
	}
	cctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, pgConnectError(err, databaseURL)
	}
	v, err := pgCurrentVersion(cctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("server: reading the PostgreSQL schema version: %w", err)
	}
	if want := pgSchemaVersion(); v != want {
		pool.Close()
		if v > want {
			return nil, fmt.Errorf("server: the PostgreSQL schema is at version %d, newer than this server's %d: upgrade the server", v, want)
		}
		return nil, fmt.Errorf("server: the PostgreSQL schema is at version %d, this server needs %d: run `polyroot server migrate` (or serve with --migrate)", v, want)
	}
	if err := createDecoys(cctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("server: creating the decoy failure records: %w", err)
	}
	s := &pgStore{pool: pool, sealer: sealer, ttl: sessionTTL, cache: newSessions(sessionTTL, maxSessions)}
	s.stop = s.startSessionPruner()
	return s, nil
}

func (s *pgStore) close() error {
	s.stop()
	s.pool.Close()
	return nil
}

func (s *pgStore) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	return s.pool.Ping(ctx)
}

func (s *pgStore) backup(io.Writer) error {
	return errors.New("server: a PostgreSQL state store is backed up with PostgreSQL's own tools (pg_dump, or base backups with WAL archiving)")
}

func (s *pgStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), pgTimeout)
}

func (s *pgStore) createEnrolment(id pairing.IDHash, e *enrolment, code string, codeExpiry time.Time) error {
	codeID, proofKey := wire.CodeSecrets(code)
	ej, err := json.Marshal(e)
	if err != nil {
		return err
	}
	cj, err := json.Marshal(pendingCode{IDHash: id, ExpiresAt: codeExpiry, ProofKey: proofKey})
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx()
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO enrolments (idhash, app_id, record) VALUES ($1, $2, $3)
			ON CONFLICT (idhash) DO UPDATE SET app_id = EXCLUDED.app_id, record = EXCLUDED.record`, id[:], e.ID, ej); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO codes (code_id, expires_at, record) VALUES ($1, $2, $3)
			ON CONFLICT (code_id) DO UPDATE SET expires_at = EXCLUDED.expires_at, record = EXCLUDED.record`, codeID[:], codeExpiry, cj)
		return err
	})
}

// redeem locks the code's row, then the enrolment's, for the transaction: concurrent
// redemptions of one code, on any replicas, run one after the other.
func (s *pgStore) redeem(req *wire.RedeemRequest, domain string, now time.Time,
	answer redeemAnswer) (*enrolment, []byte, error) {
	var e *enrolment
	var out []byte
	ctx, cancel := s.ctx()
	defer cancel()
	err := pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		var raw []byte
		err := tx.QueryRow(ctx, "SELECT record FROM codes WHERE code_id = $1 FOR UPDATE", req.CodeID).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound
		} else if err != nil {
			return err
		}
		var pc pendingCode
		if err := json.Unmarshal(raw, &pc); err != nil {
			return err
		}
		if !now.Before(pc.ExpiresAt) {
			return errNotFound // the pruner deletes it
		}
		if e, err = pgEnrolment(ctx, tx, pc.IDHash, true); err != nil {
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
		if _, err := tx.Exec(ctx, "UPDATE codes SET expires_at = $2, record = $3 WHERE code_id = $1", req.CodeID, pc.ExpiresAt, cj); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE enrolments SET record = $2 WHERE idhash = $1", pc.IDHash[:], ej)
		return err
	})
	return e, out, err
}

func (s *pgStore) pruneCodes(now time.Time) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, "DELETE FROM codes WHERE expires_at <= $1", now)
	return int(tag.RowsAffected()), err
}

// pgEnrolment reads id's record, locking its row for the transaction if forUpdate.
func pgEnrolment(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, id pairing.IDHash, forUpdate bool) (*enrolment, error) {
	sql := "SELECT record FROM enrolments WHERE idhash = $1"
	if forUpdate {
		sql += " FOR UPDATE"
	}
	var raw []byte
	err := q.QueryRow(ctx, sql, id[:]).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	} else if err != nil {
		return nil, err
	}
	var e enrolment
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

func (s *pgStore) enrolment(id pairing.IDHash) (*enrolment, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	return pgEnrolment(ctx, s.pool, id, false)
}

func (s *pgStore) enrolmentsOf(appID string) ([]pairing.IDHash, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT idhash FROM enrolments WHERE app_id = $1 ORDER BY idhash", appID)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pairing.IDHash, error) {
		var id pairing.IDHash
		var b []byte
		if err := r.Scan(&b); err != nil {
			return id, err
		}
		copy(id[:], b)
		return id, nil
	})
	if err == nil && len(ids) == 0 || isEncodingError(err) { // an ID PostgreSQL's text cannot hold is in no row
		return nil, errNotFound
	}
	return ids, err
}

func (s *pgStore) listEnrolments(after []byte, n int) ([]listedEnrolment, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	if after == nil {
		after = []byte{}
	}
	rows, err := s.pool.Query(ctx, `SELECT e.idhash, e.record, f.record FROM enrolments e
		LEFT JOIN failures f ON f.key = e.idhash WHERE e.idhash > $1 ORDER BY e.idhash LIMIT $2`, after, n)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (listedEnrolment, error) {
		var l listedEnrolment
		var id, ej, fr []byte
		if err := r.Scan(&id, &ej, &fr); err != nil {
			return l, err
		}
		copy(l.id[:], id)
		l.e = new(enrolment)
		if err := json.Unmarshal(ej, l.e); err != nil {
			return l, err
		}
		l.fails, _ = decodeFailRecord(fr)
		return l, nil
	})
}

func (s *pgStore) revoke(id pairing.IDHash, now time.Time) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		e, err := pgEnrolment(ctx, tx, id, true)
		if err != nil || e.Revoked != nil {
			return err
		}
		e.Revoked = &now
		raw, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE enrolments SET record = $2 WHERE idhash = $1", id[:], raw)
		return err
	})
}

func (s *pgStore) revokeToken(jti string, until time.Time) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2)
		ON CONFLICT (jti) DO UPDATE SET expires_at = greatest(revoked_tokens.expires_at, EXCLUDED.expires_at)`, jti, until)
	return err
}

func (s *pgStore) tokenRevoked(jti string) (bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var revoked bool
	err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)", jti).Scan(&revoked)
	return revoked, err
}

func (s *pgStore) pruneRevokedTokens(now time.Time) (int, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, "DELETE FROM revoked_tokens WHERE expires_at <= $1", now)
	return int(tag.RowsAffected()), err
}

func (s *pgStore) failures(key []byte) (failRecord, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, "SELECT record FROM failures WHERE key = $1", key).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return failRecord{}, nil
	}
	r, _ := decodeFailRecord(raw)
	return r, err
}

// updateFailures is one transaction that holds the record's row lock from its read to
// its write: the upsert creates the row if there is none and locks it either way, so
// concurrent updates of one key, from any replicas, run one after the other. An
// enrolled identity's failure and an unknown idhash's (the decoy key) run the same
// statements.
func (s *pgStore) updateFailures(key []byte, next func(failRecord) failRecord) (failRecord, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var r failRecord
	// READ COMMITTED whatever the database's default: the upsert locks the row, and a
	// stricter level would fail concurrent failures of one identity with serialization
	// errors instead of counting them one after the other.
	err := pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		var raw []byte
		if err := tx.QueryRow(ctx, `INSERT INTO failures (key, record) VALUES ($1, '\x') ON CONFLICT (key)
			DO UPDATE SET record = failures.record RETURNING record`, key).Scan(&raw); err != nil {
			return err
		}
		cur, _ := decodeFailRecord(raw)
		if r = next(cur); r == (failRecord{}) {
			_, err := tx.Exec(ctx, "DELETE FROM failures WHERE key = $1", key)
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE failures SET record = $2 WHERE key = $1", key, r.encode())
		return err
	})
	return r, err
}

// writeDecoy locks a decoy row that no other transaction holds, key's if it is free
// (FOR UPDATE SKIP LOCKED, which never waits), and writes r there. Its statements
// mirror updateFailures' (a locking no-op update, then the update), so that an
// unknown idhash's failure writes what an enrolled identity's does. The 256 rows are
// created at open (createDecoys); only when all of them are held at once does it
// wait, for key's row.
func (s *pgStore) writeDecoy(key []byte, r failRecord) error {
	ctx, cancel := s.ctx()
	defer cancel()
	return pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		var got []byte
		err := tx.QueryRow(ctx, `UPDATE failures SET record = failures.record WHERE key = (
				SELECT key FROM failures WHERE key = ANY($1) ORDER BY key = $2 DESC LIMIT 1 FOR UPDATE SKIP LOCKED)
			RETURNING key`, decoyKeys, key).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) { // every decoy row held (or deleted since the open)
			err = tx.QueryRow(ctx, `INSERT INTO failures (key, record) VALUES ($1, '\x') ON CONFLICT (key)
				DO UPDATE SET record = failures.record RETURNING key`, key).Scan(&got)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE failures SET record = $2 WHERE key = $1", got, r.encode())
		return err
	})
}

// createDecoys creates the decoy rows that do not exist yet, each with the empty
// record, so that writeDecoy finds a free one without waiting from the first failure
// of an unknown idhash on.
func createDecoys(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `INSERT INTO failures (key, record) SELECT k, $2 FROM unnest($1::bytea[]) AS k
		ON CONFLICT (key) DO NOTHING`, decoyKeys, failRecord{}.encode())
	return err
}

// reserveTry holds a slot in login_tries (an UNLOGGED table: no WAL to flush) under a
// transaction-scoped advisory lock on the idhash (the two-int4 form, apart from the
// migrations' bigint lock), so that concurrent reserves of one identity, on any
// replicas, count one after the other: READ COMMITTED, set here, lets the count after
// the lock see the previous holder's slot. The count and the failure record are read
// in one statement, one snapshot: a slot released before it (failures.finish) had its
// failure committed before that (failures.settle), so the record holds every failure
// whose slot is gone. The insert runs whether it takes a slot or not (WHERE $4), so
// that a refused reserve (a blocked identity's, touchSlot) costs the same round trips.
// Expiry is by the database's clock.
func (s *pgStore) reserveTry(id pairing.IDHash, key []byte, slot [16]byte, left func(failRecord) int, ttl time.Duration) (bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var ok bool
	err := pgx.BeginTxFunc(ctx, s.pool, readCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::int4, $2::int4)",
			int32(binary.BigEndian.Uint32(id[:4])), int32(binary.BigEndian.Uint32(id[4:8]))); err != nil {
			return err
		}
		var held int
		var raw []byte
		if err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM login_tries WHERE idhash = $1 AND expires <= now())
			SELECT (SELECT count(*) FROM login_tries WHERE idhash = $1 AND expires > now()),
				(SELECT record FROM failures WHERE key = $2)`, id[:], key).Scan(&held, &raw); err != nil {
			return err
		}
		r, _ := decodeFailRecord(raw) // no row: the zero record
		tag, err := tx.Exec(ctx, `INSERT INTO login_tries (idhash, slot, expires)
			SELECT $1, $2, now() + $3 * interval '1 millisecond' WHERE $4`,
			id[:], slot[:], ttl.Milliseconds(), held < left(r))
		ok = tag.RowsAffected() == 1
		return err
	})
	return ok, err
}

func (s *pgStore) releaseTry(id pairing.IDHash, slot [16]byte) error {
	ctx, cancel := s.ctx()
	defer cancel()
	_, err := s.pool.Exec(ctx, "DELETE FROM login_tries WHERE idhash = $1 AND slot = $2", id[:], slot[:])
	return err
}

// putSession stores the session sealed (sessionSealer), and keeps it in the cache.
func (s *pgStore) putSession(p *pending) error {
	state, err := s.sealer.seal(p)
	if err != nil {
		return err
	}
	id := p.sess.ID()
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.pool.Exec(ctx, "INSERT INTO sessions (id, expires_at, state) VALUES ($1, $2, $3)",
		id[:], p.created.Add(s.ttl), state); err != nil {
		return err
	}
	s.cache.put(p)
	return nil
}

// takeSession deletes the session's row and gets its state in one statement: of
// concurrent takes, on any replicas, one gets the row. The winner uses its cached
// session if it made it, else rebuilds it from the state.
func (s *pgStore) takeSession(id [pairing.SessionIDSize]byte, now time.Time) (*pending, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var state []byte
	err := s.pool.QueryRow(ctx, "DELETE FROM sessions WHERE id = $1 RETURNING state", id[:]).Scan(&state)
	cached := s.cache.take(id, now)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	case cached != nil:
		return cached, nil
	}
	p, err := s.sealer.open(id, state)
	if err != nil {
		return nil, err
	}
	if now.Sub(p.created) >= s.ttl || now.Before(p.created.Add(-time.Minute)) {
		return nil, nil
	}
	return p, nil
}

// syncCommit reports whether the server's transactions wait for their commit to be on
// disk (synchronous_commit is not off); true if it cannot be read.
func (s *pgStore) syncCommit(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	var v string
	return s.pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&v) != nil || v != "off"
}

// startSessionPruner deletes expired sessions every pgSessionPruneInterval until
// stop: the rows of logins whose pass 2 never came; and the expired slots of PIN
// checks (reserveTry) of replicas that died mid-check.
func (s *pgStore) startSessionPruner() (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(pgSessionPruneInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			ctx, cancel := s.ctx()
			// expires_at is by the replica's clock that made the session, which takeSession
			// checks too; the margin keeps a replica whose clock is behind the database's
			// from losing its live sessions here. A failure is retried next time.
			s.pool.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= now() - interval '5 minutes'")
			s.pool.Exec(ctx, "DELETE FROM login_tries WHERE expires <= now()")
			cancel()
		}
	}()
	return func() { close(quit); <-done }
}
