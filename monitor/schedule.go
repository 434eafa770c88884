package monitor

import (
	"hash/fnv"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wscanary/wscanary/monitor/config"
)

// maxJitter caps the start offset of a check: enough to spread thousands of
// checks that share a schedule, small enough that a new check runs soon.
const maxJitter = 60 * time.Second

// jittered shifts a schedule by a fixed offset derived from the check's
// name, so checks on the same schedule do not fire in the same millisecond
// and a restart keeps the same spread. It also remembers the times it
// planned, so a run can measure how late it started.
type jittered struct {
	inner  cron.Schedule
	offset time.Duration

	mu      sync.Mutex
	planned []time.Time
}

func newJittered(name string, inner cron.Schedule, from time.Time) *jittered {
	interval := config.Interval(inner, from)
	j := interval
	if j > maxJitter {
		j = maxJitter
	}
	var off time.Duration
	if j > 0 {
		h := fnv.New64a()
		h.Write([]byte(name))
		off = time.Duration(h.Sum64() % uint64(j))
	}
	return &jittered{inner: inner, offset: off}
}

// Next implements cron.Schedule.
func (j *jittered) Next(t time.Time) time.Time {
	var n time.Time
	if d, ok := j.inner.(cron.ConstantDelaySchedule); ok {
		// "@every" counts from the last run; put it on a fixed grid
		// instead, so the first run comes within one interval and the
		// phase survives restarts.
		n = t.Truncate(d.Delay).Add(j.offset)
		for !n.After(t) {
			n = n.Add(d.Delay)
		}
	} else {
		// The zero time is cron's "never": keep it, never loop on it.
		n = j.inner.Next(t.Add(-j.offset))
		for i := 0; !n.IsZero() && !n.Add(j.offset).After(t); i++ {
			if i == 1000 {
				return time.Time{}
			}
			n = j.inner.Next(n.Add(time.Second))
		}
		if n.IsZero() {
			return n
		}
		n = n.Add(j.offset)
	}
	j.mu.Lock()
	j.planned = append(j.planned, n)
	if len(j.planned) > 4 {
		j.planned = j.planned[len(j.planned)-4:]
	}
	j.mu.Unlock()
	return n
}

// lateness returns how late now is against the latest planned tick at or
// before it, and forgets the ticks it used.
func (j *jittered) lateness(now time.Time) (time.Duration, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	best := -1
	for i, p := range j.planned {
		if !p.After(now) {
			best = i
		}
	}
	if best < 0 {
		return 0, false
	}
	d := now.Sub(j.planned[best])
	j.planned = j.planned[best+1:]
	return d, true
}
