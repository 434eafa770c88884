package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// silenceFromSlack is how long the Silence button silences a check.
const silenceFromSlack = time.Hour

// Act carries out a click on an incident message's button: Acknowledge
// stops the reminders and says who is on it, Silence 1h stores a silence
// (every member of a fleet honours it), Run again runs the check at once.
// Each ends in an update of the message. A click on an incident or check
// this daemon does not know changes nothing and is logged: Slack delivers
// a click to any one member, and buttons can outlive their check.
func (d *Daemon) Act(ctx context.Context, a notifier.Action) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	log := d.log.With("action", a.ID, "incident", truncate(a.IncidentID, 120), "user", a.Who())
	// A click comes from outside: whatever goes wrong with it must not
	// take the monitor down.
	defer func() {
		if r := recover(); r != nil {
			log.Error("slack action failed unexpectedly and was not carried out to the end", "panic", fmt.Sprint(r))
		}
	}()
	rec, err := d.store.IncidentByID(ctx, a.IncidentID)
	if err != nil {
		log.Error("slack action not carried out: the store cannot be read", "err", err)
		return
	}
	if rec == nil {
		log.Warn("slack action ignored: no such incident")
		return
	}
	d.mu.Lock()
	c := d.cfg.Check(rec.Decision.Check)
	windows := d.cfg.Maintenance
	traceURL := d.cfg.TraceURL
	cfg := d.cfg
	d.mu.Unlock()
	if c == nil {
		log.Warn("slack action ignored: the check is no longer configured", "check", rec.Decision.Check)
		return
	}
	route := d.router(targetsOf(c, cfg))
	log = log.With("check", c.Name)
	now := d.now()
	dc := decision{check: c, traceURL: traceURL, token: d.mem.token(c.Name), now: now, windows: windows, force: true, route: route}
	switch a.ID {
	case notifier.ActionAck:
		err = d.refresh(ctx, dc, func(ctx context.Context, tx *store.Tx, cur *store.Record) (bool, error) {
			if cur.Decision.Acked != nil {
				return false, nil
			}
			inc := cur.Decision
			inc.Acked = &incident.Ack{By: a.Who(), At: now}
			return true, tx.PutIncident(ctx, inc, cur.View, now)
		}, a.IncidentID)
	case notifier.ActionSilence:
		var sl store.Silence
		sl, err = d.store.AddSilence(ctx, store.Silence{Check: c.Name, Starts: now, Ends: now.Add(silenceFromSlack),
			Reason: "from Slack", By: a.Who(), Created: now})
		if err == nil {
			log = log.With("silence", sl.ID)
			err = d.refresh(ctx, dc, nil, a.IncidentID)
		}
	case notifier.ActionRun:
		go d.runNow(c)
	}
	if err != nil {
		log.Error("slack action not carried out", "err", err)
		d.storeFails("action", err)
		return
	}
	log.Info("slack action carried out")
}

// refresh changes the open incident id of dc's check with change (when
// set), then decides the check again and updates its message. An incident
// that closed meanwhile is left alone.
func (d *Daemon) refresh(ctx context.Context, dc decision, change func(context.Context, *store.Tx, *store.Record) (bool, error), id string) error {
	t := &tee{mem: d.mem}
	err := d.store.Update(ctx, func(tx *store.Tx) error {
		t.Tx, t.staged, t.queued = tx, nil, 0
		if err := tx.LockCheck(ctx, dc.check.Name); err != nil {
			return err
		}
		cur, err := tx.Incident(ctx, dc.check.Name)
		if err != nil {
			return err
		}
		if cur == nil || cur.Decision.ID != id || cur.Decision.State != incident.Open {
			d.log.Info("slack action: the incident is no longer open", "check", dc.check.Name, "incident", id)
			return nil
		}
		if change != nil {
			if changed, err := change(ctx, tx, cur); err != nil || !changed {
				return err
			}
		}
		_, err = decideCheck(ctx, t, dc)
		return err
	})
	if err != nil {
		return err
	}
	t.commit()
	if t.queued > 0 {
		d.kick()
	}
	return nil
}

// runNow runs a check at once, outside its schedule (Run again), and
// records it like any run, refreshing the incident's message.
func (d *Daemon) runNow(c *config.Check) {
	if d.stopped.Load() {
		return
	}
	d.mu.Lock()
	runner, traceURL := d.runner, d.cfg.TraceURL
	d.mu.Unlock()
	d.runs.add()
	defer d.runs.done()
	rep := runner.Run(d.runCtx, c)
	if d.runCtx.Err() != nil {
		return
	}
	if d.opts.OnReport != nil {
		d.opts.OnReport(rep)
	}
	select {
	case d.feedIn <- newObservation(c, traceURL, rep, d.now(), true):
	case <-d.feedDone:
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
