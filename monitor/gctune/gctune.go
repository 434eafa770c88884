// Package gctune sizes the Go garbage collector of a process that runs a
// daemon of n checks.
//
// The daemon's live heap is mostly steady (its checks' configuration and
// series, a few KB a check), while every attempt allocates a little.
// Collecting at 4x the live heap instead of 2x saves a tenth to a quarter
// of its CPU; a soft memory limit that grows with the number of checks
// makes it collect sooner before the heap could grow past what the design
// allows (8 KB a check above an empty daemon; docs/architecture.md, section 2).
//
// A limit alone is a trap: when the live heap comes near it (a storm of
// incidents holds each one's view and headers, a backlog of messages waits
// for Slack) the collector runs back to back and takes half the CPU, at
// the moment the daemon has the most to tell. So after each collection the
// tuner raises the limit to leave the heap at least as much room as Go's
// default (GOGC=100) would, and lowers it back to the planned limit once
// the heap shrinks.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

const (
	// Percent is the collector's GOGC unless the environment sets one.
	Percent = 300
	// Base and PerCheck size the planned soft memory limit: Base plus
	// PerCheck for each check.
	Base     = 64 << 20
	PerCheck = 6 << 10
)

// Limit is the soft memory limit for a live heap of live bytes, with
// other bytes of runtime memory that are not heap (stacks, metadata), when
// the plan is planned: never less than the plan, and never so low that
// the heap could not double before it is collected, as with Go's default
// (GOGC=100). Room to grow by half only was measured too: the storm of
// TestBurstLosesNothing then spent 20% of its CPU collecting instead of
// 10%, and its alerts reached Slack two to ten times later.
func Limit(planned, live, other int64) int64 {
	return max(planned, other+2*live)
}

// Tuner keeps the process's collector sized to a daemon. Only one should
// run in a process: the settings it changes are the process's.
type Tuner struct {
	planned atomic.Int64
	stopped atomic.Bool
	// manual: GOMEMLIMIT is set, and the operator's limit stands.
	manual bool
	mu     sync.Mutex // one adjustment at a time
	sample []metrics.Sample
}

// New sets GOGC to Percent (unless the environment sets GOGC) and starts
// a tuner of the memory limit (unless the environment sets GOMEMLIMIT),
// planned for checks checks.
func New(checks int) *Tuner {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(Percent)
	}
	t := &Tuner{manual: os.Getenv("GOMEMLIMIT") != "", sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}}
	if t.manual {
		return t
	}
	t.Size(checks)
	t.arm()
	return t
}

// Size plans the limit for checks checks (at start and at every reload).
func (t *Tuner) Size(checks int) {
	if t.manual {
		return
	}
	t.planned.Store(Base + int64(checks)*PerCheck)
	t.adjust()
}

// Stop ends the tuning; the limit stays where it is.
func (t *Tuner) Stop() { t.stopped.Store(true) }

// arm asks to hear of the next collection: an object nothing points to
// is collected by it, and its cleanup adjusts the limit and arms again.
func (t *Tuner) arm() {
	sentinel := new([32]byte) // not tiny: a cleanup on a tiny object may never run
	runtime.AddCleanup(sentinel, func(t *Tuner) {
		if t.stopped.Load() {
			return
		}
		t.adjust()
		t.arm()
	}, t)
}

// adjust sets the limit from the live heap the last collection found.
func (t *Tuner) adjust() {
	t.mu.Lock()
	defer t.mu.Unlock()
	metrics.Read(t.sample)
	v := func(i int) int64 {
		if t.sample[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(t.sample[i].Value.Uint64())
	}
	live := v(0)
	mapped := v(1) - v(2)
	other := mapped - v(3) - v(4) - v(5)
	debug.SetMemoryLimit(Limit(t.planned.Load(), live, max(other, 0)))
}
