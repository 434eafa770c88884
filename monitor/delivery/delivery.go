// Package delivery sends the outbox: one sender per notifier, each with its
// own claims, backoff, pause and bounded flights (docs/architecture.md, 6).
//
// It owns the notifiers and the routing of a message to them (the engine's
// Router), the storm summary and the re-sending of open incidents to
// notifiers that forget them. It decides nothing about incidents: it reads
// the outbox rows the engine wrote, and the engine's local messages while
// the store is away.
package delivery

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
	"sync/atomic"
)

// fleetPoll bounds how long a member of a fleet waits before it looks at
// the outbox again: another member may have queued a message, or died
// holding one whose lease ran out.
const fleetPoll = 2 * time.Second

// Options are delivery's dependencies.
type Options struct {
	Store  *store.Store
	Engine *engine.Engine
	// Member names this daemon's claims.
	Member string
	// Primary is the primary notifier (Slack or the console), Targets the
	// notify: ones by name.
	Primary notifier.Notifier
	Targets map[string]notifier.Notifier
	// Config is the configuration in force (targets of a check).
	Config  func() *config.Config
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	Now     func() time.Time
}

// Delivery is the senders of one daemon.
type Delivery struct {
	opts      Options
	log       *slog.Logger
	store     *store.Store
	member    string
	notifiers atomic.Pointer[notifierSet]
	senders   map[string]*sender
	// stormLooked is when the primary sender last looked for a storm (its
	// loop only); stormOwed since when a summary is due and could not be
	// posted, stormTries how many times it was tried since.
	stormLooked time.Time
	stormOwed   time.Time
	stormTries  int

	ctx    context.Context
	cancel context.CancelFunc
	loops  sync.WaitGroup
}

// New makes a sender per notifier; Start runs them.
func New(opts Options) *Delivery {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Delivery{opts: opts, log: opts.Logger, store: opts.Store, member: opts.Member, ctx: ctx, cancel: cancel,
		senders: map[string]*sender{"": newSender("")}}
	d.notifiers.Store(&notifierSet{primary: opts.Primary, targets: opts.Targets})
	for name := range opts.Targets {
		d.senders[name] = newSender(name)
	}
	return d
}

// Start runs every sender and the re-sending of open incidents.
func (d *Delivery) Start() {
	d.loops.Add(1 + len(d.senders))
	for _, s := range d.senders {
		go d.sendLoop(s)
	}
	go d.refreshLoop()
	d.Kick() // deliver what a previous process left in the outbox
}

// Stop ends the senders once their flights landed. What is undelivered
// stays in the outbox for the next start.
func (d *Delivery) Stop() {
	d.cancel()
	d.loops.Wait()
}

// Kick wakes every sender: the outbox has something new.
func (d *Delivery) Kick() {
	for _, s := range d.senders {
		s.kick()
	}
}

// Reset ends the hold of notifiers held as broken: the configuration was
// reloaded, and the fix may be in it.
func (d *Delivery) Reset() {
	for _, s := range d.senders {
		s.reset()
	}
}

func (d *Delivery) now() time.Time {
	if d.opts.Now != nil {
		return d.opts.Now()
	}
	return time.Now()
}

func (d *Delivery) metrics() *telemetry.Metrics { return d.opts.Metrics }

// storeTimeout and retryStoreEvery are the engine's.
const (
	storeTimeout    = engine.StoreTimeout
	retryStoreEvery = engine.RetryStoreEvery
)

// Drain delivers everything due now, sender by sender, and waits for what
// it started, until nothing more is due: for a caller that steps its own
// clock (the simulated tests) instead of running the senders' loops.
func (d *Delivery) Drain() {
	for {
		started := false
		for _, s := range d.senders {
			before := s.launched.Load()
			d.sendDue(s)
			s.flights.Wait()
			if s.launched.Load() != before {
				started = true
			}
		}
		if !started {
			return
		}
	}
}
