package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// TestMembers: a heartbeat registers a member; one not seen for its
// threshold is marked silent once, whoever looks; its series go stale
// however recent they are; its next heartbeat says it had been silent.
func TestMembers(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, open func() *store.Store) {
		s := open()
		ctx := context.Background()
		beat := func(name string, now time.Time) *store.Member {
			t.Helper()
			var prev *store.Member
			err := s.Update(ctx, func(tx *store.Tx) error {
				var err error
				prev, err = tx.Heartbeat(ctx, store.Member{Name: name, Started: t0, Interval: 10 * time.Second, Version: "test"}, now)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return prev
		}
		silent := func(self string, now time.Time) []string {
			t.Helper()
			var names []string
			err := s.Update(ctx, func(tx *store.Tx) error {
				ms, err := tx.NewlySilent(ctx, self, now, func(m store.Member) time.Duration { return 3 * m.Interval })
				for _, m := range ms {
					names = append(names, m.Name)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return names
		}
		if prev := beat("eu", t0); prev != nil {
			t.Fatalf("first heartbeat found %+v", prev)
		}
		beat("ap", t0)
		s.Update(ctx, func(tx *store.Tx) error {
			return tx.PutSeries(ctx, []store.SeriesRow{row("chat", "ap", report.RouteCDN, 403, t0.Add(25*time.Second))},
				map[string]time.Duration{"chat": time.Hour})
		})
		beat("eu", t0.Add(25*time.Second))
		if got := silent("eu", t0.Add(29*time.Second)); len(got) != 0 {
			t.Fatalf("silent after 29s of a 30s threshold: %v", got)
		}
		if got := silent("eu", t0.Add(31*time.Second)); fmt.Sprint(got) != "[ap]" {
			t.Fatalf("newly silent: %v, want [ap]", got)
		}
		if got := silent("eu", t0.Add(40*time.Second)); len(got) != 0 {
			t.Fatalf("marked silent twice: %v", got)
		}
		var rows []store.SeriesRow
		s.Update(ctx, func(tx *store.Tx) error {
			var err error
			rows, err = tx.Series(ctx, "chat", t0.Add(40*time.Second))
			return err
		})
		if len(rows) != 1 || !rows[0].Stale {
			t.Fatalf("the silent member's series: %+v, want stale", rows)
		}
		prev := beat("ap", t0.Add(time.Minute))
		if prev == nil || !prev.Silent || !prev.Seen.Equal(t0) {
			t.Fatalf("return heartbeat found %+v, want silent since %s", prev, t0)
		}
		ms, err := s.Members(ctx)
		if err != nil || len(ms) != 2 || ms[0].Name != "ap" || ms[0].Silent || !ms[0].Seen.Equal(t0.Add(time.Minute)) {
			t.Fatalf("members %+v, %v", ms, err)
		}
	})
}

// TestFleetSharedStore: three members, each with its own connection pool
// on one PostgreSQL database, decide the same checks, deliver the same
// outbox and watch each other at the same time. Every check gets exactly
// one incident, every message is claimed exactly once, and a silent member
// is named once.
func TestFleetSharedStore(t *testing.T) {
	t.Parallel()
	dsn := postgres(t).NewDatabaseT(t)
	members := []string{"eu", "us", "ap"}
	stores := make([]*store.Store, len(members))
	for i := range members {
		stores[i] = openT(t, store.Options{DSN: dsn})
	}
	ctx := context.Background()
	rule := config.Alert{On: config.DefaultAlertOn(), After: 1, MinVantages: 2}
	const checks = 40
	var opened atomic.Int64
	// Each member records its failing series of every check, then decides
	// the check over every member's series, as the daemon does.
	var wg sync.WaitGroup
	for i, name := range members {
		wg.Go(func() {
			for c := range checks {
				check := fmt.Sprintf("check-%02d", c)
				now := t0.Add(time.Duration(c) * time.Second)
				err := stores[i].Update(ctx, func(tx *store.Tx) error {
					if err := tx.LockCheck(ctx, check); err != nil {
						return err
					}
					r := row(check, name, report.RouteCDN, 403, now)
					r.FailStreak = 1
					if err := tx.PutSeries(ctx, []store.SeriesRow{r}, map[string]time.Duration{check: time.Hour}); err != nil {
						return err
					}
					rows, err := tx.Series(ctx, check, now)
					if err != nil {
						return err
					}
					rec, err := tx.Incident(ctx, check)
					if err != nil {
						return err
					}
					in := incident.Input{Check: check, Rule: rule, Now: now, NewID: func() string { return incident.NewID(check, now) },
						Diagnosis: report.Diagnosis{Cause: report.CauseCDNBlocked}}
					for _, r := range rows {
						in.Series = append(in.Series, r.Series)
					}
					if rec != nil {
						in.Current = &rec.Decision
					}
					d := incident.Decide(in)
					if d.Incident == nil {
						return nil
					}
					if err := tx.PutIncident(ctx, *d.Incident, notifier.Incident{ID: d.Incident.ID, Check: check}, now); err != nil {
						return err
					}
					for _, e := range d.Events {
						if e.Kind == incident.Opened {
							opened.Add(1)
							return tx.Enqueue(ctx, notifier.Message{ID: d.Incident.ID + "/open", Kind: notifier.KindOpen}, d.Incident.ID, now)
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if opened.Load() != checks {
		t.Fatalf("%d incidents opened for %d checks (min_vantages 2, three members failing)", opened.Load(), checks)
	}
	open, err := stores[0].OpenIncidents(ctx)
	if err != nil || len(open) != checks {
		t.Fatalf("%d open incidents, %v", len(open), err)
	}
	for check, rec := range open {
		if n := failingCells(rec.Decision.Cells); n < 2 {
			t.Errorf("%s opened with %d failing cells, want min_vantages 2", check, n)
		}
	}

	// Delivery: the three claim the outbox together; each message once.
	var claimed sync.Map
	var dup atomic.Int64
	later := t0.Add(time.Hour)
	for i, name := range members {
		wg.Go(func() {
			for {
				e, err := stores[i].ClaimFor(ctx, name, "", later, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if e == nil {
					return
				}
				if _, seen := claimed.LoadOrStore(e.Message.ID, name); seen {
					dup.Add(1)
				}
				if err := stores[i].Done(ctx, e, notifier.Delivery{Channel: "C", TS: e.Message.ID}, later); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := 0
	claimed.Range(func(any, any) bool { n++; return true })
	if n != checks || dup.Load() != 0 {
		t.Fatalf("%d messages delivered, %d twice; want %d once each", n, dup.Load(), checks)
	}

	// Watching: ap stops; eu and us look at once, many times; ap is named once.
	// (Simulated clocks: ap last beats at later, eu and us at later+10s,
	// then both keep beating within the 3 s threshold of each other.)
	for i, name := range members {
		at := later.Add(10 * time.Second)
		if name == "ap" {
			at = later
		}
		if err := stores[i].Update(ctx, func(tx *store.Tx) error {
			_, err := tx.Heartbeat(ctx, store.Member{Name: name, Started: t0, Interval: time.Second}, at)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var named atomic.Int64
	for i, name := range members[:2] {
		wg.Go(func() {
			for k := range 20 {
				now := later.Add(10*time.Second + time.Duration(k)*100*time.Millisecond)
				err := stores[i].Update(ctx, func(tx *store.Tx) error {
					if _, err := tx.Heartbeat(ctx, store.Member{Name: name, Started: t0, Interval: time.Second}, now); err != nil {
						return err
					}
					ms, err := tx.NewlySilent(ctx, name, now, func(m store.Member) time.Duration { return 3 * m.Interval })
					named.Add(int64(len(ms)))
					return err
				})
				if err != nil {
					t.Errorf("%s at %s: %v", name, now, err)
				}
			}
		})
	}
	wg.Wait()
	if named.Load() != 1 {
		t.Fatalf("the silent member was named %d times, want once", named.Load())
	}

	// A fleet-wide chore (the storm summary): one turn, whoever asks.
	var turns atomic.Int64
	for i := range members {
		wg.Go(func() {
			for range 5 {
				ok, err := stores[i].TakeTurn(ctx, "storm_summary", later, 10*time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					turns.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if turns.Load() != 1 {
		t.Fatalf("%d turns taken at once, want 1", turns.Load())
	}
	next := later.Add(11 * time.Minute)
	if ok, _ := stores[1].TakeTurn(ctx, "storm_summary", next, 10*time.Minute); !ok {
		t.Fatal("no turn once the interval passed")
	}
	// The chore failed: the turn is given back and the next to ask gets it.
	if err := stores[1].GiveBackTurn(ctx, "storm_summary", next); err != nil {
		t.Fatal(err)
	}
	if ok, _ := stores[2].TakeTurn(ctx, "storm_summary", next.Add(time.Second), 10*time.Minute); !ok {
		t.Fatal("no turn after it was given back")
	}
	// A leased turn (a post under way) lapses after its lease when its
	// member dies before keeping it; a kept one holds for the interval.
	lease := next.Add(20 * time.Minute)
	ok, at, err := stores[0].LeaseTurn(ctx, "storm_summary", lease, 10*time.Minute, 35*time.Second)
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	if ok, _, _ := stores[1].LeaseTurn(ctx, "storm_summary", lease.Add(30*time.Second), 10*time.Minute, 35*time.Second); ok {
		t.Fatal("a leased turn was taken again within its lease")
	}
	ok, at2, _ := stores[1].LeaseTurn(ctx, "storm_summary", lease.Add(36*time.Second), 10*time.Minute, 35*time.Second)
	if !ok {
		t.Fatal("a lapsed lease (its member died) was not taken over")
	}
	if err := stores[0].KeepTurn(ctx, "storm_summary", at, lease.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].KeepTurn(ctx, "storm_summary", at2, lease.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := stores[2].LeaseTurn(ctx, "storm_summary", lease.Add(9*time.Minute), 10*time.Minute, 35*time.Second); ok {
		t.Fatal("a kept turn was taken again within the interval")
	}
}

func failingCells(cells []incident.Cell) int {
	n := 0
	for _, c := range cells {
		if c.Failing {
			n++
		}
	}
	return n
}

// TestCoalescedUpdateIsNotLost: while one member's decision coalesces its
// update into a waiting one, another member must not claim and render that
// waiting update from the incident as it was before the decision; it gets
// it once the decision is committed, showing the new view.
func TestCoalescedUpdateIsNotLost(t *testing.T) {
	t.Parallel()
	dsn := postgres(t).NewDatabaseT(t)
	a, b := openT(t, store.Options{DSN: dsn}), openT(t, store.Options{DSN: dsn})
	ctx := context.Background()
	inc := incident.Incident{ID: "chat-1", Check: "chat", State: incident.Open, Opened: t0}
	err := a.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutIncident(ctx, inc, notifier.Incident{ID: inc.ID, Check: "chat", Summary: "2 of 6"}, t0); err != nil {
			return err
		}
		if err := tx.SetRoot(ctx, inc.ID, notifier.Delivery{Channel: "C", TS: "1.1"}); err != nil {
			return err
		}
		return tx.Enqueue(ctx, notifier.Message{ID: "u1", Kind: notifier.KindUpdate}, inc.ID, t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Minute)
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Update(ctx, func(tx *store.Tx) error {
			if err := tx.PutIncident(ctx, inc, notifier.Incident{ID: inc.ID, Check: "chat", Summary: "3 of 6"}, later); err != nil {
				return err
			}
			if err := tx.Enqueue(ctx, notifier.Message{ID: "u2", Kind: notifier.KindUpdate}, inc.ID, later); err != nil {
				return err
			}
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	if e, err := b.ClaimFor(ctx, "us", "", later, time.Minute); err != nil || e != nil {
		t.Fatalf("claimed %+v (%v) while a decision coalescing into it was in flight", e, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e, err := b.ClaimFor(ctx, "us", "", later, time.Minute)
	if err != nil || e == nil || e.Message.Incident == nil || e.Message.Incident.Summary != "3 of 6" {
		t.Fatalf("after the decision: %+v, %v; want the update showing 3 of 6", e, err)
	}
}
