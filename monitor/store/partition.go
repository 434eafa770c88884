package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// On PostgreSQL the raw history is a table partitioned by day (UTC), so a
// prune drops whole partitions: dropping a day is instant where a DELETE
// of millions of rows bloats the table and the WAL. The partitions are
// history_YYYYMMDD. Rows arrive in time order, so a BRIN index on at (a
// few pages a day) serves reads by time where a B-tree would take a fifth
// of the table again.

const (
	dayMS             = int64(24 * time.Hour / time.Millisecond)
	partitionLockName = "wscanary history partitions"
	// partitionsAhead: days created ahead of the clock, so that a day
	// starts with its partition there.
	partitionsAhead = 2
)

// partitions remembers the days whose partition this process saw.
type partitions struct {
	mu   sync.Mutex
	days map[int64]bool
}

func (p *partitions) has(day int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.days[day]
}

func (p *partitions) set(day int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.days == nil {
		p.days = map[int64]bool{}
	}
	if ok {
		p.days[day] = true
	} else {
		delete(p.days, day)
	}
}

func partitionName(day int64) string { return "history_" + fromMS(day).Format("20060102") }

// partitionDay is the day (unix ms) of a partition's name; false for
// another table.
func partitionDay(name string) (int64, bool) {
	d, ok := strings.CutPrefix(name, "history_")
	if !ok || len(d) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", d)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}

// partitionHistory makes the history that migration 00009 created (a
// plain table, the same on both backends) a table partitioned by day, once,
// whichever member of a fleet comes first. The table is new and empty then;
// rows it holds all the same are moved.
func (s *Store) partitionHistory(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", partitionLockName); err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	var kind string
	if err := tx.QueryRowContext(ctx, "SELECT relkind FROM pg_class WHERE oid = 'history'::regclass").Scan(&kind); err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	if kind == "p" {
		return nil // done before
	}
	steps := []string{
		"ALTER TABLE history RENAME TO history_unpartitioned",
		"ALTER INDEX raw_by_series RENAME TO raw_unpartitioned_by_series",
		"ALTER INDEX raw_by_time RENAME TO raw_unpartitioned_by_time",
		// The columns are migration 00009's, not a copy of them.
		"CREATE TABLE history (LIKE history_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (at)",
		"CREATE INDEX raw_by_series ON history (series, at)",
		"CREATE INDEX raw_by_time ON history USING brin (at)",
	}
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("partition history: %s: %w", strings.Join(strings.Fields(q)[:3], " "), err)
		}
	}
	var days []int64
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT at - at % $1 FROM history_unpartitioned", dayMS)
	if err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	for rows.Next() {
		var d int64
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return err
		}
		days = append(days, d)
	}
	rows.Close()
	if err := s.ensureDays(ctx, tx, days); err != nil {
		return err
	}
	for _, q := range []string{"INSERT INTO history SELECT * FROM history_unpartitioned", "DROP TABLE history_unpartitioned"} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("partition history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	s.log.Info("history partitioned by day", "store", s.where)
	return nil
}

// PrepareHistory creates the raw history's partitions of the days around
// now ahead of need (PostgreSQL; nothing to do on SQLite). The daemon
// calls it at start and with every prune.
func (s *Store) PrepareHistory(ctx context.Context, now time.Time) error {
	if s.backend != Postgres {
		return nil
	}
	today := ms(now) - ms(now)%dayMS
	var days []int64
	for d := today - dayMS; d <= today+partitionsAhead*dayMS; d += dayMS {
		days = append(days, d)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history partitions: %w", err)
	}
	defer tx.Rollback()
	if err := s.ensureDays(ctx, tx, days); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history partitions: %w", err)
	}
	for _, d := range days {
		s.parts.set(d, true)
	}
	return nil
}

// ensureDays creates, in tx, the partitions of days that do not exist,
// under a lock that members take in turn.
func (s *Store) ensureDays(ctx context.Context, tx *sql.Tx, days []int64) error {
	var todo []int64
	for _, d := range days {
		if !s.parts.has(d) {
			todo = append(todo, d)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", partitionLockName); err != nil {
		return fmt.Errorf("history partitions: %w", err)
	}
	for _, d := range todo {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_class WHERE relname = $1", partitionName(d)).Scan(&n); err != nil {
			return fmt.Errorf("history partitions: %w", err)
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s PARTITION OF history FOR VALUES FROM (%d) TO (%d)", partitionName(d), d, d+dayMS)); err != nil {
			return fmt.Errorf("history partition %s: %w", partitionName(d), err)
		}
	}
	return nil
}

// ensureRows makes sure, in the transaction that inserts rows, that the
// partitions of their days exist: the days around now are made ahead, but
// a row may come from another day (a clock that jumped, a test's).
func (t *Tx) ensureRows(ctx context.Context, rows []HistoryRow) error {
	var days []int64
	for _, r := range rows {
		d := ms(r.At) - ms(r.At)%dayMS
		if !slices.Contains(days, d) && !t.s.parts.has(d) {
			days = append(days, d)
		}
	}
	return t.s.ensureDays(ctx, t.tx, days)
}

// dropPartitions drops the raw history's partitions that end at or before
// before: never a DELETE of rows. It returns the partitions dropped and
// the end of the last one (0 when none was).
func (s *Store) dropPartitions(ctx context.Context, before int64) (int, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'history'::regclass`)
	if err != nil {
		return 0, 0, fmt.Errorf("list history partitions: %w", err)
	}
	type part struct {
		name string
		day  int64
		end  int64
	}
	var parts []part
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if d, ok := partitionDay(name); ok {
			parts = append(parts, part{name, d, d + dayMS})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	dropped, end := 0, int64(0)
	for _, p := range parts {
		if p.end > before {
			continue
		}
		if err := s.dropPartition(ctx, p.name); err != nil {
			return dropped, end, err
		}
		s.parts.set(p.day, false)
		dropped++
		end = max(end, p.end)
	}
	return dropped, end, nil
}

// dropPartition drops one partition. DROP takes the parent's lock for an
// instant: bounded, so a long transaction elsewhere delays the prune to
// its next round instead of stalling every insert behind it.
func (s *Store) dropPartition(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	defer tx.Rollback()
	for _, q := range []string{"SET LOCAL lock_timeout = '5s'", "DROP TABLE IF EXISTS " + name} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	return nil
}
