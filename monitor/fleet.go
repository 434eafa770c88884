package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// The fleet: every daemon whose store is the same PostgreSQL database is a
// member, named by its vantage. Members heartbeat through the store; the
// first to see that another stopped reporting says so, once.
const (
	// heartbeatEvery is how often a member tells the store it is alive.
	heartbeatEvery = 5 * time.Second
	// minSilence is the shortest silence that names a member: three
	// heartbeats, however short its check intervals are.
	minSilence = 3 * heartbeatEvery
	// fleetPoll bounds how long a member of a fleet waits before it looks
	// at the outbox again: another member may have queued a message, or
	// died holding one whose lease ran out.
	fleetPoll = 2 * time.Second
)

// silenceAfter is how long a member may go without a heartbeat before it
// counts as silent: three of its shortest check intervals, and at least
// three heartbeats.
func silenceAfter(m store.Member) time.Duration {
	return max(3*m.Interval, minSilence)
}

// self is this daemon as a member.
func (d *Daemon) self() store.Member {
	d.mu.Lock()
	defer d.mu.Unlock()
	shortest := time.Duration(0)
	now := d.now()
	for i := range d.cfg.Checks {
		if iv := d.cfg.Checks[i].Interval(now); shortest == 0 || iv < shortest {
			shortest = iv
		}
	}
	return store.Member{Name: d.member, Started: d.startedAt, Interval: shortest, Version: d.opts.Version}
}

// fleetLoop beats at start and every heartbeatEvery until the daemon stops.
func (d *Daemon) fleetLoop() {
	defer d.loops.Done()
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		d.heartbeat()
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat tells the store this member is alive, says when it comes back
// from a silence, names the members that went silent, and exports what it
// knows of the fleet as metrics.
func (d *Daemon) heartbeat() {
	now := d.now()
	if !d.storeUsable(now) {
		return
	}
	me := d.self()
	shared := d.store.Shared()
	ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
	defer cancel()
	d.health.mu.Lock()
	okSince, judge := d.health.okSince, d.health.ok
	d.health.mu.Unlock()
	// A member not seen since this one reached the store again may have
	// been cut off by the same outage: it gets a whole silence from then.
	threshold := func(m store.Member) time.Duration { return silenceAfter(m) + max(0, okSince.Sub(m.Seen)) }
	var silent []store.Member
	var back *store.Member
	var twin bool
	queued := 0
	err := d.store.Update(ctx, func(tx *store.Tx) error {
		silent, back, twin, queued = nil, nil, false, 0
		prev, err := tx.Heartbeat(ctx, me, now)
		if err != nil {
			return err
		}
		// Another process with this name beat since our last heartbeat.
		twin = d.beats > 0 && prev != nil && prev.Started.UnixMilli() != me.Started.UnixMilli() && now.Sub(prev.Seen) < minSilence
		if !shared {
			return nil
		}
		if prev != nil && prev.Silent {
			back = prev
			n := memberNotice("wscanary in "+me.Name+" reports again", fmt.Sprintf("It was silent from %s to %s; its series count again.",
				stamp(prev.Seen), stamp(now)))
			n.Good = true
			if err := enqueue(ctx, tx, d.router(d.allTargets()), notifier.Message{ID: fmt.Sprintf("member/%s/back/%d", me.Name, now.UnixMilli()),
				Kind: notifier.KindNotice, Notice: &n}, "", now); err != nil {
				return err
			}
			queued++
		}
		if !judge { // the store is back just now: judge from the next beat
			return nil
		}
		silent, err = tx.NewlySilent(ctx, me.Name, now, threshold)
		if err != nil {
			return err
		}
		for _, m := range silent {
			n := memberNotice(fmt.Sprintf("wscanary in %s stopped reporting at %s", m.Name, stamp(m.Seen)),
				fmt.Sprintf("No heartbeat for %s (three of its shortest check intervals, at least %s). Until it returns its series neither open nor close incidents; an incident it alone saw stays open.",
					now.Sub(m.Seen).Round(time.Second), minSilence),
				"Look at the daemon in "+m.Name+": `systemctl status wscanary`, its logs, and its route to the database.")
			if err := enqueue(ctx, tx, d.router(d.allTargets()), notifier.Message{ID: fmt.Sprintf("member/%s/silent/%d", m.Name, m.Seen.UnixMilli()),
				Kind: notifier.KindNotice, Notice: &n}, "", now); err != nil {
				return err
			}
			queued++
		}
		return nil
	})
	if err != nil {
		d.storeFails("heartbeat", err)
		return
	}
	d.storeWorks()
	d.beats++
	if twin {
		d.log.Error("another wscanary reports as the same member: give each daemon its own vantage", "member", me.Name)
	}
	if back != nil {
		d.log.Warn("this member had been marked silent by the fleet", "silent_since", back.Seen)
	}
	for _, m := range silent {
		d.log.Warn("a fleet member stopped reporting", "member", m.Name, "seen", m.Seen)
	}
	if queued > 0 {
		d.kick()
	}
	members, err := d.store.Members(ctx)
	if err != nil {
		return
	}
	d.fleet.Store(&members)
	for _, m := range members {
		d.metrics().Member(m.Name, m.Seen, m.Silent)
	}
}

// Members returns the members last read from the store.
func (d *Daemon) Members() []store.Member {
	if p := d.fleet.Load(); p != nil {
		return *p
	}
	return nil
}

// refreshIncidents brings the fleet's open incidents into memory, so that
// this member decides them with its runs, and knows them (and where their
// messages are) if the store goes away.
func (d *Daemon) refreshIncidents(ctx context.Context) {
	open, err := d.store.OpenIncidents(ctx)
	if err != nil {
		return
	}
	d.mu.Lock()
	configured := map[string]bool{}
	for i := range d.cfg.Checks {
		configured[d.cfg.Checks[i].Name] = true
	}
	d.mu.Unlock()
	d.mem.mu.Lock()
	defer d.mem.mu.Unlock()
	for check, r := range open {
		if !configured[check] || d.mem.dirty[check] {
			continue
		}
		if cur, ok := d.mem.incidents[check]; !ok || cur.Decision.ID != r.Decision.ID || cur.Decision.State != incident.Open {
			d.mem.incidents[check] = r
		}
	}
}

// aloneNotice is said once when a member of a fleet starts alerting on its
// own view because the store is unreachable.
func (d *Daemon) aloneNotice(now time.Time) {
	h := &d.health
	h.mu.Lock()
	said, since := h.aloneSaid, h.since
	h.aloneSaid = true
	h.mu.Unlock()
	if said || !d.store.Shared() {
		return
	}
	n := memberNotice(fmt.Sprintf("wscanary in %s cannot reach the fleet store", d.member),
		fmt.Sprintf("Since %s its writes to %s fail. It keeps probing and now alerts on what it alone sees; incidents the fleet had open are left as they are.",
			stamp(since), d.store.Where()),
		"When the store is back it hands over what it decided and posts nothing twice.")
	enqueue(context.Background(), d.mem, d.router(d.allTargets()), notifier.Message{ID: fmt.Sprintf("member/%s/alone/%d", d.member, since.UnixMilli()),
		Kind: notifier.KindNotice, Notice: &n}, "", now)
	d.log.Warn("the fleet store is unreachable: alerting on this member's own view", "since", since)
}

func memberNotice(title string, lines ...string) notifier.Notice {
	return notifier.Notice{Title: title, Lines: lines}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
