package delivery

import (
	"context"
	"slices"
	"time"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/notifier"
)

// refreshEvery is how often open incidents are re-sent to the notifiers
// that forget an alert not re-sent (Alertmanager: notifier.AlertHold).
const refreshEvery = 2 * time.Minute

// notifierSet is the notifiers of one configuration.
type notifierSet struct {
	primary notifier.Notifier
	targets map[string]notifier.Notifier
}

// NotifierFor is the notifier of a target ("" the primary one), nil when
// the configuration no longer has it.
func (d *Delivery) NotifierFor(target string) notifier.Notifier {
	set := d.notifiers.Load()
	if target == "" {
		return set.primary
	}
	if n, ok := set.targets[target]; ok {
		return n
	}
	return nil
}

// SetNotifiers swaps in the notifiers of a reloaded configuration (a new
// Slack token or channel, a receiver's new URL); Reload then tries a
// notifier held as broken again at once, its messages still in order. A target that is new since the start is delivered only
// after a restart; it is reported.
func (d *Delivery) SetNotifiers(primary notifier.Notifier, targets map[string]notifier.Notifier) []string {
	var later []string
	for name := range targets {
		if _, ok := d.senders[name]; !ok {
			later = append(later, name)
		}
	}
	slices.Sort(later)
	d.notifiers.Store(&notifierSet{primary: primary, targets: targets})
	return later // the Reload that follows ends the senders' holds
}

// Notifiers reports each notifier's delivery state, the primary first.
func (d *Delivery) Notifiers() []NotifierStatus {
	out := []NotifierStatus{d.senders[""].status()}
	names := make([]string, 0, len(d.senders))
	for name := range d.senders {
		if name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, d.senders[name].status())
	}
	return out
}

// For is the engine's Router: it fans a message out to targets: one copy per target that takes
// its kind, each with its own id. The primary target keeps the id as it
// is, so an outbox from before notify: still matches.
func (d *Delivery) For(targets []string) func(notifier.Message) []notifier.Message {
	return func(m notifier.Message) []notifier.Message {
		var out []notifier.Message
		for _, t := range targets {
			n := d.NotifierFor(t)
			if n == nil {
				continue
			}
			if s, ok := n.(notifier.Selective); ok && !s.Wants(m.Kind) {
				continue
			}
			if !notifier.Takes(n, t, m.Scope) {
				continue
			}
			c := m
			c.Target = t
			if t != "" {
				c.ID = m.ID + "@" + t
			}
			out = append(out, c)
		}
		return out
	}
}

// All names the primary and every notify: target, for fleet notices.
func (d *Delivery) All() []string {
	out := []string{""}
	for name := range d.notifiers.Load().targets {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// refreshLoop re-sends open incidents to the notifiers that need it.
func (d *Delivery) refreshLoop() {
	defer d.loops.Done()
	var refreshers []string
	for name, n := range d.notifiers.Load().targets {
		if _, ok := n.(notifier.Refresher); ok {
			refreshers = append(refreshers, name)
		}
	}
	if len(refreshers) == 0 {
		return
	}
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		d.refreshOpen(refreshers)
	}
}

func (d *Delivery) refreshOpen(refreshers []string) {
	ctx, cancel := context.WithTimeout(d.ctx, notifyTimeout)
	defer cancel()
	open, err := d.store.OpenIncidents(ctx)
	if err != nil {
		_, open = d.opts.Engine.Snapshot(d.now())
	}
	cfg := d.opts.Config()
	for _, name := range refreshers {
		var views []notifier.Incident
		for check, rec := range open {
			c := cfg.Check(check)
			if c == nil || rec.Decision.State != incident.Open || !slices.Contains(c.Targets(cfg), name) {
				continue
			}
			views = append(views, rec.View)
		}
		if len(views) == 0 {
			continue
		}
		r, ok := d.NotifierFor(name).(notifier.Refresher)
		if !ok {
			continue
		}
		if err := r.Refresh(ctx, views); err != nil {
			d.log.Warn("re-sending open incidents failed; the next try is in a while", "notifier", name, "incidents", len(views), "err", err)
		}
	}
}
