package schedule

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestSchedulerRunsAndStops runs three entries @every 1s on the real clock
// with two workers: each runs at least twice, never twice at once, a run
// that panics does not stop the others, and Stop then Wait end with no run
// in progress. Bounded by the fires it waits for (at most 3 s of them)
// plus a generous ceiling for a busy machine.
func TestSchedulerRunsAndStops(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	runs := map[string]int{}
	inRun := map[string]bool{}
	var overlap, panics int
	enough := make(chan struct{})
	s := New(Options{Workers: 2,
		Run: func(f Fire) {
			mu.Lock()
			if inRun[f.Key] {
				overlap++
			}
			inRun[f.Key] = true
			runs[f.Key]++
			if runs["a"] >= 2 && runs["b"] >= 2 && runs["boom"] >= 2 {
				select {
				case <-enough:
				default:
					close(enough)
				}
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				inRun[f.Key] = false
				mu.Unlock()
			}()
			if f.Key == "boom" {
				panic("boom")
			}
		},
		Panicked: func(string, any) {
			mu.Lock()
			panics++
			mu.Unlock()
		},
	})
	every := mustParse(t, "@every 1s")
	s.Sync([]Entry{{Key: "a", Spec: "@every 1s", Sched: every}, {Key: "b", Spec: "@every 1s", Sched: every}, {Key: "boom", Spec: "@every 1s", Sched: every}})
	s.Start()
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		t.Fatal("three entries @every 1s did not each run twice")
	}
	s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !s.Wait(ctx) {
		t.Fatal("workers still running after Stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if overlap > 0 || panics < 2 {
		t.Fatalf("overlapping runs %d, panics seen %d", overlap, panics)
	}
	n := runs["a"] + runs["b"] + runs["boom"]
	time.Sleep(1100 * time.Millisecond) // a fire would be due by now
	if m := runs["a"] + runs["b"] + runs["boom"]; m != n {
		t.Fatalf("%d runs after Stop", m-n)
	}
}
