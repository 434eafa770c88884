package schedule

import (
	"hash/fnv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wscanary/wscanary/monitor/config"
)

// MaxJitter caps the start offset of a check: enough to spread thousands of
// checks that share a schedule, small enough that a new check runs soon.
const MaxJitter = 60 * time.Second

// Jittered shifts a schedule by a fixed offset derived from the check's
// name, so checks on the same schedule do not fire in the same millisecond
// and a restart keeps the same spread.
type Jittered struct {
	inner  cron.Schedule
	offset time.Duration
	// every is the delay of an "@every" schedule, 0 for a cron one.
	every time.Duration
}

// NewJittered is inner shifted by name's offset: at most one interval
// (judged from from) and at most MaxJitter.
func NewJittered(name string, inner cron.Schedule, from time.Time) Jittered {
	j := min(config.Interval(inner, from), MaxJitter)
	var off time.Duration
	if j > 0 {
		h := fnv.New64a()
		h.Write([]byte(name))
		off = time.Duration(h.Sum64() % uint64(j))
	}
	s := Jittered{inner: inner, offset: off}
	if d, ok := inner.(cron.ConstantDelaySchedule); ok {
		s.every = d.Delay
	}
	return s
}

// Offset is the shift of this schedule.
func (j Jittered) Offset() time.Duration { return j.offset }

// Next is the first fire time strictly after t; the zero time is "never".
func (j Jittered) Next(t time.Time) time.Time {
	if j.every > 0 {
		// "@every" counts from the last run in cron; put it on a fixed grid
		// instead, so the first run comes within one interval and the phase
		// survives restarts and reloads.
		n := t.Truncate(j.every).Add(j.offset)
		for !n.After(t) {
			n = n.Add(j.every)
		}
		return n
	}
	if j.inner == nil {
		return time.Time{}
	}
	// The zero time is cron's "never": keep it, never loop on it.
	n := j.inner.Next(t.Add(-j.offset))
	for i := 0; !n.IsZero() && !n.Add(j.offset).After(t); i++ {
		if i == 1000 {
			return time.Time{}
		}
		n = j.inner.Next(n.Add(time.Second))
	}
	if n.IsZero() {
		return n
	}
	return n.Add(j.offset)
}
