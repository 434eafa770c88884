package monitor

import (
	"context"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/monitor/schedule"
	"github.com/wscanary/wscanary/notifier"
)

// The runs of the daemon's checks: each scheduled tick, and a run a person
// asked for (Run again), both guarded against overlapping runs of a check.

// fire is one scheduled run of one check, on a scheduler's worker.
func (d *Daemon) fire(f schedule.Fire) {
	if d.stopped.Load() {
		return
	}
	cur := d.current.Load()
	c := cur.cfg.Check(f.Key)
	if c == nil {
		return // removed by a reload since it was due
	}
	late := time.Since(f.Planned)
	d.metrics().Lateness(d.ctx, late.Seconds())
	if d.opts.OnTick != nil {
		d.opts.OnTick(c.Name, late)
	}
	d.run(cur.runner, c, false)
}

// skipped is a fire dropped because the check's previous run is still in
// progress.
func (d *Daemon) skipped(f schedule.Fire) {
	d.metrics().RunSkipped(d.ctx, f.Key)
	d.log.Warn("run skipped: the previous one is still running", "check", f.Key)
}

// runAgain starts a run of c at once, outside its schedule, unless one of
// its runs is in flight (the scheduler's overlap guard): false then. Its
// result refreshes the incident's message.
func (d *Daemon) runAgain(c *config.Check) bool {
	if !d.sched.Begin(c.Name) {
		return false
	}
	rn := d.current.Load().runner
	go func() {
		defer d.sched.Done(c.Name)
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
