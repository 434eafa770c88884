package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/wscanary/wscanary/monitor/engine"
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
	if !d.engine.StoreUsable(now) {
		return
	}
	me := d.self()
	shared := d.store.Shared()
	ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
	defer cancel()
	okSince, judge := d.engine.Judging()
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
				engine.Stamp(prev.Seen), engine.Stamp(now)))
			n.Good = true
			if err := engine.Enqueue(ctx, tx, d.delivery.For(d.delivery.All()), notifier.Message{ID: fmt.Sprintf("member/%s/back/%d", me.Name, now.UnixMilli()),
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
			n := memberNotice(fmt.Sprintf("wscanary in %s stopped reporting at %s", m.Name, engine.Stamp(m.Seen)),
				fmt.Sprintf("No heartbeat for %s (three of its shortest check intervals, at least %s). Until it returns its series neither open nor close incidents; an incident it alone saw stays open.",
					now.Sub(m.Seen).Round(time.Second), minSilence),
				"Look at the daemon in "+m.Name+": `systemctl status wscanary`, its logs, and its route to the database.")
			if err := engine.Enqueue(ctx, tx, d.delivery.For(d.delivery.All()), notifier.Message{ID: fmt.Sprintf("member/%s/silent/%d", m.Name, m.Seen.UnixMilli()),
				Kind: notifier.KindNotice, Notice: &n}, "", now); err != nil {
				return err
			}
			queued++
		}
		return nil
	})
	if err != nil {
		d.engine.StoreFails("heartbeat", err)
		return
	}
	d.engine.StoreWorks()
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

func memberNotice(title string, lines ...string) notifier.Notice {
	return notifier.Notice{Title: title, Lines: lines}
}
