package store_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
)

// attempts is a minute-by-minute history of three series from from to to,
// with latencies spread over two orders of magnitude, failures of several
// causes, and a reply time on some runs: what rollups must keep.
func attempts(from, to time.Time, seed uint64) []store.HistoryRow {
	r := rand.New(rand.NewPCG(seed, 7))
	keys := []store.SeriesKey{
		{Check: "chat", Vantage: "us", Route: report.RouteCDN, Transport: report.TransportHTTP1},
		{Check: "chat", Vantage: "eu", Route: report.RouteDirect, Transport: report.TransportHTTP1},
		{Check: "feed", Vantage: "us", Route: report.RouteCDN, Transport: report.TransportHTTP2},
	}
	var rows []store.HistoryRow
	for at := from; at.Before(to); at = at.Add(time.Minute) {
		for i, k := range keys {
			h := store.HistoryRow{At: at.Add(time.Duration(i) * time.Second), Check: k.Check, Vantage: k.Vantage, Route: k.Route, Transport: k.Transport,
				Member: k.Vantage, Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: 2 + r.ExpFloat64()*40,
				TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
			if r.IntN(3) == 0 {
				h.ReplyMS = 5 + r.Float64()*100
			}
			switch r.IntN(20) {
			case 0:
				h.Outcome, h.Status, h.Cause, h.DurationMS, h.ReplyMS = report.OutcomeRefused, 403, report.CauseCDNBlocked, 3, 0
			case 1:
				h.Outcome, h.Status, h.Cause, h.DurationMS, h.ReplyMS = report.OutcomeRefused, 401, report.CauseTokenExpired, 4, 0
			case 2:
				h.Outcome, h.Status, h.Cause, h.DurationMS, h.ReplyMS = report.OutcomeNoAnswer, 0, report.CauseTimeout, 10000, 0
			}
			rows = append(rows, h)
		}
	}
	return rows
}

func addHistory(t *testing.T, s *store.Store, rows []store.HistoryRow) {
	t.Helper()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows) }); err != nil {
		t.Fatal(err)
	}
}

// sameStats fails unless two reads of the history give the same figures.
func sameStats(t *testing.T, what string, got, want []store.Stat) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d series, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		same := g.SeriesKey == w.SeriesKey && g.Runs == w.Runs && g.Upgraded == w.Upgraded && g.P50MS == w.P50MS && g.P95MS == w.P95MS &&
			g.P99MS == w.P99MS && g.ReplyP50MS == w.ReplyP50MS && g.First.Equal(w.First) && g.Last.Equal(w.Last) && len(g.Failures) == len(w.Failures)
		for c, n := range w.Failures {
			same = same && g.Failures[c] == n
		}
		if !same {
			t.Fatalf("%s: series %d\n got  %+v\n want %+v", what, i, g, w)
		}
	}
}

func rawCount(t *testing.T, s *store.Store, from, to time.Time) int {
	t.Helper()
	return countIn(t, s, "history", from, to)
}

// countIn counts a history table's rows in [from, to); -1 when the table
// is gone.
func countIn(t *testing.T, s *store.Store, table string, from, to time.Time) int {
	t.Helper()
	var n int
	q := "SELECT COUNT(*) FROM " + table + " WHERE at >= ? AND at < ?"
	if s.Backend() == store.Postgres {
		q = "SELECT COUNT(*) FROM " + table + " WHERE at >= $1 AND at < $2"
		var exists bool
		if err := s.DB().QueryRow("SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || !exists {
			return -1
		}
	} else {
		var k int
		if err := s.DB().QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = ?", table).Scan(&k); err != nil || k == 0 {
			return -1
		}
	}
	if err := s.DB().QueryRow(q, from.UnixMilli(), to.UnixMilli()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRollupsAgreeWithRawRows: eight hours across midnight, rolled up and
// pruned at 02:00. The history read past the raw window (rollups, then raw
// rows) gives the same runs, uptime, failures by cause and percentiles as
// the raw rows gave before, and the same timeline. PostgreSQL drops the
// first day's partition and deletes no row of the second; SQLite deletes
// the rows before the cut.
func TestRollupsAgreeWithRawRows(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() *store.Store) {
		s := open()
		ctx := context.Background()
		midnight := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		from, to := midnight.Add(-4*time.Hour), midnight.Add(4*time.Hour)
		addHistory(t, s, attempts(from, to, 1))
		before, err := s.Stats(ctx, from, "")
		if err != nil || len(before) != 3 {
			t.Fatalf("stats %v, %v", before, err)
		}
		tlBefore, err := s.Timeline(ctx, from, time.Hour, 8)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.Rollup(ctx, to.Add(10*time.Minute)); err != nil || n != 8 {
			t.Fatalf("rolled up %d hours, %v; want 8", n, err)
		}
		if n, err := s.Rollup(ctx, to.Add(10*time.Minute)); err != nil || n != 0 {
			t.Fatalf("rolled up %d hours again, %v", n, err)
		}
		secondDay := rawCount(t, s, midnight, to)
		cut := midnight.Add(2 * time.Hour)
		p, err := s.Prune(ctx, store.Retention{Raw: cut, Keep: from.Add(-24 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Backend() == store.Postgres {
			if p != (store.Pruned{Partitions: 1}) || rawCount(t, s, midnight, to) != secondDay || rawCount(t, s, from, midnight) != 0 {
				t.Fatalf("pruned %+v; the second day keeps %d of %d raw rows, the first %d", p, rawCount(t, s, midnight, to), secondDay,
					rawCount(t, s, from, midnight))
			}
		} else if want := int64(6 * 60 * 3); p.RawRows != want || rawCount(t, s, from, cut) != 0 {
			t.Fatalf("pruned %+v, want %d raw rows", p, want)
		}
		after, err := s.Stats(ctx, from, "")
		if err != nil {
			t.Fatal(err)
		}
		sameStats(t, "from rollups", after, before)
		one, err := s.Stats(ctx, from, "feed")
		if err != nil || len(one) != 1 {
			t.Fatalf("one check: %v, %v", one, err)
		}
		sameStats(t, "one check from rollups", one, before[2:])
		tlAfter, err := s.Timeline(ctx, from, time.Hour, 8)
		if err != nil {
			t.Fatal(err)
		}
		for k, bs := range tlBefore {
			for i, b := range bs {
				if a := tlAfter[k][i]; a != b {
					t.Fatalf("%v hour %d: %+v from rollups, %+v from raw rows", k, i, a, b)
				}
			}
		}
	})
}

// TestUpgradeRollsUpOldRows: a store of the release before rollups (schema
// 8) with three days of raw history is opened by this one: the old rows
// stay in history_legacy until they are rolled up and older than the raw
// window, the history of those days then reads the same from the rollups
// as it read from the rows, and new rows go to the new history
// (PostgreSQL: partitioned by day).
func TestUpgradeRollsUpOldRows(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			opts := store.Options{Dir: t.TempDir()}
			if backend == "postgres" {
				opts = store.Options{DSN: postgres(t).NewDatabaseT(t)}
			}
			upgrade(t, opts)
		})
	}
}

func upgrade(t *testing.T, opts store.Options) {
	ctx := context.Background()
	from := time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)
	to := from.Add(3 * 24 * time.Hour)
	rows := attempts(from, to, 2)
	// What these rows read as in a store of this version, written there.
	fresh := openT(t, store.Options{Dir: t.TempDir()})
	addHistory(t, fresh, rows)
	want, err := fresh.Stats(ctx, from, "")
	if err != nil || len(want) != 3 {
		t.Fatalf("stats %v, %v", want, err)
	}

	old, err := store.OpenAtSchema(ctx, opts, 8)
	if err != nil {
		t.Fatal(err)
	}
	q := "INSERT INTO history (at, check_name, vantage, route, transport, member, outcome, status, cause, duration_ms, reply_ms, trace_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
	if old.Backend() == store.Postgres {
		q = "INSERT INTO history (at, check_name, vantage, route, transport, member, outcome, status, cause, duration_ms, reply_ms, trace_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)"
	}
	tx, err := old.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := tx.Exec(q, r.At.UnixMilli(), r.Check, r.Vantage, string(r.Route), string(r.Transport), r.Member, string(r.Outcome), r.Status,
			string(r.Cause), r.DurationMS, r.ReplyMS, r.TraceID); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := openT(t, opts)
	if n := countIn(t, s, "history_legacy", from, to); n != len(rows) {
		t.Fatalf("%d rows kept from before the upgrade, want %d", n, len(rows))
	}
	if s.Backend() == store.Postgres {
		var kind string
		if err := s.DB().QueryRow("SELECT relkind FROM pg_class WHERE relname = 'history'").Scan(&kind); err != nil || kind != "p" {
			t.Fatalf("history is of kind %q (%v), want partitioned", kind, err)
		}
	}
	// 09:00 on the first day to 09:00 on the fourth, both included.
	if n, err := s.Rollup(ctx, to.Add(2*time.Hour)); err != nil || n != 3*24+1 {
		t.Fatalf("rolled up %d hours, %v; want %d", n, err, 3*24+1)
	}
	got, err := s.Stats(ctx, from, "")
	if err != nil {
		t.Fatal(err)
	}
	sameStats(t, "the old rows from rollups", got, want)
	// Not yet older than the raw window: kept.
	if _, err := s.Prune(ctx, store.Retention{Raw: from.Add(time.Hour), Keep: from.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := countIn(t, s, "history_legacy", to.Add(-time.Hour), to); n <= 0 {
		t.Fatalf("the last hour's old rows are gone (%d) before the raw window passed", n)
	}
	if _, err := s.Prune(ctx, store.Retention{Raw: to.Add(2 * time.Hour), Keep: from.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n := countIn(t, s, "history_legacy", from, to); n != -1 {
		t.Fatalf("history_legacy still there (%d rows) once rolled up and older than the raw window", n)
	}
	got, err = s.Stats(ctx, from, "")
	if err != nil {
		t.Fatal(err)
	}
	sameStats(t, "the old rows from rollups, once pruned", got, want)
	// Today's writes go on.
	addHistory(t, s, attempts(to.Add(3*time.Hour), to.Add(4*time.Hour), 3))
	if n := rawCount(t, s, to.Add(3*time.Hour), to.Add(4*time.Hour)); n != 3*60 {
		t.Fatalf("%d new raw rows, want %d", n, 3*60)
	}
}
