package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A node's session idle inside a transaction (the node froze mid group
// commit, holding its rooms' row locks) is ended by the server, so the
// other nodes' appends go on: 5 s by default, the DSN's value when it sets
// one. The frozen transaction's COMMIT then fails.
func TestIdleTransactionsAreEndedByTheServer(t *testing.T) {
	dsn := newSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // only ends a broken test
	defer cancel()
	show := func(s *Store) string {
		var v string
		if err := s.pool.QueryRow(ctx, "SHOW "+idleTxTimeoutParam).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	def := openDSN(t, dsn, Options{})
	defer def.Close()
	if v := show(def); v != "5s" {
		t.Fatalf("default %s = %q, want 5s", idleTxTimeoutParam, v)
	}
	s := openDSN(t, dsn+" "+idleTxTimeoutParam+"=200", Options{})
	defer s.Close()
	if v := show(s); v != "200ms" {
		t.Fatalf("%s from the DSN = %q, want 200ms", idleTxTimeoutParam, v)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// The "frozen node" sends nothing more; wait for the server to end
	// its session (watched from another connection).
	watch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	for {
		var n int
		if err := watch.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the idle transaction's session was never ended")
		case <-time.After(20 * time.Millisecond): // polling the server's view
		}
	}
	if err := tx.Commit(ctx); err == nil {
		t.Fatal("the COMMIT of a transaction whose session the server ended succeeded")
	}
}
