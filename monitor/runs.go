package monitor

import (
	"context"
	"sync/atomic"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/notifier"
)

// The runs of the daemon's checks: each scheduled tick, and a run a person
// asked for (Run again), both guarded against overlapping runs of a check.

// tick is one scheduled run of one check.
func (d *Daemon) tick(rn *runner.Runner, c *config.Check, sched *jittered, running *atomic.Bool) {
	if d.stopped.Load() {
		return
	}
	start := d.now()
	m := d.metrics()
	if late, ok := sched.lateness(start); ok {
		m.Lateness(d.ctx, late.Seconds())
		if d.opts.OnTick != nil {
			d.opts.OnTick(c.Name, late)
		}
	}
	if !running.CompareAndSwap(false, true) {
		m.RunSkipped(d.ctx, c.Name)
		d.log.Warn("run skipped: the previous one is still running", "check", c.Name)
		return
	}
	defer running.Store(false)
	d.run(rn, c, false)
}

// runAgain starts a run of c at once, outside its schedule, unless one of
// its runs is in flight (the scheduler's overlap guard): false then. Its
// result refreshes the incident's message.
func (d *Daemon) runAgain(c *config.Check) bool {
	d.mu.Lock()
	flag, rn := d.running[c.Name], d.runner
	d.mu.Unlock()
	if flag == nil || !flag.CompareAndSwap(false, true) {
		return false
	}
	go func() {
		defer flag.Store(false)
		if !d.stopped.Load() {
			d.run(rn, c, true)
		}
	}()
	return true
}

// run runs c and hands what it saw to the engine; force: a person asked.
func (d *Daemon) run(rn *runner.Runner, c *config.Check, force bool) {
	d.runs.add()
	defer d.runs.done()
	rep := rn.Run(d.runCtx, c)
	if d.runCtx.Err() != nil {
		return // cancelled by a stop: what it saw is our doing, not the target's
	}
	if d.opts.OnReport != nil {
		d.opts.OnReport(rep)
	}
	// false while stopping: a run that ended after the last record.
	d.engine.Feed(engine.NewObservation(c, d.config().TraceURL, rep, d.now(), force))
}

// Act carries out a click on an incident message's button (monitor/actions).
func (d *Daemon) Act(ctx context.Context, a notifier.Action) { d.actions.Act(ctx, a) }
