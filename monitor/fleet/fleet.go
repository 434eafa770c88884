// Package fleet is this member's heartbeat through a shared store: it says
// it is alive, names the members that went silent and tells when it is back.
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
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
)

// Options are a member's dependencies.
type Options struct {
	Store  *store.Store
	Engine *engine.Engine
	Router engine.Router
	// Queued is told when notices were queued.
	Queued func()
	// Config is the configuration in force (the shortest check interval).
	Config  func() *config.Config
	Member  string
	Started time.Time
	Version string
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	Now     func() time.Time
}

// Fleet is this member's heartbeat and what it last read of the others.
type Fleet struct {
	opts Options
	log  *slog.Logger
	ctx  context.Context
	// beats counts the heartbeats that went through (Run's own).
	beats   int
	members atomic.Pointer[[]store.Member]
}

// New is this member of the fleet; Run beats.
func New(opts Options) *Fleet {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Fleet{opts: opts, log: opts.Logger}
}

func (f *Fleet) now() time.Time {
	if f.opts.Now != nil {
		return f.opts.Now()
	}
	return time.Now()
}

// silenceAfter is how long a member may go without a heartbeat before it
// counts as silent: three of its shortest check intervals, and at least
// three heartbeats.
func silenceAfter(m store.Member) time.Duration {
	return max(3*m.Interval, minSilence)
}

// self is this daemon as a member.
func (f *Fleet) self() store.Member {
	cfg := f.opts.Config()
	shortest := time.Duration(0)
	now := f.now()
	for i := range cfg.Checks {
		if iv := cfg.Checks[i].Interval(now); shortest == 0 || iv < shortest {
			shortest = iv
		}
	}
	return store.Member{Name: f.opts.Member, Started: f.opts.Started, Interval: shortest, Version: f.opts.Version}
}

// Run beats at start and every heartbeatEvery until ctx ends, on its own
// goroutine: a slow store delays no run's record.
func (f *Fleet) Run(ctx context.Context) {
	f.ctx = ctx
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for {
		f.heartbeat()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeat tells the store this member is alive, says when it comes back
// from a silence, names the members that went silent, and exports what it
// knows of the fleet as metrics.
func (f *Fleet) heartbeat() {
	now := f.now()
	if !f.opts.Engine.StoreUsable(now) {
		return
	}
	me := f.self()
	shared := f.opts.Store.Shared()
	ctx, cancel := context.WithTimeout(f.ctx, engine.StoreTimeout)
	defer cancel()
	okSince, judge := f.opts.Engine.Judging()
	// A member not seen since this one reached the store again may have
	// been cut off by the same outage: it gets a whole silence from then.
	threshold := func(m store.Member) time.Duration { return silenceAfter(m) + max(0, okSince.Sub(m.Seen)) }
	var silent []store.Member
	var back *store.Member
	var twin bool
	queued := 0
	err := f.opts.Store.Update(ctx, func(tx *store.Tx) error {
		silent, back, twin, queued = nil, nil, false, 0
		prev, err := tx.Heartbeat(ctx, me, now)
		if err != nil {
			return err
		}
		// Another process with this name beat since our last heartbeat.
		twin = f.beats > 0 && prev != nil && prev.Started.UnixMilli() != me.Started.UnixMilli() && now.Sub(prev.Seen) < minSilence
		if !shared {
			return nil
		}
		if prev != nil && prev.Silent {
			back = prev
			n := memberNotice("wscanary in "+me.Name+" reports again", fmt.Sprintf("It was silent from %s to %s; its series count again.",
				engine.Stamp(prev.Seen), engine.Stamp(now)))
			n.Good = true
			if err := engine.Enqueue(ctx, tx, f.opts.Router.For(f.opts.Router.All()), notifier.Message{ID: fmt.Sprintf("member/%s/back/%d", me.Name, now.UnixMilli()),
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
			if err := engine.Enqueue(ctx, tx, f.opts.Router.For(f.opts.Router.All()), notifier.Message{ID: fmt.Sprintf("member/%s/silent/%d", m.Name, m.Seen.UnixMilli()),
				Kind: notifier.KindNotice, Notice: &n}, "", now); err != nil {
				return err
			}
			queued++
		}
		return nil
	})
	if err != nil {
		if f.ctx.Err() == nil { // stopping is not a store failure
			f.opts.Engine.StoreFails("heartbeat", err)
		}
		return
	}
	f.opts.Engine.StoreWorks()
	f.beats++
	if twin {
		f.log.Error("another wscanary reports as the same member: give each daemon its own vantage", "member", me.Name)
	}
	if back != nil {
		f.log.Warn("this member had been marked silent by the fleet", "silent_since", back.Seen)
	}
	for _, m := range silent {
		f.log.Warn("a fleet member stopped reporting", "member", m.Name, "seen", m.Seen)
	}
	if queued > 0 {
		f.opts.Queued()
	}
	members, err := f.opts.Store.Members(ctx)
	if err != nil {
		return
	}
	f.members.Store(&members)
	for _, m := range members {
		f.opts.Metrics.Member(m.Name, m.Seen, m.Silent)
	}
}

// Members returns the members last read from the store.
func (f *Fleet) Members() []store.Member {
	if p := f.members.Load(); p != nil {
		return *p
	}
	return nil
}

func memberNotice(title string, lines ...string) notifier.Notice {
	return notifier.Notice{Title: title, Lines: lines}
}
