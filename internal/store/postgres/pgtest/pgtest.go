// Package pgtest gives tests a private PostgreSQL schema. Tests that need
// PostgreSQL read the server's DSN from SORI_TEST_POSTGRES and skip when it
// is unset (make test sets it, running the tests inside pg_virtualenv).
//
// It must never import any other Sori package: it is a test helper that
// every layer (store, server, cmd) may use.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvDSN is the environment variable holding the test server's DSN.
const EnvDSN = "SORI_TEST_POSTGRES"

// SkipMessage is what a test that needs PostgreSQL says when skipping.
const SkipMessage = "SORI_TEST_POSTGRES not set (make test sets it with pg_virtualenv)"

// DSN returns the test server's DSN, or skips t.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skip(SkipMessage)
	}
	return dsn
}

var seq atomic.Int64

// Schema creates a schema private to t, dropped with everything in it when
// t ends, and returns a DSN whose connections use it (search_path), so that
// tests running in parallel, in one process or several, never share tables.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	ctx := context.Background()
	var rnd [3]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("t_%d_%d_%s", os.Getpid(), seq.Add(1), hex.EncodeToString(rnd[:]))
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("pgtest: connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return dsn + " search_path=" + name
}
