package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// The history's two tiers (migration 00009): raw attempts in history for
// history.raw, and hourly rollups per series in rollups for history.keep.
// meta's rollup.until is the hour up to which raw rows are rolled up; a
// prune never deletes a raw row at or after it, so every run is in one of
// the tiers, and a read takes rollups before it and raw rows from it.

const (
	hourMS = int64(time.Hour / time.Millisecond)
	// RollupLag: an hour is rolled up once it has been over this long, so
	// the runs of its last minutes (recorded in batches, or handed over by
	// a member that was cut off) are in it.
	RollupLag = 5 * time.Minute
	// rollupHoursPerCall bounds one Rollup call (an upgrade rolls up its
	// old rows an hour a transaction, a few hundred hours a call).
	rollupHoursPerCall = 500
	metaRollupUntil    = "rollup.until"
	// metaRawFrom: raw rows before it were pruned (0: none were).
	metaRawFrom = "history.raw_from"
	// metaLegacyUntil: where the rows of history_legacy end (0: the table
	// is gone, or was empty).
	metaLegacyUntil = "history.legacy_until"
)

// tally sums up runs of one series: what a rollup row holds, and what
// Stats adds up from raw rows and rollups alike, so that both give the
// same figures on the hours they share.
type tally struct {
	runs, upgraded int
	first, last    int64 // unix ms
	outcomes       map[string]int
	statuses       map[string]int
	causes         map[string]int // of the runs that did not upgrade
	latency, reply durations
}

func newTally() *tally {
	return &tally{outcomes: map[string]int{}, statuses: map[string]int{}, causes: map[string]int{}}
}

// add counts one raw attempt.
func (t *tally) add(at int64, outcome string, status int, cause string, d, reply float64) {
	t.runs++
	if t.first == 0 || at < t.first {
		t.first = at
	}
	t.last = max(t.last, at)
	t.outcomes[outcome]++
	t.statuses[strconv.Itoa(status)]++
	if report.Outcome(outcome) == report.OutcomeUpgraded {
		t.upgraded++
		t.latency.add(d)
		if reply > 0 {
			t.reply.add(reply)
		}
	} else {
		t.causes[cause]++
	}
}

// merge adds another tally (a rollup row) to this one.
func (t *tally) merge(o *tally) {
	t.runs += o.runs
	t.upgraded += o.upgraded
	if t.first == 0 || (o.first != 0 && o.first < t.first) {
		t.first = o.first
	}
	t.last = max(t.last, o.last)
	for _, p := range []struct{ to, from map[string]int }{{t.outcomes, o.outcomes}, {t.statuses, o.statuses}, {t.causes, o.causes}} {
		for k, n := range p.from {
			p.to[k] += n
		}
	}
	t.latency.merge(&o.latency)
	t.reply.merge(&o.reply)
}

// stat is the tally as the history shows it.
func (t *tally) stat(k SeriesKey) Stat {
	st := Stat{SeriesKey: k, Runs: t.runs, Upgraded: t.upgraded, First: fromMS(t.first), Last: fromMS(t.last), Failures: map[report.Cause]int{},
		P50MS: t.latency.quantile(0.5), P95MS: t.latency.quantile(0.95), P99MS: t.latency.quantile(0.99), ReplyP50MS: t.reply.quantile(0.5)}
	for c, n := range t.causes {
		st.Failures[report.Cause(c)] = n
	}
	return st
}

// encodeCounts writes counts as "key:n" pairs, sorted, space separated.
// Keys are outcomes, statuses and causes: words without spaces or colons.
func encodeCounts(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(m[k]))
	}
	return b.String()
}

func decodeCounts(s string, into map[string]int) error {
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return fmt.Errorf("bad count %q", f)
		}
		into[k] += n
	}
	return nil
}

// encode writes the histogram's non-empty buckets as "bucket:n" pairs.
func (h *durations) encode() string {
	var b strings.Builder
	for i, n := range h.buckets {
		if n == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

func (h *durations) decode(s string) error {
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		i, err1 := strconv.Atoi(k)
		n, err2 := strconv.Atoi(v)
		if !ok || err1 != nil || err2 != nil || i < 0 || i >= len(h.buckets) {
			return fmt.Errorf("bad histogram bucket %q", f)
		}
		h.buckets[i] += n
		h.n += n
	}
	return nil
}

func (h *durations) merge(o *durations) {
	for i, n := range o.buckets {
		h.buckets[i] += n
	}
	h.n += o.n
}

// RolledUntil is the hour up to which raw history is rolled up (zero when
// nothing is yet).
func (s *Store) RolledUntil(ctx context.Context) (time.Time, error) {
	v, err := s.metaInt(ctx, metaRollupUntil)
	return fromMS(v), err
}

// lockRolledUntil reads rollup.until in tx, locked on PostgreSQL: one
// member rolls up an hour, the others wait and find it done.
func (t *Tx) lockRolledUntil(ctx context.Context) (int64, error) {
	s, q := t.s, t.tx
	query := "SELECT value FROM meta WHERE name = ?"
	if s.backend == Postgres {
		query += " FOR UPDATE"
	}
	var v string
	if err := q.QueryRowContext(ctx, s.q(query), metaRollupUntil).Scan(&v); err != nil {
		return 0, fmt.Errorf("read %s: %w", metaRollupUntil, err)
	}
	return strconv.ParseInt(v, 10, 64)
}

// Rollup rolls up every complete hour of raw history that ended RollupLag
// before now and is not rolled up yet, an hour a transaction (a short turn
// at the store's writer each, so records go on between them), at most
// rollupHoursPerCall hours a call. It returns the hours rolled up.
func (s *Store) Rollup(ctx context.Context, now time.Time) (int, error) {
	end := ms(now.Add(-RollupLag).Truncate(time.Hour))
	n := 0
	for n < rollupHoursPerCall {
		did, more, err := s.rollupHour(ctx, end)
		if did {
			n++
		}
		if err != nil || !more {
			return n, err
		}
	}
	return n, nil
}

// rollupHour rolls up the first hour not rolled up, if it ended by end:
// did says it rolled up one with rows, more that another may follow. The
// hour's raw rows are read outside the write (a read waits for no writer),
// and the write, short, stores its rollups only if no one else (another
// member of a fleet) did meanwhile.
func (s *Store) rollupHour(ctx context.Context, end int64) (did, more bool, err error) {
	stored, err := s.metaInt(ctx, metaRollupUntil)
	if err != nil {
		return false, false, err
	}
	from := stored
	if from == 0 || from%hourMS != 0 {
		// The first rollup (a new store, or one upgraded with its raw
		// rows): from the oldest hour with a row.
		if from, err = s.firstRawHour(ctx, s.db, 0, end); err != nil {
			return false, false, err
		}
	}
	by := tallies{}
	next := from
	if from+hourMS <= end {
		if err := s.scanRaw(ctx, s.db, "WHERE h.at >= ? AND h.at < ?", []any{from, from + hourMS}, by); err != nil {
			return false, false, err
		}
		if legacy, err := s.metaInt(ctx, metaLegacyUntil); err != nil {
			return false, false, err
		} else if from < legacy {
			if err := s.scanLegacy(ctx, s.db, from, from+hourMS, by); err != nil {
				return false, false, err
			}
		}
		next = from + hourMS
		if len(by) == 0 {
			// A gap (the daemon was down): on to the next hour with a row.
			if next, err = s.firstRawHour(ctx, s.db, next, end); err != nil {
				return false, false, err
			}
		}
	}
	if next == stored {
		return false, false, nil
	}
	err = s.Update(ctx, func(tx *Tx) error {
		did, more = false, false
		cur, err := tx.lockRolledUntil(ctx)
		if err != nil || cur != stored {
			more = err == nil // someone else rolled it up: look again
			return err
		}
		if err := tx.insertRollups(ctx, from, by); err != nil {
			return err
		}
		did, more = len(by) > 0, next < end
		return tx.setRolledUntil(ctx, next)
	})
	return did, more, err
}

// firstRawHour is the start of the hour of the oldest raw row at or after
// from and before end (in history, or history_legacy while it is there);
// end when there is none.
func (s *Store) firstRawHour(ctx context.Context, q querier, from, end int64) (int64, error) {
	first := end
	tables := []string{"history"}
	if legacy, err := s.metaInt(ctx, metaLegacyUntil); err != nil {
		return 0, err
	} else if from < legacy {
		tables = append(tables, "history_legacy")
	}
	for _, table := range tables {
		var at sql.NullInt64
		if err := q.QueryRowContext(ctx, s.q("SELECT MIN(at) FROM "+table+" WHERE at >= ? AND at < ?"), from, end).Scan(&at); err != nil {
			return 0, fmt.Errorf("read %s: %w", table, err)
		}
		if at.Valid {
			first = min(first, at.Int64-at.Int64%hourMS)
		}
	}
	return first, nil
}

// metaInt is a number kept in meta (0 when it is not there).
func (s *Store) metaInt(ctx context.Context, name string) (int64, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q("SELECT value FROM meta WHERE name = ?"), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", name, err)
	}
	return strconv.ParseInt(v, 10, 64)
}

func (t *Tx) setRolledUntil(ctx context.Context, until int64) error {
	return t.exec(ctx, "UPDATE meta SET value = ? WHERE name = ?", strconv.FormatInt(until, 10), metaRollupUntil)
}

// rawCols read a raw row with its series' key (where may name k.check_name
// and h.at).
const rawCols = `SELECT h.at, k.check_name, k.vantage, k.route, k.transport, h.outcome, h.status, h.cause, h.duration_us, h.reply_us
	FROM history h JOIN series_keys k ON k.id = h.series `

// scanRaw adds the raw rows that where selects (on h, history, and k,
// series_keys) to by.
func (s *Store) scanRaw(ctx context.Context, q querier, where string, args []any, by tallies) error {
	rows, err := q.QueryContext(ctx, s.q(rawCols+where), args...)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var at, d, reply int64
		var k SeriesKey
		var outcome, cause string
		var status int
		if err := rows.Scan(&at, &k.Check, &k.Vantage, &k.Route, &k.Transport, &outcome, &status, &cause, &d, &reply); err != nil {
			return fmt.Errorf("read history: %w", err)
		}
		by.tally(k).add(at, outcome, status, cause, float64(d)/1000, float64(reply)/1000)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	return nil
}

// scanLegacy adds the rows of the history kept before rollups existed
// (history_legacy, one row per attempt with its key spelled out) in
// [from, to) to by.
func (s *Store) scanLegacy(ctx context.Context, q querier, from, to int64, by tallies) error {
	rows, err := q.QueryContext(ctx, s.q(`SELECT at, check_name, vantage, route, transport, outcome, status, cause, duration_ms, reply_ms
		FROM history_legacy WHERE at >= ? AND at < ?`), from, to)
	if err != nil {
		return fmt.Errorf("read history_legacy: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var at int64
		var k SeriesKey
		var outcome, cause string
		var status int
		var d, reply float64
		if err := rows.Scan(&at, &k.Check, &k.Vantage, &k.Route, &k.Transport, &outcome, &status, &cause, &d, &reply); err != nil {
			return fmt.Errorf("read history_legacy: %w", err)
		}
		// As if written today: microseconds.
		by.tally(k).add(at, outcome, status, cause, float64(micros(d))/1000, float64(micros(reply))/1000)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read history_legacy: %w", err)
	}
	return nil
}

// tallies are tallies by series.
type tallies map[SeriesKey]*tally

func (by tallies) tally(k SeriesKey) *tally {
	tl := by[k]
	if tl == nil {
		tl = newTally()
		by[k] = tl
	}
	return tl
}

const (
	rollupCols    = "series, hour, runs, upgraded, first_at, last_at, outcomes, statuses, causes, latency, reply"
	seriesKeyCols = "id, check_name, vantage, route, transport, member"
)

// insertRollups writes one hour's tallies, in multi-row inserts. A
// rollup's series is its key without a member (seriesID with ""): runs of
// a series recorded by several members add up.
func (t *Tx) insertRollups(ctx context.Context, hour int64, by tallies) error {
	keys := slices.SortedFunc(maps.Keys(by), func(a, b SeriesKey) int {
		if less(a, b) {
			return -1
		}
		if less(b, a) {
			return 1
		}
		return 0
	})
	names := make([]any, 0, 6*len(keys))
	vals := make([]any, 0, 11*len(keys))
	for _, k := range keys {
		tl, id := by[k], seriesID(k, "")
		names = append(names, id, k.Check, k.Vantage, string(k.Route), string(k.Transport.OrHTTP1()), "")
		vals = append(vals, id, hour, tl.runs, tl.upgraded, tl.first, tl.last,
			encodeCounts(tl.outcomes), encodeCounts(tl.statuses), encodeCounts(tl.causes), tl.latency.encode(), tl.reply.encode())
	}
	if err := t.insertMany(ctx, "series_keys", seriesKeyCols, 6, names, " ON CONFLICT (id) DO NOTHING"); err != nil {
		return err
	}
	// An hour is rolled up once (rollup.until moves in the same
	// transaction); a row already there means meta was reset by hand, and
	// the first one stands.
	return t.insertMany(ctx, "rollups", rollupCols, 11, vals, ` ON CONFLICT (series, hour) DO NOTHING`)
}

// insertMany inserts rows of n columns (vals, row after row) in multi-row
// INSERTs of 512 rows, the rest in chunks of powers of two: a handful of
// statements per table, prepared when the store opens (prepareInserts) and
// then only executed. One round trip per chunk, not per row.
func (t *Tx) insertMany(ctx context.Context, table, cols string, n int, vals []any, suffix string) error {
	rows := len(vals) / n
	for done := 0; done < rows; {
		k := insertChunk
		for k > rows-done {
			k /= 2
		}
		query := insertSQL(table, cols, n, k) + suffix
		var st *sql.Stmt
		if p, ok := t.s.stmts.Load(query); ok {
			// On the transaction's own connection: database/sql prepares
			// it there once. Never a prepare on another connection while
			// this transaction holds SQLite's write turn.
			st = t.tx.StmtContext(ctx, p.(*sql.Stmt))
		} else {
			var err error
			if st, err = t.tx.PrepareContext(ctx, t.s.q(query)); err != nil {
				return fmt.Errorf("write %s: %w", table, err)
			}
		}
		_, err := st.ExecContext(ctx, vals[done*n:(done+k)*n]...)
		st.Close()
		if err != nil {
			return fmt.Errorf("write %s: %w", table, err)
		}
		done += k
	}
	return nil
}

// insertChunk is the most rows one INSERT takes.
const insertChunk = 512

// inserts are the multi-row inserts of the store: table, columns, their
// number and the conflict clause.
var inserts = []struct {
	table, cols string
	n           int
	suffix      string
}{
	{"history", historyInsertCols, historyCols, ""},
	{"series_keys", seriesKeyCols, 6, " ON CONFLICT (id) DO NOTHING"},
	{"rollups", rollupCols, 11, " ON CONFLICT (series, hour) DO NOTHING"},
}

// prepareInserts prepares every insert's chunk sizes once, at open.
func (s *Store) prepareInserts(ctx context.Context) error {
	for _, in := range inserts {
		for k := insertChunk; k >= 1; k /= 2 {
			query := insertSQL(in.table, in.cols, in.n, k) + in.suffix
			st, err := s.db.PrepareContext(ctx, s.q(query))
			if err != nil {
				return fmt.Errorf("store %s: prepare insert into %s: %w", s.where, in.table, err)
			}
			s.stmts.Store(query, st)
		}
	}
	return nil
}

// insertSQL is INSERT INTO table (cols) VALUES (?,..),(?,..) for k rows.
func insertSQL(table, cols string, n, k int) string {
	var b strings.Builder
	b.Grow(len(table) + len(cols) + 32 + k*(2*n+3))
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(cols)
	b.WriteString(") VALUES ")
	for r := range k {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range n {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	return b.String()
}

// scanRollups adds the rollups of the hours in [from, to) to by.
func (s *Store) scanRollups(ctx context.Context, from, to int64, check string, by tallies) error {
	where, args := "WHERE r.hour >= ? AND r.hour < ?", []any{from, to}
	if check != "" {
		where, args = "WHERE k.check_name = ? AND r.hour >= ? AND r.hour < ?", []any{check, from, to}
	}
	return s.eachRollup(ctx, where, args, func(k SeriesKey, _ int64, tl *tally) {
		if have := by[k]; have != nil {
			have.merge(tl)
		} else {
			by[k] = tl
		}
	})
}

// eachRollup calls fn with every rollup row that where selects (on r,
// rollups, and k, series_keys).
func (s *Store) eachRollup(ctx context.Context, where string, args []any, fn func(SeriesKey, int64, *tally)) error {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT k.check_name, k.vantage, k.route, k.transport, r.hour, r.runs, r.upgraded,
		r.first_at, r.last_at, r.outcomes, r.statuses, r.causes, r.latency, r.reply FROM rollups r JOIN series_keys k ON k.id = r.series `+where), args...)
	if err != nil {
		return fmt.Errorf("read rollups: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k SeriesKey
		var hour int64
		var outcomes, statuses, causes, latency, reply string
		tl := newTally()
		if err := rows.Scan(&k.Check, &k.Vantage, &k.Route, &k.Transport, &hour, &tl.runs, &tl.upgraded, &tl.first, &tl.last,
			&outcomes, &statuses, &causes, &latency, &reply); err != nil {
			return fmt.Errorf("read rollups: %w", err)
		}
		err := errors.Join(decodeCounts(outcomes, tl.outcomes), decodeCounts(statuses, tl.statuses), decodeCounts(causes, tl.causes),
			tl.latency.decode(latency), tl.reply.decode(reply))
		if err != nil {
			return fmt.Errorf("read rollups: %s %d: %w", k.Check, hour, err)
		}
		fn(k, hour, tl)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read rollups: %w", err)
	}
	return nil
}

// Footprint is what the history takes on disk, indexes included.
type Footprint struct {
	RawRows, RawBytes       int64
	RollupRows, RollupBytes int64
}

// Footprint measures the history's two tiers on disk (SQLite: its pages,
// from dbstat; PostgreSQL: the relations, every partition included).
func (s *Store) Footprint(ctx context.Context) (Footprint, error) {
	var f Footprint
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM history").Scan(&f.RawRows); err != nil {
		return f, fmt.Errorf("count history: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM rollups").Scan(&f.RollupRows); err != nil {
		return f, fmt.Errorf("count rollups: %w", err)
	}
	raw := `SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat d JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = 'history'`
	rollups := `SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat d JOIN sqlite_master m ON m.name = d.name WHERE m.tbl_name = 'rollups'`
	if s.backend == Postgres {
		raw = `SELECT COALESCE(SUM(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits WHERE inhparent = 'history'::regclass`
		rollups = `SELECT pg_total_relation_size('rollups')`
	}
	if err := s.db.QueryRowContext(ctx, raw).Scan(&f.RawBytes); err != nil {
		return f, fmt.Errorf("size of history: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, rollups).Scan(&f.RollupBytes); err != nil {
		return f, fmt.Errorf("size of rollups: %w", err)
	}
	return f, nil
}
