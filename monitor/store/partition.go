package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// On PostgreSQL the raw history is a table partitioned by day (UTC), so a
// prune drops whole partitions: dropping a day is instant where a DELETE
// of millions of rows bloats the table and the WAL. The partitions are
// history_YYYYMMDD; a store upgraded from an unpartitioned history keeps
// its rows in history_legacy, a partition that ends where they ended.

const (
	dayMS             = int64(24 * time.Hour / time.Millisecond)
	legacyPartition   = "history_legacy"
	metaLegacyUntil   = "history.legacy_until"
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

// partitionHistory turns an unpartitioned history into a partitioned one,
// once, whichever member of a fleet comes first: the old table becomes the
// partition history_legacy, with every row in it.
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
	var until int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(at) + 1, 0) FROM history").Scan(&until); err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	steps := []string{
		"ALTER TABLE history RENAME TO " + legacyPartition,
		"ALTER INDEX history_by_check RENAME TO history_legacy_by_check",
		"ALTER INDEX history_by_time RENAME TO history_legacy_by_time",
		`CREATE TABLE history (
			at          BIGINT           NOT NULL,
			check_name  TEXT             NOT NULL,
			vantage     TEXT             NOT NULL,
			route       TEXT             NOT NULL,
			member      TEXT             NOT NULL,
			outcome     TEXT             NOT NULL,
			status      INTEGER          NOT NULL,
			cause       TEXT             NOT NULL,
			duration_ms DOUBLE PRECISION NOT NULL,
			trace_id    TEXT             NOT NULL,
			transport   TEXT             NOT NULL DEFAULT 'http1',
			reply_ms    DOUBLE PRECISION NOT NULL DEFAULT 0
		) PARTITION BY RANGE (at)`,
		"CREATE INDEX history_by_check ON history (check_name, at)",
		"CREATE INDEX history_by_time ON history (at)",
	}
	if until > 0 {
		steps = append(steps, fmt.Sprintf("ALTER TABLE history ATTACH PARTITION %s FOR VALUES FROM (MINVALUE) TO (%d)", legacyPartition, until))
	} else {
		steps = append(steps, "DROP TABLE "+legacyPartition)
	}
	for _, q := range steps {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("partition history: %s: %w", strings.Fields(q)[0]+" "+strings.Fields(q)[1], err)
		}
	}
	if err := s.setMeta(ctx, tx, metaLegacyUntil, strconv.FormatInt(until, 10)); err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("partition history: %w", err)
	}
	s.log.Info("history partitioned by day", "store", s.where, "legacy_rows_until", fromMS(until).Format(time.RFC3339))
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
// under a lock that members take in turn. A day before the legacy
// partition's end starts where it ends.
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
	var legacy string
	if err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = $1", metaLegacyUntil).Scan(&legacy); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("history partitions: %w", err)
	}
	legacyUntil, _ := strconv.ParseInt(legacy, 10, 64)
	for _, d := range todo {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_class WHERE relname = $1", partitionName(d)).Scan(&n); err != nil {
			return fmt.Errorf("history partitions: %w", err)
		}
		from, to := max(d, legacyUntil), d+dayMS
		if n > 0 || from >= to {
			continue
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s PARTITION OF history FOR VALUES FROM (%d) TO (%d)", partitionName(d), from, to)); err != nil {
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
		} else if name == legacyPartition {
			parts = append(parts, part{name, -1, -1})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	dropped, end := 0, int64(0)
	for _, p := range parts {
		if p.name == legacyPartition {
			var v string
			if err := s.db.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = $1", metaLegacyUntil).Scan(&v); err != nil {
				return dropped, end, fmt.Errorf("read %s: %w", metaLegacyUntil, err)
			}
			p.end, _ = strconv.ParseInt(v, 10, 64)
		}
		if p.end > before || p.end <= 0 {
			continue
		}
		if err := s.dropPartition(ctx, p.name); err != nil {
			return dropped, end, err
		}
		if p.day >= 0 {
			s.parts.set(p.day, false)
		} else if err := s.setMeta(ctx, s.db, metaLegacyUntil, "0"); err != nil {
			return dropped, end, fmt.Errorf("write %s: %w", metaLegacyUntil, err)
		}
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
