package schedule

import (
	"container/heap"
	"time"

	"github.com/robfig/cron/v3"
)

// Plan is when every entry fires next: a heap on the next fire time, so a
// fire costs O(log n) whatever the number of entries (robfig/cron's runner
// sorts them all at every wake-up). It is plain data, with no clock and no
// goroutine: the Scheduler drives it, tests drive it with a simulated one.
type Plan struct {
	h     entries
	byKey map[string]*entry
}

// Entry is what a Plan schedules: a key (the check's name) and its schedule.
// Spec is the schedule as written: an entry whose Spec is unchanged keeps
// its next fire time across a Sync.
type Entry struct {
	Key   string
	Spec  string
	Sched cron.Schedule
}

// Fire is one due entry and the time it was planned for. Skipped: the
// entry's previous run was still in progress, so this one does not run (a
// check never overlaps itself).
type Fire struct {
	Key     string
	Planned time.Time
	Skipped bool
}

type entry struct {
	key   string
	spec  string
	sched Jittered
	next  time.Time // zero: never (not in the heap)
	index int       // in h, -1 when not in it
	// running: a run of this entry is in progress (Due or Begin started
	// it, Done ends it).
	running bool
}

// Diff counts what a Sync changed.
type Diff struct{ Added, Changed, Removed, Kept int }

// NewPlan is an empty plan.
func NewPlan() *Plan { return &Plan{byKey: map[string]*entry{}} }

// Len is the number of entries, those that never fire included.
func (p *Plan) Len() int { return len(p.byKey) }

// Sync makes the plan hold exactly want: new keys are planned from now,
// keys whose Spec changed are planned again from now, keys gone are
// removed, and every other entry keeps its next fire time (a reload of
// 100,000 checks that changes one keeps the others on their phase).
func (p *Plan) Sync(want []Entry, now time.Time) Diff {
	var d Diff
	seen := make(map[string]struct{}, len(want))
	for _, w := range want {
		seen[w.Key] = struct{}{}
		e := p.byKey[w.Key]
		switch {
		case e == nil:
			d.Added++
			e = &entry{key: w.Key, index: -1}
			p.byKey[w.Key] = e
		case e.spec == w.Spec:
			d.Kept++
			continue
		default:
			d.Changed++
		}
		e.spec, e.sched = w.Spec, NewJittered(w.Key, w.Sched, now)
		p.place(e, e.sched.Next(now))
	}
	if len(seen) < len(p.byKey) {
		for k, e := range p.byKey {
			if _, ok := seen[k]; !ok {
				if e.index >= 0 {
					heap.Remove(&p.h, e.index)
				}
				delete(p.byKey, k)
				d.Removed++
			}
		}
	}
	return d
}

// place sets e's next fire time and its place in the heap.
func (p *Plan) place(e *entry, next time.Time) {
	e.next = next
	switch {
	case next.IsZero() && e.index >= 0:
		heap.Remove(&p.h, e.index)
	case next.IsZero():
	case e.index >= 0:
		heap.Fix(&p.h, e.index)
	default:
		heap.Push(&p.h, e)
	}
}

// Next is the earliest next fire time; false when nothing will fire.
func (p *Plan) Next() (time.Time, bool) {
	if len(p.h) == 0 {
		return time.Time{}, false
	}
	return p.h[0].next, true
}

// NextOf is the next fire time of key (zero: never or unknown).
func (p *Plan) NextOf(key string) time.Time {
	if e := p.byKey[key]; e != nil {
		return e.next
	}
	return time.Time{}
}

// Due appends to out every entry due at now, in order of their planned
// times, and plans each one's next fire strictly after now: a daemon that
// wakes up late fires a late entry once, not once per missed period. An
// entry whose previous run is still in progress is returned Skipped; the
// others are marked running until Done.
func (p *Plan) Due(now time.Time, out []Fire) []Fire {
	for len(p.h) > 0 && !p.h[0].next.After(now) {
		e := p.h[0]
		out = append(out, Fire{Key: e.key, Planned: e.next, Skipped: e.running})
		e.running = true
		e.next = e.sched.Next(now)
		if e.next.IsZero() {
			heap.Pop(&p.h)
		} else {
			heap.Fix(&p.h, 0)
		}
	}
	return out
}

// Begin marks key running for a run outside its schedule (a person asked
// for it); false when it is unknown or already running.
func (p *Plan) Begin(key string) bool {
	e := p.byKey[key]
	if e == nil || e.running {
		return false
	}
	e.running = true
	return true
}

// Done ends key's run in progress.
func (p *Plan) Done(key string) {
	if e := p.byKey[key]; e != nil {
		e.running = false
	}
}

// entries is a min-heap on next (container/heap).
type entries []*entry

func (h entries) Len() int { return len(h) }
func (h entries) Less(i, j int) bool {
	if h[i].next.Equal(h[j].next) {
		return h[i].key < h[j].key
	}
	return h[i].next.Before(h[j].next)
}
func (h entries) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *entries) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entries) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
