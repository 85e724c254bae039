package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/groupcommit"
)

// Options tunes a Store. The zero value is the production default.
type Options struct {
	// MaxBatch is the most events one group commit may hold; 0 = 256.
	// 1 commits every event in its own transaction (the benchmark baseline).
	MaxBatch int
	// MaxConns caps the node's connection pool; 0 = pgxpool's default
	// (max(4, GOMAXPROCS)) unless the DSN sets pool_max_conns.
	MaxConns int32

	// twoTrips sends every batch the two-round-trip way, as the writer
	// did before the one-trip path: tests and the benchmark compare both.
	twoTrips bool
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	return o
}

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use.
//
// Reads and the non-append writes run on the pool, each in its own
// statement or short transaction. AppendEvent goes through one writer
// goroutine per Store that commits everything queued in one transaction
// (see writer.go). The writer owns knownUsers; nothing else is shared
// mutable state apart from the pool, which is itself concurrency-safe.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	appends   *groupcommit.Queue[*appendReq, appendResult]
	closing   chan struct{}
	writerWG  sync.WaitGroup
	closeOnce sync.Once

	// knownUsers caches the user ids the writer has seen exist; users are
	// never deleted. Owned by the writer goroutine.
	knownUsers map[int64]struct{}

	// Group-commit counters: committed batches and the events in them.
	batches, batchedEvents atomic.Int64
	// oneTripBatches counts the committed batches that took one round trip.
	oneTripBatches atomic.Int64

	// failBatch, when set by tests, is called with the size of each batch
	// just before COMMIT; an error fails the batch.
	failBatch func(size int) error
}

var _ store.Store = (*Store)(nil)

// idleTxTimeoutParam bounds how long a node's session may sit idle inside a
// transaction (see Open).
const idleTxTimeoutParam = "idle_in_transaction_session_timeout"

// Open connects to the database named by dsn (a libpq keyword/value string
// or a postgres:// URL; unknown keywords such as search_path become session
// settings), applies pending migrations and starts the group-commit writer.
// Several nodes may Open the same database at once: migrations take an
// advisory lock.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's message can quote the DSN, password included.
		return nil, errors.New("store: postgres: invalid DSN (see the libpq connection string format)")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	// A node frozen inside a group commit (SIGSTOP, a VM pause) holds its
	// rooms' row locks and would stall every other node's appends to them
	// until it wakes: the server ends such a session after 5 s idle in its
	// transaction, so its COMMIT fails (nothing of it was acknowledged) and
	// the others go on. A DSN may set another value.
	if _, set := cfg.ConnConfig.RuntimeParams[idleTxTimeoutParam]; !set {
		cfg.ConnConfig.RuntimeParams[idleTxTimeoutParam] = "5000" // ms
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: connect to %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: postgres: migrate: %w", err)
	}
	s := &Store{
		pool:       pool,
		opts:       opts,
		closing:    make(chan struct{}),
		knownUsers: make(map[int64]struct{}),
	}
	s.appends = groupcommit.New[*appendReq, appendResult](opts.MaxBatch, s.closing, store.ErrClosed)
	s.writerWG.Add(1)
	go s.writeLoop()
	return s, nil
}

// Close implements store.Store: it commits what is queued, stops the writer
// and closes the pool.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.writerWG.Wait()
		s.pool.Close()
	})
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// now is the store's clock, truncated to what PostgreSQL keeps, so a value
// returned by a create equals the value read back later.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// tstz converts a time for a nullable timestamptz column: the zero time is
// NULL.
func tstz(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// fromTstz converts a nullable timestamptz back; NULL is the zero time.
func fromTstz(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// randomID returns n random bytes in hex.
func randomID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b)
}

// clampSeq converts a caller's seq to a storable integer; seqs never come
// near 2^63, so larger values only mean "the end".
func clampSeq(q uint64) int64 {
	if q > 1<<62 {
		return 1 << 62
	}
	return int64(q)
}

// SQLSTATE codes the store maps to its sentinels.
const (
	codeUnique     = "23505"
	codeForeignKey = "23503"
	codeCheck      = "23514"
)

// classify maps PostgreSQL errors to the store's sentinels: unique
// violations are conflicts, foreign key violations mean a referenced row is
// missing, check violations are invalid arguments, and no rows is not found.
// Other errors pass through.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeUnique:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case codeForeignKey:
			return fmt.Errorf("%w: %v", store.ErrNotFound, err)
		case codeCheck:
			return fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
	}
	return unreachable(err)
}

// wrap classifies err and names the operation that failed. Once the Store
// is closed every failure is ErrClosed: the pool's own error for that says
// nothing a caller can test.
func (s *Store) wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if s.isClosed() {
		err = store.ErrClosed
	}
	return fmt.Errorf("store: "+format+": %w", append(args, classify(err))...)
}

// isLogical reports whether err is a per-request outcome (the request was
// wrong or lost a race) rather than a failure of the database.
func isLogical(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalid)
}

// inTx runs fn in a read-committed transaction on the pool.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// exec runs a write that must change a row: none changed is ErrNotFound.
func (s *Store) execOne(ctx context.Context, sql string, args ...any) error {
	if s.isClosed() {
		return store.ErrClosed
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return pgx.ErrNoRows
	}
	return nil
}

// queryRow is pool.QueryRow that fails at once on a closed Store.
func (s *Store) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if s.isClosed() {
		return errRow{store.ErrClosed}
	}
	return s.pool.QueryRow(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// collect runs a query and scans every row with scan.
func collect[T any](ctx context.Context, s *Store, q querier, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// querier is what the read helpers need from the pool and a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
