package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sori-dev/sori/internal/store"
	"github.com/sori-dev/sori/internal/store/groupcommit"
)

// DefaultFileName is the database file's name inside the data dir.
const DefaultFileName = "sori.db"

// Options tunes a Store. The zero value is the production default.
type Options struct {
	// MaxBatch is the most events one group commit may hold; 0 = 256.
	// 1 commits every event in its own transaction (the benchmark baseline).
	MaxBatch int
	// ReadConns is the size of the read-only connection pool; 0 = max(4,
	// GOMAXPROCS).
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process (such as `sori user add` while `sori serve` runs); 0 = 5s.
	BusyTimeout time.Duration
	// SyncFull sets synchronous=FULL, which also survives power loss and OS
	// crashes at the cost of an fsync per commit. See Open.
	SyncFull bool
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.ReadConns <= 0 {
		o.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 5 * time.Second
	}
	return o
}

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use.
//
// Writes go through one connection (SQLite allows one writer at a time, and
// an in-process queue is cheaper than lock retries): AppendEvent through the
// group-commit goroutine, other writes through the same connection's pool of
// one. Reads use a separate pool of read-only connections, which WAL lets run
// alongside the writer.
type Store struct {
	path string
	opts Options
	w    *sql.DB // exactly one connection, used for every write
	r    *sql.DB // read-only pool

	prepared [numStmts]*sql.Stmt // the writer's statements, on w

	appends   *groupcommit.Queue[*appendReq, appendResult]
	closing   chan struct{}
	writerWG  sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// knownUsers caches the user ids the writer has seen exist; users are
	// never deleted. Owned by the writer goroutine.
	knownUsers map[int64]struct{}

	// Group-commit counters: committed batches and the events in them.
	batches, batchedEvents atomic.Int64
	// checkpointedFrames counts the WAL frames this Store's background
	// checkpoints copied (tests read it; per Store, so that one test's
	// store cannot satisfy another's wait).
	checkpointedFrames atomic.Int64

	// failBatch, when set by tests, is called with the size of each batch
	// just before COMMIT; an error fails the batch.
	failBatch func(size int) error
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, applies pending
// migrations and starts the group-commit writer.
//
// Pragmas, chosen deliberately:
//   - journal_mode=WAL: readers never block the writer or each other, and a
//     commit is one sequential append to the WAL.
//   - synchronous=NORMAL (default): in WAL mode a committed transaction
//     survives a crash of the process (kill -9, panic): the WAL frames are
//     in the OS page cache before COMMIT returns and SQLite recovers them on
//     the next open. Only an OS crash or power loss may lose the newest
//     commits (never corrupt the file), because the WAL is fsynced at
//     checkpoints rather than at each commit. Options.SyncFull closes that
//     window too.
//   - busy_timeout: waits for a lock held by another process instead of
//     failing at once.
//   - foreign_keys=ON: SQLite leaves it off by default; the schema relies on
//     it.
//   - BEGIN IMMEDIATE on the writer: takes the write lock when the
//     transaction starts, so it cannot fail halfway on a lock upgrade.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	syncMode := "NORMAL"
	if opts.SyncFull {
		syncMode = "FULL"
	}
	common := url.Values{}
	common.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous("+syncMode+")")
	// The WAL file may grow past the default 1000 pages during bursts; the
	// size cap keeps it from staying large afterwards.
	common.Add("_pragma", "journal_size_limit(67108864)")

	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	// Checkpoint every 8192 WAL pages (32 MiB) instead of 1000: the pages a
	// chat writes are a few hot leaves per room, rewritten by every batch,
	// and each checkpoint copies each of them once however often they
	// changed, so rarer checkpoints do less work per message.
	wq.Add("_pragma", "wal_autocheckpoint(8192)")
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	if err := checkWritable(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: %s is not writable (check the file's and its directory's permissions, the mount and free space): %w", path, err)
	}

	prepared, err := prepareWriter(ctx, w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	r.SetConnMaxIdleTime(0)

	s := &Store{
		prepared:   prepared,
		knownUsers: make(map[int64]struct{}),
		path:       path,
		opts:       opts,
		w:          w,
		r:          r,
		closing:    make(chan struct{}),
	}
	s.appends = groupcommit.New[*appendReq, appendResult](opts.MaxBatch, s.closing, store.ErrClosed)
	s.writerWG.Add(1)
	go s.writeLoop()
	return s, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close implements store.Store: it commits what is queued, stops the writer,
// checkpoints the WAL and closes both pools.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.writerWG.Wait()
		// Fold the WAL back into the main file so a cold start reads one file.
		// Failure is harmless: the WAL is replayed on the next open.
		for _, st := range s.prepared {
			st.Close()
		}
		_, _ = s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// toMicros and fromMicros convert between time.Time and the stored unix
// microseconds; the zero time is stored as 0.
func toMicros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// now is the store's clock, truncated to what the database keeps, so a value
// returned by a create equals the value read back later.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// classify maps SQLite errors to the store's sentinels: unique and primary key
// violations are conflicts, foreign key violations mean a referenced row is
// missing, and no rows is not found. Other errors pass through.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err.Error() == "sql: database is closed" { // database/sql exports no sentinel for it
		return store.ErrClosed
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %v", store.ErrNotFound, err)
		case sqlite3.SQLITE_CONSTRAINT_CHECK:
			return fmt.Errorf("%w: %v", store.ErrInvalid, err)
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			// Another process held the lock past busy_timeout: nothing
			// was written, and a retry may find it free.
			return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
		}
	}
	return err
}

// wrap classifies err and names the operation that failed.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: "+format+": %w", append(args, classify(err))...)
}

// isLogical reports whether err is a per-request outcome (the request was
// wrong or lost a race) rather than a failure of the database.
func isLogical(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrInvalid)
}

// checkWritable writes the header field user_version back unchanged and
// rolls back. SQLite opens a file it may not write read-only without saying
// so, BEGIN IMMEDIATE still succeeds on it, and migrate writes nothing when
// the schema is current: without this probe a read-only database was found
// only by the first chat write (a 500) while /readyz said 200.
func checkWritable(ctx context.Context, w *sql.DB) error {
	var v int64
	if err := w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	return err
}
