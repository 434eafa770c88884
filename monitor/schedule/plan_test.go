package schedule

import (
	"fmt"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wscanary/wscanary/monitor/config"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustParse(t testing.TB, spec string) cron.Schedule {
	t.Helper()
	s, err := config.ParseSchedule(spec, t0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// entries100k is how many entries the plan tests drive: 100,000, or
// 10,000 with -short.
func entries100k() int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

// mixed is n entries over a mix of "@every" and cron schedules.
func mixed(t testing.TB, n int) []Entry {
	specs := []string{"@every 60s", "@every 60s", "@every 30s", "@every 5m", "*/2 * * * *", "* * * * *", "0 * * * *"}
	parsed := map[string]cron.Schedule{}
	for _, s := range specs {
		parsed[s] = mustParse(t, s)
	}
	out := make([]Entry, n)
	for i := range out {
		spec := specs[i%len(specs)]
		out[i] = Entry{Key: fmt.Sprintf("c%06d", i), Spec: spec, Sched: parsed[spec]}
	}
	return out
}

// TestPlanFiresInOrderOncePerPeriod drives 100,000 entries on a simulated
// clock for ten minutes: fires come in order of their planned times, each
// entry fires once per period of its own schedule (never twice, never
// skipped), and its first fire comes within one period (the jitter).
func TestPlanFiresInOrderOncePerPeriod(t *testing.T) {
	t.Parallel()
	n := entries100k()
	want := mixed(t, n)
	p := NewPlan()
	if d := p.Sync(want, t0); d.Added != n || p.Len() != n {
		t.Fatalf("sync %+v, len %d", d, p.Len())
	}
	period := map[string]time.Duration{}
	for _, w := range want {
		period[w.Key] = config.Interval(w.Sched, t0)
	}
	last := map[string]time.Time{}
	count := map[string]int{}
	end := t0.Add(10 * time.Minute)
	var prev time.Time
	var due []Fire
	for {
		now, ok := p.Next()
		if !ok || now.After(end) {
			break
		}
		if now.Before(prev) {
			t.Fatalf("the plan went back in time: %v after %v", now, prev)
		}
		prev = now
		due = p.Due(now, due[:0])
		if len(due) == 0 {
			t.Fatalf("nothing due at the plan's own next time %v", now)
		}
		for _, f := range due {
			if !f.Planned.Equal(now) || f.Skipped {
				t.Fatalf("%s planned %v skipped %v, fired at %v", f.Key, f.Planned, f.Skipped, now)
			}
			per := period[f.Key]
			if l, seen := last[f.Key]; seen {
				if got := f.Planned.Sub(l); got != per {
					t.Fatalf("%s fired %v after its previous fire, its period is %v", f.Key, got, per)
				}
			} else if got := f.Planned.Sub(t0); got <= 0 || got > per {
				t.Fatalf("%s first fired %v after the start, want within one period (%v)", f.Key, got, per)
			}
			last[f.Key] = f.Planned
			count[f.Key]++
			p.Done(f.Key)
		}
	}
	// A first fire within one period, then one a period: the ten minutes
	// hold floor(10 min / period) fires, or one more.
	for _, w := range want {
		lo := int(10 * time.Minute / period[w.Key])
		if c := count[w.Key]; c < lo || c > lo+1 {
			t.Fatalf("%s (%s) fired %d times in 10 min, want %d or %d", w.Key, w.Spec, c, lo, lo+1)
		}
	}
}

// TestPlanSkipsOverlap: an entry whose run is still in progress at its next
// fire is returned Skipped (and stays running); Done lets the next one run.
func TestPlanSkipsOverlap(t *testing.T) {
	t.Parallel()
	p := NewPlan()
	p.Sync([]Entry{{Key: "slow", Spec: "@every 10s", Sched: mustParse(t, "@every 10s")}}, t0)
	first, _ := p.Next()
	fires := p.Due(first, nil)
	if len(fires) != 1 || fires[0].Skipped {
		t.Fatalf("first fire %+v", fires)
	}
	if p.Begin("slow") {
		t.Fatal("Begin while a scheduled run is in progress")
	}
	second, _ := p.Next()
	if fires := p.Due(second, nil); len(fires) != 1 || !fires[0].Skipped {
		t.Fatalf("fire during the run %+v, want skipped", fires)
	}
	p.Done("slow")
	third, _ := p.Next()
	if fires := p.Due(third, nil); len(fires) != 1 || fires[0].Skipped || third.Sub(second) != 10*time.Second {
		t.Fatalf("fire after the run %+v at %v", fires, third)
	}
	p.Done("slow")
	if !p.Begin("slow") || p.Begin("slow") || p.Begin("unknown") {
		t.Fatal("Begin: want true once, then false; false for an unknown key")
	}
}

// TestPlanSyncKeepsPhase: a reload that changes one of 100,000 entries
// leaves every other's next fire time as it was, even late in its period,
// and removes what is gone.
func TestPlanSyncKeepsPhase(t *testing.T) {
	t.Parallel()
	n := entries100k()
	want := mixed(t, n)
	p := NewPlan()
	p.Sync(want, t0)
	// Run the plan for 95 s so entries are mid-period.
	now := t0
	for {
		next, _ := p.Next()
		if next.After(t0.Add(95 * time.Second)) {
			break
		}
		now = next
		for _, f := range p.Due(now, nil) {
			p.Done(f.Key)
		}
	}
	before := map[string]time.Time{}
	for _, w := range want {
		before[w.Key] = p.NextOf(w.Key)
	}
	changed := want[7].Key
	reload := append([]Entry(nil), want[:n-1]...) // the last one is removed
	reload[7] = Entry{Key: changed, Spec: "@every 2m", Sched: mustParse(t, "@every 2m")}
	later := now.Add(300 * time.Millisecond)
	d := p.Sync(reload, later)
	if d != (Diff{Changed: 1, Removed: 1, Kept: n - 2}) {
		t.Fatalf("diff %+v", d)
	}
	for _, w := range reload {
		got := p.NextOf(w.Key)
		if w.Key == changed {
			if !got.After(later) || got.Sub(later) > 2*time.Minute {
				t.Fatalf("the changed entry fires at %v, want within its new period of %v", got, later)
			}
			continue
		}
		if !got.Equal(before[w.Key]) {
			t.Fatalf("%s moved from %v to %v on a reload that did not change it", w.Key, before[w.Key], got)
		}
	}
	if p.Len() != n-1 || !p.NextOf(want[n-1].Key).IsZero() {
		t.Fatalf("the removed entry is still planned (len %d)", p.Len())
	}
	// The heap is still a heap: the next due entries come out in order.
	var prev time.Time
	for range 1000 {
		next, _ := p.Next()
		if next.Before(prev) {
			t.Fatalf("out of order after the reload: %v before %v", next, prev)
		}
		prev = next
		for _, f := range p.Due(next, nil) {
			p.Done(f.Key)
		}
	}
}

func TestJitterSpreadsAndIsStable(t *testing.T) {
	t.Parallel()
	every := cron.Every(60 * time.Second)
	seconds := map[int]bool{}
	for i := range 1000 {
		j := NewJittered(fmt.Sprint("check-", i), every, t0)
		n := j.Next(t0)
		if d := n.Sub(t0); d <= 0 || d > 60*time.Second {
			t.Fatalf("first run after %v, want within one interval", d)
		}
		if n2 := j.Next(n); n2.Sub(n) != 60*time.Second {
			t.Fatalf("interval %v", n2.Sub(n))
		}
		again := NewJittered(fmt.Sprint("check-", i), every, t0.Add(time.Hour))
		if again.Offset() != j.Offset() {
			t.Fatal("offset changes across restarts")
		}
		seconds[int(n.Sub(t0).Seconds())] = true
	}
	if len(seconds) < 50 {
		t.Fatalf("1000 checks start in only %d distinct seconds", len(seconds))
	}
	// Cron expressions are shifted by the offset, never past the next tick.
	five, _ := cron.ParseStandard("*/5 * * * *")
	j := NewJittered("x", five, t0)
	if n := j.Next(t0); n.Sub(t0) > 5*time.Minute+MaxJitter || !n.After(t0) {
		t.Fatalf("cron next %v", n)
	}
}

// TestNeverFiringScheduleCannotSpin: config refuses such schedules, but the
// plan must not depend on that: a schedule with no next time is "never",
// not a busy loop that starves every other entry.
func TestNeverFiringScheduleCannotSpin(t *testing.T) {
	t.Parallel()
	feb30, err := cron.ParseStandard("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	if n := NewJittered("x", feb30, t0).Next(t0); !n.IsZero() {
		t.Fatalf("next %v, want the zero time (never)", n)
	}
	p := NewPlan()
	p.Sync([]Entry{{Key: "never", Spec: "0 0 30 2 *", Sched: feb30}}, t0)
	if _, ok := p.Next(); ok || p.Len() != 1 {
		t.Fatal("a schedule that never fires is in the heap")
	}
}
