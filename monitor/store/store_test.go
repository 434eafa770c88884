package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

var (
	pgOnce sync.Once
	pg     *testbed.Postgres
	pgErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pg.Close()
	}
	os.Exit(code)
}

// postgres returns the package's PostgreSQL server, started on first use.
func postgres(t *testing.T) *testbed.Postgres {
	t.Helper()
	pgOnce.Do(func() { pg, pgErr = testbed.StartPostgres() })
	if errors.Is(pgErr, testbed.ErrNoPostgres) {
		testbed.MissingTool(t, pgErr)
	}
	if pgErr != nil {
		t.Fatal(pgErr)
	}
	return pg
}

// backends runs a test against SQLite and against PostgreSQL: both must
// pass the same suite.
func backends(t *testing.T, test func(t *testing.T, open func() *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		test(t, func() *store.Store { return openT(t, store.Options{Dir: dir}) })
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dsn := postgres(t).NewDatabaseT(t)
		test(t, func() *store.Store { return openT(t, store.Options{DSN: dsn}) })
	})
}

func openT(t *testing.T, opts store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func row(check, vantage string, route report.Route, status int, updated time.Time) store.SeriesRow {
	a := report.Attempt{Vantage: vantage, Route: route, Status: status, OK: status == 101}
	return store.SeriesRow{Check: check, Series: incident.Series{Vantage: vantage, Route: route, Member: vantage,
		Outcome: report.OutcomeOf(a), Status: status, Since: updated, FirstSeen: updated, Updated: updated},
		Attempts: []report.Attempt{a}}
}

func TestSeriesAndIncidents(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() *store.Store) {
		s := open()
		ctx := context.Background()
		err := s.Update(ctx, func(tx *store.Tx) error {
			return tx.PutSeries(ctx, []store.SeriesRow{
				row("chat", "us", report.RouteCDN, 403, t0), row("chat", "us", report.RouteDirect, 101, t0),
				row("chat", "eu", report.RouteCDN, 101, t0.Add(-10*time.Minute)), row("feed", "us", report.RouteCDN, 101, t0),
			}, map[string]time.Duration{"chat": 3 * time.Minute})
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []store.SeriesRow
		s.Update(ctx, func(tx *store.Tx) error { got, err = tx.Series(ctx, "chat", t0.Add(time.Minute)); return err })
		if err != nil || len(got) != 3 {
			t.Fatalf("series %v, %v", got, err)
		}
		for _, r := range got {
			if wantStale := r.Vantage == "eu"; r.Stale != wantStale {
				t.Errorf("%s/%s stale %v", r.Vantage, r.Route, r.Stale)
			}
			if r.Vantage == "us" && r.Route == report.RouteCDN && (r.Status != 403 || r.Outcome != report.OutcomeRefused || len(r.Attempts) != 1) {
				t.Errorf("us/cdn read back as %+v", r)
			}
		}
		// One open incident per check; the open one is found before closed ones.
		closed := incident.Incident{ID: "chat-1", Check: "chat", State: incident.Closed, Opened: t0.Add(-time.Hour), Closed: t0.Add(-30 * time.Minute)}
		opened := incident.Incident{ID: "chat-2", Check: "chat", State: incident.Open, Opened: t0, Cause: report.CauseCDNBlocked}
		err = s.Update(ctx, func(tx *store.Tx) error {
			if err := tx.PutIncident(ctx, closed, notifier.Incident{ID: closed.ID}, t0); err != nil {
				return err
			}
			return tx.PutIncident(ctx, opened, notifier.Incident{ID: opened.ID, Check: "chat"}, t0)
		})
		if err != nil {
			t.Fatal(err)
		}
		var rec *store.Record
		s.Update(ctx, func(tx *store.Tx) error { rec, err = tx.Incident(ctx, "chat"); return err })
		if err != nil || rec == nil || rec.Decision.ID != "chat-2" || rec.Decision.Cause != report.CauseCDNBlocked || rec.View.Check != "chat" {
			t.Fatalf("incident %+v, %v", rec, err)
		}
		second := incident.Incident{ID: "chat-3", Check: "chat", State: incident.Open, Opened: t0}
		err = s.Update(ctx, func(tx *store.Tx) error { return tx.PutIncident(ctx, second, notifier.Incident{}, t0) })
		if err == nil {
			t.Fatal("a second open incident for one check was stored")
		}
	})
}

// claimAll claims and completes everything due at now, in order.
func claimAll(t *testing.T, s *store.Store, now time.Time) []notifier.Message {
	t.Helper()
	ctx := context.Background()
	var out []notifier.Message
	for {
		e, err := s.ClaimFor(ctx, "m1", "", now, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return out
		}
		out = append(out, e.Message)
		d := notifier.Delivery{}
		if e.Message.Kind == notifier.KindOpen {
			d = notifier.Delivery{Channel: "C1", TS: "ts-" + e.Incident}
		}
		if err := s.Done(ctx, e, d, now); err != nil {
			t.Fatal(err)
		}
	}
}

func kinds(ms []notifier.Message) string {
	var out []string
	for _, m := range ms {
		s := string(m.Kind)
		if m.Thread != nil {
			s += "@" + m.Thread.TS
		}
		if len(m.Events) > 0 {
			s += fmt.Sprintf("(%d)", len(m.Events))
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestOutbox: messages of an incident go in order, after its open, with
// its thread; updates coalesce; replies that come sooner than the spacing
// merge into one; the updated message shows the incident as it is now.
func TestOutbox(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() *store.Store) {
		s := open()
		ctx := context.Background()
		inc := incident.Incident{ID: "chat-1", Check: "chat", State: incident.Open, Opened: t0}
		enqueue := func(now time.Time, view string, ms ...notifier.Message) {
			t.Helper()
			err := s.Update(ctx, func(tx *store.Tx) error {
				if err := tx.PutIncident(ctx, inc, notifier.Incident{ID: inc.ID, Check: "chat", Summary: view}, now); err != nil {
					return err
				}
				for _, m := range ms {
					if err := tx.Enqueue(ctx, m, inc.ID, now); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		reply := func(id string, k notifier.EventKind) notifier.Message {
			return notifier.Message{ID: id, Kind: notifier.KindReply, Events: []notifier.Event{{Kind: k}}, Incident: &notifier.Incident{}}
		}
		enqueue(t0, "v1", notifier.Message{ID: "o", Kind: notifier.KindOpen}, notifier.Message{ID: "u1", Kind: notifier.KindUpdate})
		if err := s.Update(ctx, func(tx *store.Tx) error {
			return tx.Enqueue(ctx, notifier.Message{ID: "n", Kind: notifier.KindNotice, Notice: &notifier.Notice{Title: "x"}}, "", t0)
		}); err != nil {
			t.Fatal(err)
		}
		enqueue(t0, "v2", reply("r1", notifier.EventWidened))
		enqueue(t0, "v3", reply("r2", notifier.EventCauseChanged))
		got := claimAll(t, s, t0)
		if k := kinds(got); k != "open notice reply@ts-chat-1(2)" {
			t.Fatalf("claimed %s", k)
		}
		if got[0].Incident == nil || got[0].Incident.Summary != "v3" {
			t.Errorf("the open shows %+v, want the incident as it is now", got[0].Incident)
		}
		// An update right after is spaced; then it shows the latest view.
		enqueue(t0.Add(store.UpdateSpacing/4), "v4", notifier.Message{ID: "u2", Kind: notifier.KindUpdate})
		enqueue(t0.Add(store.UpdateSpacing/2), "v5", notifier.Message{ID: "u3", Kind: notifier.KindUpdate})
		if got := claimAll(t, s, t0.Add(store.UpdateSpacing/2)); len(got) != 0 {
			t.Fatalf("claimed %s before the spacing", kinds(got))
		}
		got = claimAll(t, s, t0.Add(store.UpdateSpacing+time.Second))
		if kinds(got) != "update@ts-chat-1" || got[0].Incident.Summary != "v5" {
			t.Fatalf("claimed %s showing %+v", kinds(got), got)
		}
		if n, _ := s.Pending(ctx); n != 0 {
			t.Fatalf("%d left", n)
		}
	})
}

// TestClaimLease: a claimed message is not claimed again until its lease
// runs out (the member delivering it died); then exactly one other takes it.
func TestClaimLease(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() *store.Store) {
		s := open()
		ctx := context.Background()
		if err := s.Update(ctx, func(tx *store.Tx) error {
			return tx.Enqueue(ctx, notifier.Message{ID: "n1", Kind: notifier.KindNotice, Notice: &notifier.Notice{Title: "x"}}, "", t0)
		}); err != nil {
			t.Fatal(err)
		}
		e, err := s.ClaimFor(ctx, "a", "", t0, 30*time.Second)
		if err != nil || e == nil {
			t.Fatal(e, err)
		}
		if again, err := s.ClaimFor(ctx, "b", "", t0.Add(29*time.Second), 30*time.Second); err != nil || again != nil {
			t.Fatalf("claimed twice within the lease: %v %v", again, err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		taken := 0
		for _, m := range []string{"b", "c", "d", "e"} {
			wg.Go(func() {
				e, err := s.ClaimFor(ctx, m, "", t0.Add(31*time.Second), 30*time.Second)
				if err != nil {
					t.Errorf("claim by %s: %v", m, err) // an error is not "someone else has it"
				}
				if e != nil {
					mu.Lock()
					taken++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if taken != 1 {
			t.Fatalf("%d members took the expired claim", taken)
		}
	})
}

func TestHistory(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() *store.Store) {
		s := open()
		ctx := context.Background()
		var rows []store.HistoryRow
		for i := range 100 {
			r := store.HistoryRow{At: t0.Add(time.Duration(i) * time.Minute), Check: "chat", Vantage: "us", Route: report.RouteCDN,
				Member: "us", Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: float64(10 + i%10),
				ReplyMS: float64(40 + i%10)}
			if i%10 == 9 {
				r.Outcome, r.Status, r.Cause, r.DurationMS = report.OutcomeRefused, 403, report.CauseCDNBlocked, 5
			}
			rows = append(rows, r)
		}
		if err := s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows) }); err != nil {
			t.Fatal(err)
		}
		stats, err := s.Stats(ctx, t0, "")
		if err != nil || len(stats) != 1 {
			t.Fatalf("stats %v, %v", stats, err)
		}
		st := stats[0]
		if st.Runs != 100 || st.Upgraded != 90 || st.Failures[report.CauseCDNBlocked] != 10 || st.Uptime() != 90 {
			t.Errorf("stats %+v", st)
		}
		if st.P50MS < 13 || st.P50MS > 15 || st.P95MS < 17 || st.P95MS > 19 {
			t.Errorf("p50 %v p95 %v, want about 14 and 18", st.P50MS, st.P95MS)
		}
		if st.ReplyP50MS < 42 || st.ReplyP50MS > 46 {
			t.Errorf("reply p50 %v, want about 44", st.ReplyP50MS)
		}
		tl, err := s.Timeline(ctx, t0, 10*time.Minute, 10)
		key := store.SeriesKey{Check: "chat", Vantage: "us", Route: report.RouteCDN, Transport: report.TransportHTTP1}
		if err != nil || len(tl[key]) != 10 || tl[key][3].Runs != 10 || tl[key][3].Upgraded != 9 {
			t.Fatalf("timeline %+v, %v", tl, err)
		}
		// Nothing is pruned before it is rolled up.
		if p, err := s.Prune(ctx, store.Retention{Raw: t0.Add(50 * time.Minute)}); err != nil || p.RawRows != 0 || p.Partitions != 0 {
			t.Fatalf("pruned %+v before any rollup, %v", p, err)
		}
		if n, err := s.Rollup(ctx, t0.Add(3*time.Hour)); err != nil || n != 2 {
			t.Fatalf("rolled up %d hours, %v; want 2", n, err)
		}
		p, err := s.Prune(ctx, store.Retention{Raw: t0.Add(50 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		// SQLite deletes the 50 rows before the cut; PostgreSQL drops day
		// partitions only, and the cut is in the middle of a day.
		if want := (store.Pruned{RawRows: 50}); s.Backend() == store.Postgres {
			want = store.Pruned{}
			if p != want {
				t.Fatalf("pruned %+v, want %+v", p, want)
			}
		} else if p != want {
			t.Fatalf("pruned %+v, want %+v", p, want)
		}
		// The history reads the same past the raw window: rollups before
		// it, raw rows after.
		again, err := s.Stats(ctx, t0, "")
		if err != nil || len(again) != 1 {
			t.Fatalf("stats after pruning %v, %v", again, err)
		}
		if a := again[0]; a.Runs != 100 || a.Upgraded != 90 || a.Failures[report.CauseCDNBlocked] != 10 || a.P50MS != st.P50MS ||
			a.P95MS != st.P95MS || a.P99MS != st.P99MS || a.ReplyP50MS != st.ReplyP50MS || !a.First.Equal(st.First) || !a.Last.Equal(st.Last) {
			t.Fatalf("after pruning:\n%+v\nbefore:\n%+v", a, st)
		}
	})
}

// TestImportLegacyState: a state.json written by the release before the
// store is taken over once: the delivered open alert keeps its message
// (nothing is posted again), the undelivered one is posted, the waiting
// recovery resolves its message in place and in its thread.
func TestImportLegacyState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/state-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, store.LegacyFile), b, 0o600)
	s := openT(t, store.Options{Dir: dir})
	ctx := context.Background()
	open, err := s.OpenIncidents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open["chat"] == nil || open["feed"] == nil {
		t.Fatalf("open incidents %v", open)
	}
	if r := open["chat"]; !r.Posted || r.Root.TS != "1764400000.000100" || r.Root.Channel != "C0ALERTS" {
		t.Errorf("chat's incident lost its message: %+v", r)
	}
	got := claimAll(t, s, time.Now())
	if k := kinds(got); k != "open update@1764400000.000200 reply@1764400000.000200(1)" {
		t.Fatalf("after the import the outbox delivers %s", k)
	}
	if got[0].Incident == nil || got[0].Incident.Check != "feed" || got[2].Events[0].Kind != notifier.EventResolved {
		t.Errorf("messages %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, store.LegacyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("state.json is still there: it would be imported again")
	}
	s.Close()
	// A second start imports nothing.
	s = openT(t, store.Options{Dir: dir})
	if got := claimAll(t, s, time.Now()); len(got) != 0 {
		t.Fatalf("a restart delivered %s", kinds(got))
	}
}

func TestStateDirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	openT(t, store.Options{Dir: dir})
	if _, err := store.Open(context.Background(), store.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another wscanary") {
		t.Fatalf("a second daemon on one state dir: %v", err)
	}
	// The history command reads beside the daemon.
	if r, err := store.Open(context.Background(), store.Options{Dir: dir, Beside: true}); err != nil {
		t.Fatal(err)
	} else {
		r.Close()
	}
}

// TestCloseReleasesTheLock: a store reopened right after Close gets the
// state directory even while other goroutines start processes: each fork
// holds a copy of the lock's file until it execs, and the lock must not
// wait for that.
func TestCloseReleasesTheLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					exec.Command("true").Run()
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 200 {
		s, err := store.Open(context.Background(), store.Options{Dir: dir})
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		s.Close()
	}
}

// TestMigrationsTogether: members that start at once against one fresh
// PostgreSQL database each migrate or wait; none fails.
func TestMigrationsTogether(t *testing.T) {
	t.Parallel()
	dsn := postgres(t).NewDatabaseT(t)
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := store.Open(context.Background(), store.Options{DSN: dsn})
			if err == nil {
				s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestFullDisk: a write to a full disk is an error (never a crash), and
// writing works again once there is room.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as a disk that fills up")
	}
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	s := openT(t, store.Options{Dir: dir})
	ctx := context.Background()
	filler := filepath.Join(dir, "filler")
	os.WriteFile(filler, make([]byte, 4<<20), 0o600) // fails part way: the disk is full
	rows := make([]store.HistoryRow, 2000)
	for i := range rows {
		rows[i] = store.HistoryRow{At: t0, Check: strings.Repeat("x", 200), Vantage: "v", Route: report.RouteCDN, Outcome: report.OutcomeUpgraded}
	}
	var err error
	for range 50 {
		if err = s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows) }); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "full") {
		t.Fatalf("writing to a full disk: %v", err)
	}
	os.Remove(filler)
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows[:1]) }); err != nil {
		t.Fatalf("after space returned: %v", err)
	}
}

// FuzzImportLegacy: whatever a state.json of an older release holds, the
// store opens (an unreadable file is set aside, never fatal) and imports it
// at most once.
func FuzzImportLegacy(f *testing.F) {
	b, err := os.ReadFile("testdata/state-v1.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"series":[{"key":{"check":"c","vantage":"v","route":"cdn"},"status":403,"alert":{"ts":"1.2"}}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, store.LegacyFile), data, 0o600)
		s, err := store.Open(context.Background(), store.Options{Dir: dir})
		if err != nil {
			t.Fatalf("open with a state.json of %d bytes: %v", len(data), err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, store.LegacyFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("state.json left in place")
		}
	})
}

// TestOddStateDir: a state directory whose name has URI characters in it
// holds the database inside it (the DSN once ended the path at '#').
func TestOddStateDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state #1?x=y")
	s := openT(t, store.Options{Dir: dir})
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, store.FileName)); err != nil {
		t.Fatalf("the database is not in %q: %v", dir, err)
	}
}

// TestMergedReplyIsBounded: replies merged while they wait stay within
// Block Kit's limits; the earliest are counted, not dropped in silence.
func TestMergedReplyIsBounded(t *testing.T) {
	t.Parallel()
	s := openT(t, store.Options{Dir: t.TempDir()})
	ctx := context.Background()
	inc := incident.Incident{ID: "i", Check: "c", State: incident.Open, Opened: t0}
	err := s.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutIncident(ctx, inc, notifier.Incident{ID: "i"}, t0); err != nil {
			return err
		}
		for i := range 45 {
			m := notifier.Message{ID: fmt.Sprint("r", i), Kind: notifier.KindReply, Incident: &notifier.Incident{},
				Events: []notifier.Event{{Kind: notifier.EventResolved, Flaps: i}}}
			if err := tx.Enqueue(ctx, m, "i", t0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := claimAll(t, s, t0)
	if len(got) != 1 || len(got[0].Events) != 20 || got[0].Events[0].Kind != notifier.EventElided || got[0].Events[0].Flaps != 26 ||
		got[0].Events[19].Flaps != 44 {
		t.Fatalf("merged reply: %d messages, events %+v", len(got), got[0].Events)
	}
}

// TestRetentionKeepsTheDatabaseBounded: 10,000 checks run every ten
// minutes of simulated time for eight hours with a history of two (raw and
// rollups alike): once
// pruning keeps up, the database stops growing (SQLite reuses the pages of
// what was pruned), and only the last two hours remain.
func TestRetentionKeepsTheDatabaseBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 480,000 rows")
	}
	t.Parallel()
	dir := t.TempDir()
	s := openT(t, store.Options{Dir: dir})
	ctx := context.Background()
	const checks = 10000
	size := func() int64 {
		var n int64
		for _, f := range []string{store.FileName, store.FileName + "-wal"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	rows := make([]store.HistoryRow, checks)
	for i := range rows {
		rows[i] = store.HistoryRow{Check: fmt.Sprintf("check-%05d", i), Vantage: "eu-west-1", Route: report.RouteCDN, Member: "eu-west-1",
			Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: 12.5, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	}
	var at4h int64
	for step := 1; step <= 48; step++ {
		now := t0.Add(time.Duration(step) * 10 * time.Minute)
		for i := range rows {
			rows[i].At = now
		}
		if err := s.Update(ctx, func(tx *store.Tx) error { return tx.AddHistory(ctx, rows) }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Rollup(ctx, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(ctx, store.Retention{Raw: now.Add(-2 * time.Hour), Keep: now.Add(-2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if step == 24 {
			at4h = size()
		}
	}
	at8h := size()
	stats, err := s.Stats(ctx, t0.Add(8*time.Hour-2*time.Hour), "check-00042")
	if err != nil || len(stats) != 1 || stats[0].Runs != 13 {
		t.Fatalf("one check keeps %+v, want the last 2 hours (13 runs, both ends): %v", stats, err)
	}

	t.Logf("10,000 checks every 10 min, 2 h kept: %.1f MB after 4 h, %.1f MB after 8 h (%.0f bytes a row kept)",
		float64(at4h)/1e6, float64(at8h)/1e6, float64(at8h)/float64(checks*13))
	if float64(at8h) > 1.1*float64(at4h) {
		t.Fatalf("the database grew from %d to %d bytes with a steady history", at4h, at8h)
	}
}

// TestFilesPrivate: in a state directory anyone may list (0755, as a
// package creates it) and under a permissive umask, the database and its
// -wal and -shm files are the daemon's alone; existing ones are tightened.
func TestFilesPrivate(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	// A file left world-readable by an earlier release is tightened too.
	os.WriteFile(filepath.Join(dir, store.FileName+"-wal"), nil, 0o644)
	s := openT(t, store.Options{Dir: dir})
	ctx := context.Background()
	if err := s.Update(ctx, func(tx *store.Tx) error {
		return tx.AddHistory(ctx, []store.HistoryRow{{At: time.Now(), Check: "c", Vantage: "v", Route: "cdn", Outcome: "upgraded", Status: 101}})
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{store.FileName, store.FileName + "-wal", store.FileName + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}
