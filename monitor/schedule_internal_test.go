package monitor

import (
	"fmt"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestJitterSpreadsAndIsStable(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	every := cron.Every(60 * time.Second)
	seconds := map[int]bool{}
	for i := range 1000 {
		j := newJittered(fmt.Sprint("check-", i), every, from)
		n := j.Next(from)
		if d := n.Sub(from); d <= 0 || d > 60*time.Second {
			t.Fatalf("first run after %v, want within one interval", d)
		}
		if n2 := j.Next(n); n2.Sub(n) != 60*time.Second {
			t.Fatalf("interval %v", n2.Sub(n))
		}
		again := newJittered(fmt.Sprint("check-", i), every, from.Add(time.Hour))
		if again.offset != j.offset {
			t.Fatal("offset changes across restarts")
		}
		seconds[int(n.Sub(from).Seconds())] = true
	}
	if len(seconds) < 50 {
		t.Fatalf("1000 checks start in only %d distinct seconds", len(seconds))
	}
	// Cron expressions are shifted by the offset, never past the next tick.
	five, _ := cron.ParseStandard("*/5 * * * *")
	j := newJittered("x", five, from)
	if n := j.Next(from); n.Sub(from) > 5*time.Minute+maxJitter || !n.After(from) {
		t.Fatalf("cron next %v", n)
	}
}

func TestLateness(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	j := newJittered("x", cron.Every(time.Minute), from)
	n := j.Next(from)
	if _, ok := j.lateness(n.Add(-time.Second)); ok {
		t.Fatal("lateness before the planned time")
	}
	late, ok := j.lateness(n.Add(120 * time.Millisecond))
	if !ok || late != 120*time.Millisecond {
		t.Fatalf("lateness %v %v", late, ok)
	}
	if _, ok := j.lateness(n.Add(time.Second)); ok {
		t.Fatal("a planned time was used twice")
	}
}

// TestNeverFiringScheduleCannotSpin: config refuses such schedules, but the
// scheduler must not depend on that: a schedule with no next time is
// "never", not a busy loop that starves every other check.
func TestNeverFiringScheduleCannotSpin(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	feb30, err := cron.ParseStandard("0 0 30 2 *")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan time.Time, 1)
	go func() { done <- newJittered("x", feb30, from).Next(from) }()
	select {
	case n := <-done:
		if !n.IsZero() {
			t.Fatalf("next %v, want the zero time (never)", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next spins on a schedule that never fires")
	}
}
