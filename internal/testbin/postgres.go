package testbin

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A Postgres is a throw-away PostgreSQL cluster (initdb on a temporary directory,
// trust authentication, a superuser named polyroot) listening on a free loopback port
// and a unix socket in that directory, started for one test and killed when it ends.
type Postgres struct {
	Addr string // 127.0.0.1:PORT
	// URL is a connection string to the database "postgres".
	URL string
	n   atomic.Int32
}

// postgresEnv names PostgreSQL's initdb, if it is not on PATH: postgres is the one
// beside it.
const postgresEnv = "POLYROOT_INITDB_BIN"

// postgresDir finds the directory that holds initdb and postgres: postgresEnv's, else
// PATH's, else Debian's layout for the postgresql package (/usr/lib/postgresql/N/bin,
// which is not on PATH; the newest N).
func postgresDir() (string, error) {
	if p := os.Getenv(postgresEnv); p != "" {
		return filepath.Dir(p), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgMajor(b) - pgMajor(a) })
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "initdb")); err == nil && fi.Mode()&0o111 != 0 {
			return d, nil
		}
	}
	return "", errors.New("no initdb")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartPostgres runs initdb and postgres (see postgresDir) for the test. When they are
// missing the test is skipped, or fails if Required (`make test` installs Debian's
// postgresql package first: `make postgres`). PostgreSQL refuses to run as root: a
// root test process runs the cluster as the user postgres (or nobody).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	dir, err := postgresDir()
	if err != nil {
		if Required() {
			t.Fatalf("testbin: PostgreSQL's initdb not found (not in %s, on PATH or in /usr/lib/postgresql/*/bin), but %s=1 requires this integration test. "+
				"Run `make postgres` to install Debian's postgresql package, or set %s.", postgresEnv, IntegrationEnv, postgresEnv)
		}
		t.Skipf("testbin: PostgreSQL's initdb not found (set %s or install postgresql: `make postgres`); skipping integration test", postgresEnv)
	}
	cred := pgCredential(t)
	pg := &Postgres{}
	startServerAs(t, "postgres", filepath.Join(dir, "postgres"), cred, func(tmp string) ([]string, func() bool) {
		// Its own directory, open to the cluster's user: t.TempDir's parents are not.
		base, err := os.MkdirTemp("", "polyroot-pg-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
		if cred != nil {
			if err := os.Chown(base, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
		data := filepath.Join(base, "data")
		initdb := exec.Command(filepath.Join(dir, "initdb"), "-D", data, "-U", "polyroot", "--auth=trust",
			"-E", "UTF8", "--locale=C", "--no-sync")
		initdb.Env = []string{"HOME=" + base, "PATH=/usr/bin:/bin"}
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := initdb.CombinedOutput(); err != nil {
			t.Fatalf("testbin: initdb: %v\n%s", err, out)
		}
		port := freePort(t)
		pg.Addr = "127.0.0.1:" + strconv.Itoa(port)
		pg.URL = "postgres://polyroot@" + pg.Addr + "/postgres?sslmode=disable"
		// A test cluster: no fsync (its data dies with the test), enough connections
		// for several servers' pools.
		args := []string{"-D", data, "-p", strconv.Itoa(port), "-k", base, "-c", "listen_addresses=127.0.0.1",
			"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"}
		logPath := filepath.Join(tmp, "server.log")
		return args, func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), "ready to accept connections")
		}
	})
	return pg
}

// pgCredential is the user to run PostgreSQL as: nil (this process's) unless root.
func pgCredential(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		}
	}
	t.Fatal("testbin: running as root, and there is no user postgres or nobody to run PostgreSQL as")
	return nil
}

// CreateDatabase creates a fresh database in the cluster and returns its connection
// string: tests that share a cluster do not see each other's tables.
func (pg *Postgres) CreateDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatalf("testbin: connecting to the test cluster: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("test%d", pg.n.Add(1))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testbin: creating database %s: %v", name, err)
	}
	u, _ := url.Parse(pg.URL)
	u.Path = "/" + name
	return u.String()
}
