package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// openPostgresReplicas migrates a fresh database of pg and opens it twice, as two
// replicas do: two pools, two session caches.
func openPostgresReplicas(pg *testbin.Postgres) openReplicas {
	return func(t *testing.T) (stateStore, stateStore) { return openPostgresAt(t, pg.CreateDatabase(t)) }
}

// openPostgresAt migrates the database at url and opens it twice (openPostgresReplicas).
func openPostgresAt(t *testing.T, url string) (stateStore, stateStore) {
	if _, _, err := MigratePostgres(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	login, renewals := suiteVerifiers(t)
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	open := func() stateStore {
		sealer, err := newSessionSealer(tokenKey, login, renewals)
		if err != nil {
			t.Fatal(err)
		}
		st, err := openPostgres(t.Context(), url, sealer, storeSuiteTTL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.close() })
		return st
	}
	return open(), open()
}

func TestStorePostgres(t *testing.T) {
	pg := testbin.StartPostgres(t)
	runStoreSuite(t, openPostgresReplicas(pg))
	// On a database whose default isolation is SERIALIZABLE, concurrent failures of
	// one identity are still all counted (none fails as a serialization error).
	t.Run("serializable-default/failures-concurrent", func(t *testing.T) {
		url := pg.CreateDatabase(t)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		var name string
		err = conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&name)
		if err == nil {
			_, err = conn.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET default_transaction_isolation = 'serializable'")
		}
		conn.Close(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		a, b := openPostgresAt(t, url)
		suiteFailuresConcurrent(t, a, b)
	})
}

// TestPostgresMigrations: a server refuses a database that is not migrated, saying how
// to migrate; migrating twice changes nothing; connection errors do not show the
// password.
func TestPostgresMigrations(t *testing.T) {
	pg := testbin.StartPostgres(t)
	url := pg.CreateDatabase(t)
	login, renewals := suiteVerifiers(t)
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	sealer, err := newSessionSealer(tokenKey, login, renewals)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openPostgres(t.Context(), url, sealer, time.Minute); err == nil || !strings.Contains(err.Error(), "polyroot server migrate") {
		t.Fatalf("an empty database: %v", err)
	}
	want := pgSchemaVersion()
	if from, to, err := MigratePostgres(t.Context(), url); err != nil || from != 0 || to != want {
		t.Fatalf("first migration: %d → %d, %v", from, to, err)
	}
	if from, to, err := MigratePostgres(t.Context(), url); err != nil || from != want || to != want {
		t.Fatalf("second migration: %d → %d, %v", from, to, err)
	}
	st, err := openPostgres(t.Context(), url, sealer, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !st.syncCommit(t.Context()) {
		t.Fatal("synchronous_commit reads off on a default database")
	}
	// A database whose commits do not wait for the disk is noticed (the server warns).
	if _, err := st.pool.Exec(t.Context(), "ALTER ROLE CURRENT_USER SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	st.close()
	if st, err = openPostgres(t.Context(), url, sealer, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st.syncCommit(t.Context()) {
		t.Fatal("synchronous_commit = off for the role, not noticed")
	}
	st.pool.Exec(t.Context(), "ALTER ROLE CURRENT_USER RESET synchronous_commit")
	st.close()
	const secret = "s3cret-Passw0rd"
	bad := strings.Replace(url, "polyroot@", "polyroot:"+secret+"@", 1)
	bad = strings.Replace(bad, pg.Addr, "127.0.0.1:1", 1)
	for _, err := range []error{
		func() error { _, err := openPostgres(t.Context(), bad, sealer, time.Minute); return err }(),
		func() error { _, _, err := MigratePostgres(t.Context(), bad); return err }(),
	} {
		if err == nil || strings.Contains(err.Error(), secret) || !strings.HasPrefix(err.Error(), "server: ") {
			t.Fatalf("connection error: %v", err)
		}
	}
}

// TestPostgresReplicasInProcess: two servers on one PostgreSQL database are one
// server: pass 1 on either and pass 2 on the other logs in, wrong PINs on both count
// toward one lockout, an unblock or a revocation on one holds on the other at once.
func TestPostgresReplicasInProcess(t *testing.T) {
	pg := testbin.StartPostgres(t)
	url := pg.CreateDatabase(t)
	e := newEnv(t, 0)
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	onPostgres := func(c *Config) {
		c.Store, c.DatabaseURL, c.Migrate, c.TokenKey = "postgres", url, true, tokenKey
	}
	a := e.start(t, t.TempDir(), false, onPostgres)
	b := e.start(t, t.TempDir(), false, onPostgres)
	alice := a.enrol(t, wire.EnrolmentRequest{ID: "alice"}, "1234")
	for _, pair := range [][2]*harness{{a, b}, {b, a}, {a, a}} {
		if res := pair[0].login(t, alice, "1234", loginOpts{finishAt: pair[1]}); res.status != 200 || res.fin.AccessToken == "" {
			t.Fatalf("login across replicas: %d %s", res.status, res.body)
		}
	}
	for i, h := range []*harness{a, b, a} {
		res := h.login(t, alice, "0000", loginOpts{finishAt: []*harness{b, a, b}[i]})
		if res.status != 401 || res.failure.TriesLeft != 2-i {
			t.Fatalf("wrong PIN %d: %d %s", i, res.status, res.body)
		}
	}
	if res := b.login(t, alice, "1234", loginOpts{}); res.status != 401 || res.failure.TriesLeft != 0 {
		t.Fatalf("blocked on the other replica: %d %s", res.status, res.body)
	}
	if st, body := do(t, b.http, "POST", b.url+"/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: "alice"}, nil); st != 200 {
		t.Fatalf("unblock: %d %s", st, body)
	}
	if res := a.login(t, alice, "1234", loginOpts{}); res.status != 200 {
		t.Fatalf("after an unblock on the other replica: %d %s", res.status, res.body)
	}
	if st, body := do(t, a.http, "POST", a.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "alice"}, nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	if res := b.login(t, alice, "1234", loginOpts{}); res.status != 401 {
		t.Fatalf("revoked on one replica, the other logs in: %d %s", res.status, res.body)
	}
}

// TestPostgresDecoyWriteNeverWaits: an unknown idhash's failure does not wait for
// another failure's transaction on its decoy row (a garbage idhash's that maps to the
// same decoy, still committing): it writes a free decoy row instead, as fast as an
// enrolled identity's failure, which has a row of its own. Else pairing the target
// with such a garbage idhash would tell by the time of its answer whether it is
// enrolled.
func TestPostgresDecoyWriteNeverWaits(t *testing.T) {
	pg := testbin.StartPostgres(t)
	a, _ := openPostgresAt(t, pg.CreateDatabase(t))
	now := suiteTime()
	enrolled := suiteEnrol(t, a, "victim", "CODE", now)
	f := newFailures(3, 10, a)
	unknown := randomIDHash(t)
	var garbage pairing.IDHash
	for garbage = randomIDHash(t); !bytes.Equal(f.key(garbage, false), f.key(unknown, false)); garbage = randomIDHash(t) {
	}
	const held = time.Second
	for _, tc := range []struct {
		name  string
		id    pairing.IDHash
		known bool
	}{{"ok/enrolled", enrolled, true}, {"ok/unknown-same-decoy", unknown, false}} {
		t.Run(tc.name, func(t *testing.T) {
			// A garbage failure's transaction holds the decoy row for a second.
			tx, err := a.(*pgStore).pool.BeginTx(t.Context(), readCommitted)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(t.Context(), "UPDATE failures SET record = record WHERE key = $1", f.key(garbage, false)); err != nil {
				t.Fatal(err)
			}
			rolledBack := make(chan struct{})
			go func() { time.Sleep(held); tx.Rollback(context.Background()); close(rolledBack) }()
			defer func() { <-rolledBack }()
			start := time.Now()
			if _, err := f.done(tc.id, tc.known, false, outcomeFailure, now); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > held/4 {
				t.Fatalf("the failure took %v beside a held decoy row", d)
			}
		})
	}
	if n := f.count(unknown); n != 1 {
		t.Fatalf("the unknown idhash's count: %d", n)
	}
}
