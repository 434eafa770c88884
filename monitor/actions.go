package monitor

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// silenceFromSlack is how long the Silence button silences a check.
const silenceFromSlack = time.Hour

// runAgainCooldown is the least time between two runs of a check asked for
// from Slack: forty clicks are one run, not forty handshakes.
const runAgainCooldown = 10 * time.Second

// groupsFresh is how long a user group's members are taken as read.
const groupsFresh = 5 * time.Minute

// clicks is what Act keeps between clicks: the last Run again of each
// check and the members of the allowed user groups.
type clicks struct {
	mu      sync.Mutex
	lastRun map[string]time.Time
	groups  map[string][]string // group -> user ids
	read    time.Time
}

// groupLister lists a Slack user group (notifier.Slack does).
type groupLister interface {
	GroupMembers(ctx context.Context, group string) ([]string, error)
}

// groupsOf are the allowed groups user is in, read from Slack at most
// every groupsFresh.
func (d *Daemon) groupsOf(ctx context.Context, allowed []string, user string) []string {
	lister, ok := d.delivery.NotifierFor("").(groupLister)
	if len(allowed) == 0 || !ok {
		return nil
	}
	c := &d.clicks
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups == nil || d.now().Sub(c.read) > groupsFresh {
		c.groups = map[string][]string{}
		for _, g := range allowed {
			ids, err := lister.GroupMembers(ctx, g)
			if err != nil {
				d.log.Warn("slack: cannot read a user group of allowed_groups; its members' clicks are refused", "group", g, "err", err)
				continue
			}
			c.groups[g] = ids
		}
		c.read = d.now()
	}
	var out []string
	for g, ids := range c.groups {
		if slices.Contains(ids, user) {
			out = append(out, g)
		}
	}
	return out
}

// respond tells who clicked why nothing happened, or what will.
func (d *Daemon) respond(ctx context.Context, a notifier.Action, text string) {
	if err := notifier.Respond(ctx, &http.Client{Timeout: 10 * time.Second}, a, text); err != nil {
		d.log.Warn("slack: could not answer a click", "err", err)
	}
}

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
	// The click must come from the incident's own message: a payload that
	// names an incident from another message (another channel, a forged
	// value) changes nothing.
	if !rec.Posted || rec.Root.TS == "" || a.Channel != rec.Root.Channel || a.TS != rec.Root.TS {
		log.Warn("slack action ignored: the click did not come from the incident's message",
			"channel", truncate(a.Channel, 40), "ts", truncate(a.TS, 40), "message_channel", rec.Root.Channel, "message_ts", rec.Root.TS)
		return
	}
	d.mu.Lock()
	c := d.cfg.Check(rec.Decision.Check)
	cfg := d.cfg
	d.mu.Unlock()
	if !cfg.Slack.Allows(a.User, a.UserName, d.groupsOf(ctx, cfg.Slack.AllowedGroups, a.User)) {
		log.Warn("slack action refused: the user is not in slack.allowed_users or allowed_groups")
		d.respond(ctx, a, "You are not allowed to act on wscanary's incidents (slack.allowed_users / allowed_groups).")
		return
	}
	if c == nil {
		log.Warn("slack action ignored: the check is no longer configured", "check", rec.Decision.Check)
		return
	}
	log = log.With("check", c.Name)
	now := d.now()
	switch a.ID {
	case notifier.ActionAck:
		err = d.engine.Refresh(ctx, c, func(ctx context.Context, tx *store.Tx, cur *store.Record) (bool, error) {
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
			err = d.engine.Refresh(ctx, c, nil, a.IncidentID)
		}
	case notifier.ActionRun:
		if wait, ok := d.runAgain(c); !ok {
			if wait > 0 {
				d.respond(ctx, a, fmt.Sprintf("%s ran a moment ago; Run again works again in %ds.", c.Name, int(wait.Seconds()+0.999)))
			} else {
				d.respond(ctx, a, c.Name+" is already running; its result will update the message.")
			}
			log.Info("slack action coalesced: the check is running or ran a moment ago")
			return
		}
	}
	if err != nil {
		log.Error("slack action not carried out", "err", err)
		d.engine.StoreFails("action", err)
		return
	}
	log.Info("slack action carried out")
}

// runAgain starts a run of c at once (Run again), bounded like a scheduled
// run: never while one of the check's runs is in flight (the scheduler's
// overlap guard), and at most once per runAgainCooldown. It says how long
// the cooldown still holds when it does not start one (0: one is running).
func (d *Daemon) runAgain(c *config.Check) (time.Duration, bool) {
	d.mu.Lock()
	flag := d.running[c.Name]
	d.mu.Unlock()
	if flag == nil {
		return 0, false
	}
	now := d.now()
	d.clicks.mu.Lock()
	if d.clicks.lastRun == nil {
		d.clicks.lastRun = map[string]time.Time{}
	}
	if left := runAgainCooldown - now.Sub(d.clicks.lastRun[c.Name]); left > 0 {
		d.clicks.mu.Unlock()
		return left, false
	}
	if !flag.CompareAndSwap(false, true) {
		d.clicks.mu.Unlock()
		return 0, false
	}
	d.clicks.lastRun[c.Name] = now
	d.clicks.mu.Unlock()
	go func() {
		defer flag.Store(false)
		d.runNow(c)
	}()
	return 0, true
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
	d.engine.Feed(engine.NewObservation(c, traceURL, rep, d.now(), true))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
