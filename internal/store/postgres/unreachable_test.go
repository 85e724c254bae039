package postgres

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sori-dev/sori/internal/store"
)

// A refused connection and the server's shutdown and start-up codes are
// ErrUnavailable (error 122 to clients); a constraint violation or a
// timeout of a reachable server is not.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, connErr := pgconn.Connect(context.Background(), "postgres://u:p@"+addr+"/db?connect_timeout=5")
	if connErr == nil {
		t.Fatal("connected to a closed port")
	}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{connErr, true},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&pgconn.PgError{Code: codeUnique}, false},
		{context.DeadlineExceeded, false},
	} {
		if got := errors.Is(classify(c.err), store.ErrUnavailable); got != c.want {
			t.Errorf("classify(%v) is ErrUnavailable = %v, want %v", c.err, got, c.want)
		}
	}
}
