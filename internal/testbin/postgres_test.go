package testbin

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartPostgres: the throw-away cluster answers on its loopback port, and each
// created database is its own.
func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t)
	a, b := pg.CreateDatabase(t), pg.CreateDatabase(t)
	if a == b {
		t.Fatalf("two databases with one URL %s", a)
	}
	conn, err := pgx.Connect(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("SELECT 1: %d %v", n, err)
	}
}
