// Package store keeps what wscanary must not forget and what it looks back
// on: the series of every check, its incidents and where their messages
// are, the outbox of messages not yet delivered, warnings, fleet members,
// and the history of every configured attempt.
//
// Two backends run the same SQL: SQLite in the state directory by default
// (modernc.org/sqlite, pure Go, so the binary stays static), and PostgreSQL
// when a fleet of daemons shares one database. Where the dialects differ
// (placeholders, row locks, advisory locks) the difference is in one place
// here. The schema is versioned with goose and migrated at start, under an
// advisory lock on PostgreSQL so that members starting together take turns.
//
// The store decides nothing: the incident engine does, inside a transaction
// (Update) that the store runs and, on PostgreSQL, serialises per check.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// FileName is the SQLite database inside the state directory.
const FileName = "wscanary.db"

// Backend names the database behind a Store.
type Backend string

const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configure Open.
type Options struct {
	// DSN is "" for SQLite in Dir, or a postgres:// URL.
	DSN string
	// Dir is the state directory (SQLite's file, a state.json to import).
	Dir string
	// Beside opens an existing store beside a running daemon (the history
	// and silence commands): no migration, no import, no lock. Its writes
	// wait for the daemon's, like any SQLite writer (busy timeout).
	Beside bool
	Logger *slog.Logger
	// schema, when not 0, migrates to that version only and stops there:
	// tests of an upgrade make yesterday's store with it.
	schema int64
}

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	backend Backend
	log     *slog.Logger
	lock    *os.File // SQLite: an exclusive lock on the state directory
	where   string   // for messages: the file, or the database host
	// writing serialises this process's writes to SQLite, which takes one
	// writer at a time: writers queued here wait their turn, where
	// writers in SQLite's busy handler poll and sleep, and with a dozen
	// deliveries beside the feed the polling ate the throughput (three
	// messages a second on a busy machine). A channel, so that a writer's
	// deadline holds while it waits.
	writing chan struct{}
	// parts are the raw history's partitions this process saw (PostgreSQL).
	parts partitions
	// series are the series ids known to be named in series_keys.
	seriesIDs namedSeries
	// stmts are the statements prepared once (prepared), by query.
	stmts sync.Map
}

// write takes this process's turn to write, for SQLite; the returned func
// gives it back. It fails when ctx ends first.
func (s *Store) write(ctx context.Context) (func(), error) {
	if s.writing == nil {
		return func() {}, nil
	}
	select {
	case s.writing <- struct{}{}:
		return func() { <-s.writing }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store %s: waiting to write: %w", s.where, ctx.Err())
	}
}

// exec runs one write statement outside a transaction.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	done, err := s.write(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return s.db.ExecContext(ctx, s.q(query), args...)
}

// Open connects, migrates the schema and, once, imports the state.json of
// releases before the store. A state directory already used by another
// wscanary is an error: two daemons on one SQLite file would each alert.
// OpenBeside opens the store of a configuration to write beside a running
// daemon (silences): PostgreSQL as usual (migrations are safe together),
// the daemon's SQLite file without its lock, and a store no daemon created
// yet is created.
func OpenBeside(ctx context.Context, opts Options) (*Store, error) {
	opts.Beside = false
	if opts.DSN == "" {
		if _, err := os.Stat(filepath.Join(opts.Dir, FileName)); err == nil {
			opts.Beside = true
		}
	}
	return Open(ctx, opts)
}

func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: opts.Logger}
	var err error
	if opts.DSN == "" {
		err = s.openSQLite(opts)
	} else {
		err = s.openPostgres(opts)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.db.PingContext(pingCtx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store %s: %w", s.where, err)
	}
	if opts.Beside {
		var v sql.NullInt64
		if err := s.db.QueryRowContext(ctx, "SELECT MAX(version_id) FROM goose_db_version").Scan(&v); err != nil || !v.Valid {
			s.Close()
			return nil, fmt.Errorf("store %s holds no wscanary data yet", s.where)
		}
		return s, nil
	}
	if err := s.migrate(ctx, opts.schema); err != nil {
		s.Close()
		return nil, err
	}
	if opts.schema != 0 {
		return s, nil
	}
	if err := s.prepareInserts(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.backend == SQLite {
		if err := s.importLegacy(ctx, opts.Dir); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.backend == Postgres {
		if err := s.partitionHistory(ctx); err != nil {
			s.Close()
			return nil, err
		}
		if err := s.PrepareHistory(ctx, time.Now()); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) openSQLite(opts Options) error {
	s.backend = SQLite
	if opts.Dir == "" {
		return errors.New("store: a state directory is needed for SQLite")
	}
	path := filepath.Join(opts.Dir, FileName)
	s.where = path
	if !opts.Beside {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return fmt.Errorf("state dir %s: %w", opts.Dir, err)
		}
		f, err := os.OpenFile(filepath.Join(opts.Dir, "wscanary.lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("state dir %s is not writable: %w", opts.Dir, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return fmt.Errorf("state dir %s is in use by another wscanary (lock: %w)", opts.Dir, err)
		}
		s.lock = f
		if err := private(path); err != nil {
			return err
		}
	} else if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	// WAL lets the history command and the status page read while runs
	// write; NORMAL syncs at checkpoints, which WAL keeps crash-safe;
	// immediate transactions take the write lock up front, so a
	// read-then-write transaction never fails with SQLITE_BUSY half way.
	// The path is escaped: a '#' or '?' in a directory name would end it.
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"}
	dsn := u.String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s.db = db
	s.writing = make(chan struct{}, 1)
	return nil
}

// private makes the database and its -wal and -shm files readable by the
// daemon's user only, whatever the umask and the directory's mode (a
// packaged /var/lib/wscanary is 0755): they hold quoted bodies, history
// and message ids. SQLite gives -wal and -shm the mode of the database
// file, so creating that one 0600 first is enough for new files; existing
// ones are tightened.
func private(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("store %s: tighten the mode of %s: %w", path, p, err)
			}
		}
	}
	return nil
}

func (s *Store) openPostgres(opts Options) error {
	s.backend = Postgres
	s.where = "postgres"
	db, err := sql.Open("pgx", opts.DSN)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	return nil
}

// migrate applies the embedded migrations. On PostgreSQL members that
// start together take turns on an advisory lock, polled every second.
func (s *Store) migrate(ctx context.Context, upTo int64) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	dialect := goose.DialectSQLite3
	var opts []goose.ProviderOption
	if s.backend == Postgres {
		dialect = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, s.db, sub, opts...)
	if err != nil {
		return fmt.Errorf("store %s: migrations: %w", s.where, err)
	}
	var res []*goose.MigrationResult
	if upTo != 0 {
		res, err = p.UpTo(ctx, upTo)
	} else {
		res, err = p.Up(ctx)
	}
	if err != nil {
		return fmt.Errorf("store %s: migrate: %w", s.where, err)
	}
	for _, r := range res {
		s.log.Info("store schema migrated", "store", s.where, "version", r.Source.Version, "took", r.Duration.String())
	}
	return nil
}

// Backend says which database is behind the store.
func (s *Store) Backend() Backend { return s.backend }

// Shared reports whether several daemons may share the store (a fleet).
func (s *Store) Shared() bool { return s.backend == Postgres }

// Where names the store in messages: the SQLite file, or "postgres".
func (s *Store) Where() string { return s.where }

// Close closes the database and releases the state directory.
func (s *Store) Close() error {
	var err error
	s.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	if s.db != nil {
		err = s.db.Close()
	}
	if s.lock != nil {
		// Unlock before closing: a child process forked meanwhile (a token
		// command, say) shares the lock's open file until it execs, and a
		// close alone would leave the directory locked until then.
		syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
	return err
}

// q adapts a query written with ? placeholders to the backend: pgx wants
// $1, $2, ... (modernc.org/sqlite takes both, but ? is the fast one for
// multi-row inserts). No query here has a ? inside a string literal.
func (s *Store) q(query string) string {
	if s.backend != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func (s *Store) setMeta(ctx context.Context, ex execer, name, value string) error {
	_, err := ex.ExecContext(ctx, s.q("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"), name, value)
	return err
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
