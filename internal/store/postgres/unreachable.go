package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sori-dev/sori/internal/store"
)

// unreachable marks err with store.ErrUnavailable when it says the server
// could not be reached or the connection broke: a refused or failed
// connect, a connection that ended under a query, or the server's own
// "shutting down / starting up / connection failure" codes (class 08 and
// 57P01–57P03). Other errors, including timeouts of a reachable but busy
// server, are returned as they are.
func unreachable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	if isUnreachable(err) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

func isUnreachable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	var ne *net.OpError
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// pgx reports a connection it already found broken by its state.
	return strings.Contains(err.Error(), "conn closed")
}
