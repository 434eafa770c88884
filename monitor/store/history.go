package store

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// SeriesKey names a series.
type SeriesKey struct {
	Check   string       `json:"check"`
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`
	// Transport is http1 or http2.
	Transport report.Transport `json:"transport"`
}

// AttemptKey is the series an attempt of check belongs to.
func AttemptKey(check string, a report.Attempt) SeriesKey {
	return SeriesKey{Check: check, Vantage: a.Vantage, Route: a.Route, Transport: a.Transport.OrHTTP1()}
}

// Stat sums up a series' history over a window.
type Stat struct {
	SeriesKey
	Runs     int `json:"runs"`
	Upgraded int `json:"upgraded"`
	// P50MS, P95MS and P99MS are handshake times in milliseconds, within
	// 5% (the histogram's buckets, in raw rows and rollups alike).
	P50MS float64 `json:"p50_ms"`
	P95MS float64 `json:"p95_ms"`
	P99MS float64 `json:"p99_ms"`
	// ReplyP50MS is the median time from the upgrade to the first expected
	// message, 0 when the check expects none.
	ReplyP50MS float64 `json:"reply_p50_ms,omitempty"`
	// Failures counts the runs that did not upgrade, by cause.
	Failures map[report.Cause]int `json:"failures"`
	First    time.Time            `json:"first"`
	Last     time.Time            `json:"last"`
}

// Uptime is the share of runs that upgraded, in percent.
func (s Stat) Uptime() float64 {
	if s.Runs == 0 {
		return 0
	}
	return 100 * float64(s.Upgraded) / float64(s.Runs)
}

// Stats reads the history since a time, per series (of one check when
// check is not ""). Within the raw window it reads every attempt; further
// back it reads the hourly rollups (from the hour of since) up to where
// they end and raw attempts from there. Both sum up into the same tallies
// with the same latency buckets, so uptime and percentiles agree on the
// hours they share.
func (s *Store) Stats(ctx context.Context, since time.Time, check string) ([]Stat, error) {
	by := tallies{}
	from, err := s.rawReadFrom(ctx, since)
	if err != nil {
		return nil, err
	}
	if from > ms(since) {
		if err := s.scanRollups(ctx, ms(since)-ms(since)%hourMS, from, check, by); err != nil {
			return nil, err
		}
	}
	where, args := "WHERE h.at >= ?", []any{max(from, ms(since))}
	if check != "" {
		where, args = "WHERE k.check_name = ? AND h.at >= ?", []any{check, max(from, ms(since))}
	}
	if err := s.scanRaw(ctx, s.db, where, args, by); err != nil {
		return nil, err
	}
	out := make([]Stat, 0, len(by))
	for k, tl := range by {
		out = append(out, tl.stat(k))
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].SeriesKey, out[j].SeriesKey) })
	return out, nil
}

// rawReadFrom is where a read since a time takes raw rows from: since
// itself when the raw rows since then are all there, else where the
// rollups end (rollups before, raw rows from there).
func (s *Store) rawReadFrom(ctx context.Context, since time.Time) (int64, error) {
	rawFrom, err := s.metaInt(ctx, metaRawFrom)
	if err != nil {
		return 0, err
	}
	if rawFrom <= ms(since) {
		return ms(since), nil
	}
	until, err := s.metaInt(ctx, metaRollupUntil)
	if err != nil {
		return 0, err
	}
	return max(until, ms(since)), nil
}

func less(a, b SeriesKey) bool {
	if a.Check != b.Check {
		return a.Check < b.Check
	}
	if a.Vantage != b.Vantage {
		return a.Vantage < b.Vantage
	}
	if a.Route != b.Route {
		return a.Route < b.Route
	}
	return a.Transport < b.Transport
}

// durations is a histogram of handshake times on a log scale (buckets 10%
// apart from 0.1 ms), for quantiles within 5% in constant memory.
type durations struct {
	n       int
	buckets [160]int
}

const (
	histBase  = 0.1
	histRatio = 1.1
)

func (h *durations) add(ms float64) {
	i := 0
	if ms > histBase {
		i = int(math.Log(ms/histBase) / math.Log(histRatio))
	}
	h.buckets[min(max(i, 0), len(h.buckets)-1)]++
	h.n++
}

func (h *durations) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(h.n)))
	seen := 0
	for i, c := range h.buckets {
		seen += c
		if seen >= rank {
			// the geometric middle of the bucket
			return math.Round(histBase*math.Pow(histRatio, float64(i)+0.5)*100) / 100
		}
	}
	return 0
}

// Bucket is a slice of time in a series' timeline.
type Bucket struct {
	Start    time.Time `json:"start"`
	Runs     int       `json:"runs"`
	Upgraded int       `json:"upgraded"`
}

// Timeline cuts the history since a time into n buckets per series. Past
// the raw window it reads the hourly rollups: an hour's runs count in the
// bucket its start falls in.
func (s *Store) Timeline(ctx context.Context, since time.Time, width time.Duration, n int) (map[SeriesKey][]Bucket, error) {
	w := width.Milliseconds()
	if w <= 0 || n <= 0 {
		return nil, fmt.Errorf("timeline: bad width %v or count %d", width, n)
	}
	from, err := s.rawReadFrom(ctx, since)
	if err != nil {
		return nil, err
	}
	out := map[SeriesKey][]Bucket{}
	put := func(k SeriesKey, i int64, runs, up int) {
		if i < 0 || int(i) >= n {
			return
		}
		bs := out[k]
		if bs == nil {
			bs = make([]Bucket, n)
			for j := range bs {
				bs[j].Start = since.Add(time.Duration(j) * width)
			}
			out[k] = bs
		}
		bs[i].Runs += runs
		bs[i].Upgraded += up
	}
	if from > ms(since) {
		hour0 := ms(since) - ms(since)%hourMS
		err := s.eachRollup(ctx, "WHERE r.hour >= ? AND r.hour < ?", []any{hour0, from}, func(k SeriesKey, hour int64, tl *tally) {
			put(k, (max(hour, ms(since))-ms(since))/w, tl.runs, tl.upgraded)
		})
		if err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT k.check_name, k.vantage, k.route, k.transport, h.b, COUNT(*), SUM(h.up) FROM
		(SELECT series, (at - ?) / ? AS b, CASE WHEN outcome = 'upgraded' THEN 1 ELSE 0 END AS up
		 FROM history WHERE at >= ?) h JOIN series_keys k ON k.id = h.series
		GROUP BY k.check_name, k.vantage, k.route, k.transport, h.b`), ms(since), w, max(from, ms(since)))
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k SeriesKey
		var i int64
		var runs, up int
		if err := rows.Scan(&k.Check, &k.Vantage, &k.Route, &k.Transport, &i, &runs, &up); err != nil {
			return nil, fmt.Errorf("read timeline: %w", err)
		}
		put(k, i, runs, up)
	}
	return out, rows.Err()
}

// IncidentRow is an incident as the history lists it.
type IncidentRow struct {
	ID     string       `json:"id"`
	Check  string       `json:"check"`
	Opened time.Time    `json:"opened"`
	Closed time.Time    `json:"closed,omitzero"`
	Cause  report.Cause `json:"cause"`
	Vendor string       `json:"vendor,omitempty"`
	Open   bool         `json:"open"`
}

// Incidents lists the incidents open at some point since a time.
func (s *Store) Incidents(ctx context.Context, since time.Time, check string) ([]IncidentRow, error) {
	where, args := "WHERE (closed = 0 OR closed >= ?)", []any{ms(since)}
	if check != "" {
		where, args = where+" AND check_name = ?", append(args, check)
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, check_name, state, opened, closed, decision FROM incidents `+where+` ORDER BY opened`), args...)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []IncidentRow
	for rows.Next() {
		var r IncidentRow
		var state, decision string
		var opened, closed int64
		if err := rows.Scan(&r.ID, &r.Check, &state, &opened, &closed, &decision); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		r.Opened, r.Closed, r.Open = fromMS(opened), fromMS(closed), state == "open"
		var d struct {
			Cause  report.Cause `json:"cause"`
			Vendor string       `json:"vendor"`
		}
		if jsonUnmarshal(decision, &d) == nil {
			r.Cause, r.Vendor = d.Cause, d.Vendor
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Retention says what a prune deletes: raw attempts before Raw (never
// those at or after where the rollups end: every run stays in one tier),
// and rollups, closed incidents and ended silences before Keep.
type Retention struct {
	Raw, Keep time.Time
}

// Pruned is what a prune deleted.
type Pruned struct {
	RawRows    int64 // SQLite: rows deleted
	Partitions int   // PostgreSQL: tables dropped (days, the history from before rollups)
	Rollups    int64
}

// pruneChunk: SQLite deletes this many rows a statement, each its own
// turn at the writer, so the feed's records go on between them.
const pruneChunk = 5000

// Prune deletes what r says is old enough. On PostgreSQL the raw history
// goes a day partition at a time (dropped, never a DELETE), so raw rows
// stay up to a day longer than history.raw; on SQLite in chunks.
func (s *Store) Prune(ctx context.Context, r Retention) (Pruned, error) {
	var p Pruned
	until, err := s.metaInt(ctx, metaRollupUntil)
	if err != nil {
		return p, err
	}
	cut := min(ms(r.Raw), until)
	gone := cut // raw rows before it are gone
	if s.backend == Postgres {
		if p.Partitions, gone, err = s.dropPartitions(ctx, cut); err != nil {
			return p, err
		}
	} else if p.RawRows, err = s.deleteChunks(ctx, "history", "at", cut); err != nil {
		return p, err
	}
	if err := s.pruneLegacy(ctx, cut, &p); err != nil {
		return p, err
	}
	if from, err := s.metaInt(ctx, metaRawFrom); err != nil {
		return p, err
	} else if gone > from {
		// Reads before it take rollups: raw rows are no longer all there.
		if _, err := s.exec(ctx, `INSERT INTO meta (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, metaRawFrom, strconv.FormatInt(gone, 10)); err != nil {
			return p, fmt.Errorf("write %s: %w", metaRawFrom, err)
		}
	}
	keep := ms(r.Keep)
	if p.Rollups, err = s.deleteChunks(ctx, "rollups", "hour", keep); err != nil {
		return p, err
	}
	if _, err := s.exec(ctx, `DELETE FROM group_members WHERE group_id IN
		(SELECT id FROM incidents WHERE state = 'closed' AND closed < ?)`, keep); err != nil {
		return p, fmt.Errorf("prune groups: %w", err)
	}
	if _, err := s.exec(ctx, "DELETE FROM incidents WHERE state = 'closed' AND closed < ?", keep); err != nil {
		return p, fmt.Errorf("prune incidents: %w", err)
	}
	if _, err := s.exec(ctx, "DELETE FROM silences WHERE ends < ?", keep); err != nil {
		return p, fmt.Errorf("prune silences: %w", err)
	}
	return p, nil
}

// pruneLegacy prunes the history kept before rollups (history_legacy) as
// the raw one: its rows before cut, and the table once all its rows are
// (on PostgreSQL only then, never a DELETE of rows).
func (s *Store) pruneLegacy(ctx context.Context, cut int64, p *Pruned) error {
	legacy, err := s.metaInt(ctx, metaLegacyUntil)
	if err != nil || legacy == 0 || cut == 0 {
		return err
	}
	if s.backend == SQLite {
		// A DROP of a big table holds the writer while it frees every
		// page: the rows go in chunks first.
		n, err := s.deleteChunks(ctx, "history_legacy", "at", min(cut, legacy))
		p.RawRows += n
		if err != nil {
			return err
		}
	}
	if legacy > cut {
		return nil
	}
	if _, err := s.exec(ctx, "DROP TABLE IF EXISTS history_legacy"); err != nil {
		return fmt.Errorf("prune history_legacy: %w", err)
	}
	if _, err := s.exec(ctx, "UPDATE meta SET value = '0' WHERE name = ?", metaLegacyUntil); err != nil {
		return fmt.Errorf("write %s: %w", metaLegacyUntil, err)
	}
	if s.backend == Postgres {
		p.Partitions++
	}
	return nil
}

// deleteChunks deletes table's rows whose col is before before, pruneChunk
// rows a statement.
func (s *Store) deleteChunks(ctx context.Context, table, col string, before int64) (int64, error) {
	id := "rowid"
	if s.backend == Postgres {
		id = "ctid"
	}
	chunk := fmt.Sprintf("DELETE FROM %s WHERE %s IN (SELECT %s FROM %s WHERE %s < ? LIMIT %d)", table, id, id, table, col, pruneChunk)
	var total int64
	for {
		res, err := s.exec(ctx, chunk, before)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// AllSeries returns every series of every check.
func (s *Store) AllSeries(ctx context.Context, now time.Time) ([]SeriesRow, error) {
	return s.series(ctx, s.db, "", now)
}

// OpenIncidents returns the open incidents, by check.
func (s *Store) OpenIncidents(ctx context.Context) (map[string]*Record, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+recordCols+" FROM incidents WHERE state = 'open'")
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	out := map[string]*Record{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out[r.Decision.Check] = r
	}
	return out, rows.Err()
}
