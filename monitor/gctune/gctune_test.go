package gctune

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestLimit(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name                 string
		planned, live, other int64
		want                 int64
	}{
		{"a healthy daemon keeps the plan", 76 * mb, 20 * mb, 10 * mb, 76 * mb},
		{"before the first collection", 76 * mb, 0, 5 * mb, 76 * mb},
		{"a storm's heap gets room to double", 76 * mb, 56 * mb, 30 * mb, 142 * mb},
		{"just at the plan", 100 * mb, 45 * mb, 10 * mb, 100 * mb},
	} {
		if got := Limit(tc.planned, tc.live, tc.other); got != tc.want {
			t.Errorf("%s: Limit(%d, %d, %d) = %d MB, want %d MB", tc.name, tc.planned/mb, tc.live/mb, tc.other/mb, got/mb, tc.want/mb)
		}
	}
}

// keep restores the process's collector settings after a test.
func keep(t *testing.T) {
	limit, percent := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(percent)
	t.Cleanup(func() {
		debug.SetMemoryLimit(limit)
		debug.SetGCPercent(percent)
	})
}

// collectUntil runs collections until ok holds (the tuner hears of each
// one on the cleanup goroutine), at most 200.
func collectUntil(ok func() bool) bool {
	for range 200 {
		runtime.GC()
		runtime.Gosched()
		if ok() {
			return true
		}
	}
	return false
}

// TestTunerFollowsTheLiveHeap: a live heap past the planned limit raises
// the limit to twice the heap after a collection (the daemon never
// collects back to back), and the limit comes back to the plan once the
// heap is gone.
func TestTunerFollowsTheLiveHeap(t *testing.T) {
	keep(t)
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	tu := New(0)
	defer tu.Stop()
	if got := debug.SetGCPercent(-1); got != Percent {
		t.Errorf("GOGC %d, want %d", got, Percent)
	}
	debug.SetGCPercent(Percent)
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	if limit() != Base {
		t.Fatalf("limit %d before any heap, want the plan %d", limit(), int64(Base))
	}
	// 96 MB live, past the 64 MB plan, in pieces the collector must scan.
	heap := make([][]byte, 96)
	for i := range heap {
		heap[i] = make([]byte, 1<<20)
	}
	if !collectUntil(func() bool { return limit() >= 2*96<<20 }) {
		t.Fatalf("limit %d MB with 96 MB live, want at least 192 MB", limit()>>20)
	}
	runtime.KeepAlive(heap)
	heap = nil
	if !collectUntil(func() bool { return limit() == Base }) {
		t.Fatalf("limit %d MB once the heap is gone, want the plan (%d MB)", limit()>>20, Base>>20)
	}
	tu.Size(10_000)
	if want := int64(Base + 10_000*PerCheck); limit() != want {
		t.Errorf("limit %d after sizing for 10,000 checks, want %d", limit(), want)
	}
}

// TestTunerLeavesTheOperatorsLimit: GOMEMLIMIT and GOGC in the environment
// stand.
func TestTunerLeavesTheOperatorsLimit(t *testing.T) {
	keep(t)
	t.Setenv("GOGC", "150")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(150)
	tu := New(100)
	defer tu.Stop()
	tu.Size(100_000)
	runtime.GC()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("limit %d, want it left alone", got)
	}
	if got := debug.SetGCPercent(-1); got != 150 {
		t.Errorf("GOGC %d, want it left alone", got)
	}
	debug.SetGCPercent(150)
}
