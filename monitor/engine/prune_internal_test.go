package engine

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestPruneDoesNotHoldRecords: a prune of a large history runs beside the
// feed, not on it: runs are recorded while it deletes (before, the feed
// pruned, and nothing was recorded, and ticks waited on a full feed, for
// as long as the prune took). No wall clock: the test watches the order of
// events, and the history is large enough for a prune to span records.
func TestPruneDoesNotHoldRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a history of a million rows")
	}
	st, err := store.Open(context.Background(), store.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	old := time.Now().Add(-72 * time.Hour)
	rows := make([]store.HistoryRow, 0, 50_000)
	for range 20 {
		rows = rows[:0]
		for i := range 50_000 {
			rows = append(rows, store.HistoryRow{At: old.Add(time.Duration(i) * time.Millisecond), Check: "old", Vantage: "us",
				Route: report.RouteCDN, Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK})
		}
		if err := st.Update(context.Background(), func(tx *store.Tx) error { return tx.AddHistory(context.Background(), rows) }); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: us\nhistory: 1d\n"),
		map[string][]byte{"c.yaml": []byte("checks:\n  - {name: chat, url: \"ws://127.0.0.1:1/ws\", schedule: \"@every 1s\", timeout: 2s}\n")},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testbed.SyncBuffer{}
	e, err := New(Options{Store: st, Config: cfg,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(e.Close)
	// Runs come in as the scheduler would send them, all the time.
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		a := report.Attempt{Vantage: "us", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: 101, OK: true}
		a.Outcome = report.OutcomeOf(a)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			e.Feed(NewObservation(&cfg.Checks[0], "", report.Report{Check: "chat", OK: true, Diagnosis: report.Diagnosis{Cause: report.CauseOK},
				Attempts: []report.Attempt{a}}, time.Now(), false))
		}
	}()
	updated := func() time.Time {
		e.mem.mu.Lock()
		defer e.mem.mu.Unlock()
		var last time.Time
		for _, r := range e.mem.series {
			if r.Check == "chat" && r.Updated.After(last) {
				last = r.Updated
			}
		}
		return last
	}
	seen := map[time.Time]bool{}
	testbed.WaitFor(t, "the prune's end", 5*time.Minute, func() bool {
		l := logs.String()
		running := strings.Contains(l, `"pruning history"`) && !strings.Contains(l, `"history pruned"`)
		if u := updated(); running && !u.IsZero() {
			seen[u] = true
		}
		return strings.Contains(l, `"history pruned"`)
	})
	if len(seen) < 2 {
		t.Fatalf("%d distinct records seen while the prune ran, want at least 2: the feed waited for it\n%s", len(seen), lastLog(logs.String()))
	}
	t.Logf("%d records while the prune ran; %s", len(seen), lastLog(logs.String()))
}

func lastLog(l string) string {
	for _, line := range strings.Split(l, "\n") {
		if strings.Contains(line, "history pruned") {
			return line
		}
	}
	return ""
}
