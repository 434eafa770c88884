package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wscanary/wscanary/monitor/actions"
	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/delivery"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/fleet"
	"github.com/wscanary/wscanary/monitor/gctune"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/monitor/schedule"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/monitor/web"
	"github.com/wscanary/wscanary/notifier"
)

// Defaults of the daemon that the configuration does not expose.
const (
	// DefaultMaxAttempts bounds concurrent handshakes across all checks,
	// and the scheduler's workers (runs in progress).
	DefaultMaxAttempts = 256
	// healthyWithin: /healthz and the watchdog need a scheduler wake-up
	// this recent (it wakes at least every schedule.HeartbeatEvery).
	healthyWithin = 5 * time.Second
	// StopGrace is how long a stop lets runs in flight finish before it
	// cancels them. A check's timeout may be up to config.MaxTimeout, but a
	// stop must end within systemd's TimeoutStopSec (30 s in our unit).
	StopGrace = 10 * time.Second
	// LocalAfterShared is how long a member of a fleet waits, its store
	// unreachable, before it alerts on what it alone sees: long enough for
	// a database failover, short enough to matter.
	LocalAfterShared = 2 * time.Minute
)

// DaemonOptions are the daemon's dependencies; cmd/wscanary builds them.
type DaemonOptions struct {
	Config *config.Config
	// Store keeps series, incidents, the outbox and the history.
	Store *store.Store
	// Notifier delivers messages (Slack, console, or both): the primary
	// target. Targets are the notifiers under notify:, by name.
	Notifier notifier.Notifier
	Targets  map[string]notifier.Notifier
	// Telemetry may be nil (no spans, no metrics).
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
	// MaxAttempts bounds concurrent handshakes; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LocalAfter is how long the store may fail before the daemon decides
	// on its own view; 0 means at once for SQLite (no one else decides)
	// and LocalAfterShared for a shared store.
	LocalAfter time.Duration
	// NoHistory records no history rows: what the benchmark compares the
	// history's cost against. Series, incidents and the outbox are kept.
	NoHistory bool
	// OnReport, when set, sees every run's report.
	OnReport func(report.Report)
	// Version is this build's, recorded with the member in the store.
	Version string
	// OnTick, when set, sees every scheduled tick of a check with how late
	// it started (the benchmark measures the scheduler with it).
	OnTick func(check string, late time.Duration)
	// TuneGC: this daemon owns its process (`wscanary run`), and sizes
	// the garbage collector to its checks (monitor/gctune) at start and
	// reload.
	TuneGC bool
}

// Daemon is `wscanary run`. Its work is split by concern: this file starts,
// reloads and stops it and schedules the runs; feed.go records runs into
// the store and decides incidents; deliver.go sends the outbox; http.go
// serves /healthz, /status, /metrics and the status page.
type Daemon struct {
	// reloading keeps reloads one at a time, the store write included.
	reloading sync.Mutex
	opts      DaemonOptions
	log       *slog.Logger
	store     *store.Store
	// engine owns series, incidents and decisions (monitor/engine).
	engine *engine.Engine
	member string
	limit  chan struct{}
	// ctx ends the loops; runCtx ends runs in flight (first, at a stop).
	ctx      context.Context
	cancel   context.CancelFunc
	runCtx   context.Context
	stopRuns context.CancelFunc

	mu  sync.Mutex
	cfg *config.Config
	// gc sizes the process's collector to cfg (opts.TuneGC); under mu.
	gc *gctune.Tuner
	// sched fires the checks (monitor/schedule); current is what a fire
	// runs with: the configuration and runner in force.
	sched   *schedule.Scheduler
	current atomic.Pointer[installed]

	// web serves /healthz, /status, /metrics and the status page.
	web *web.Server
	// actions carries out clicks on the buttons (monitor/actions).
	actions *actions.Handler
	// delivery sends the outbox to the notifiers (monitor/delivery).
	delivery *delivery.Delivery
	// fleet is this member's heartbeat through the store (monitor/fleet).
	fleet    *fleet.Fleet
	lastTick atomic.Int64
	started  atomic.Bool
	stopped  atomic.Bool
	runs     inflight
	loops    sync.WaitGroup
}

// NewDaemon validates the options and loads what the store knows of this
// daemon's checks; Start begins scheduling.
func NewDaemon(opts DaemonOptions) (*Daemon, error) {
	if opts.Config == nil || opts.Store == nil || opts.Notifier == nil {
		return nil, errors.New("daemon needs a config, a store and a notifier")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.LocalAfter == 0 && opts.Store.Shared() {
		opts.LocalAfter = LocalAfterShared
	}
	ctx, cancel := context.WithCancel(context.Background())
	runCtx, stopRuns := context.WithCancel(ctx)
	d := &Daemon{
		opts: opts, log: opts.Logger, store: opts.Store, member: opts.Config.Vantage,
		limit: make(chan struct{}, opts.MaxAttempts),
		ctx:   ctx, cancel: cancel, runCtx: runCtx, stopRuns: stopRuns,
		cfg: opts.Config,
	}
	d.sched = schedule.New(schedule.Options{Workers: opts.MaxAttempts, Run: d.fire, Skipped: d.skipped,
		Beat: func(time.Time) { d.lastTick.Store(d.now().UnixNano()) },
		Panicked: func(check string, v any) {
			d.log.Error("a run panicked", "check", check, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}})
	kick := func() { d.delivery.Kick() }
	e, err := engine.New(engine.Options{Store: opts.Store, Config: opts.Config, Router: routes{d}, Queued: kick,
		Logger: opts.Logger, Metrics: d.metrics(), Now: opts.Now, LocalAfter: opts.LocalAfter, NoHistory: opts.NoHistory})
	if err != nil {
		cancel()
		return nil, err
	}
	d.engine = e
	d.delivery = delivery.New(delivery.Options{Store: opts.Store, Engine: e, Member: d.member, Primary: opts.Notifier, Targets: opts.Targets,
		Config: d.config, Logger: opts.Logger, Metrics: d.metrics(), Now: opts.Now})
	d.fleet = fleet.New(fleet.Options{Store: opts.Store, Engine: e, Router: d.delivery, Queued: kick, Config: d.config, Member: d.member,
		Started: d.now(), Version: opts.Version, Logger: opts.Logger, Metrics: d.metrics(), Now: opts.Now})
	d.actions = actions.New(actions.Options{Store: opts.Store, Engine: e, Config: d.config, Primary: func() notifier.Notifier { return d.delivery.NotifierFor("") },
		Run: d.runAgain, Logger: opts.Logger, Now: opts.Now})
	d.web = web.New(web.Options{Store: opts.Store, Engine: e, Config: d.config, Healthy: d.Healthy, Notifiers: d.delivery.Notifiers,
		Members: d.fleet.Members, Logger: opts.Logger, Now: opts.Now})
	return d, nil
}

// Handler serves /healthz, /status, /metrics (metrics may be nil) and the
// status page (monitor/web).
func (d *Daemon) Handler(metrics http.Handler) http.Handler { return d.web.Handler(metrics) }

// Status is what /status serves.
func (d *Daemon) Status(ctx context.Context) web.StatusDoc { return d.web.Status(ctx) }

func (d *Daemon) now() time.Time {
	if d.opts.Now != nil {
		return d.opts.Now()
	}
	return time.Now()
}

func (d *Daemon) metrics() *telemetry.Metrics {
	if d.opts.Telemetry == nil {
		return nil
	}
	return d.opts.Telemetry.Metrics
}

// Start schedules every check and starts recording and delivery.
func (d *Daemon) Start() {
	d.mu.Lock()
	d.install(d.opts.Config)
	d.mu.Unlock()
	d.lastTick.Store(d.now().UnixNano())
	d.sched.Start()
	d.started.Store(true)
	d.engine.Start()
	d.delivery.Start()
	d.loops.Add(1)
	go func() {
		defer d.loops.Done()
		d.fleet.Run(d.ctx)
	}()
}

// installed is the configuration a fire runs with, and its runner.
type installed struct {
	cfg    *config.Config
	runner *runner.Runner
}

// install puts cfg in force: a runner for it, and the schedule changed
// only where cfg changed it (checks whose schedule is unchanged keep their
// next fire time). Caller holds d.mu.
func (d *Daemon) install(cfg *config.Config) schedule.Diff {
	// The engine decides on the configuration the schedule runs.
	d.engine.SetConfig(cfg)
	rn := runner.New(cfg, d.opts.Telemetry)
	rn.Limit = d.limit
	d.current.Store(&installed{cfg: cfg, runner: rn})
	d.cfg = cfg
	if d.opts.TuneGC {
		if d.gc == nil {
			d.gc = gctune.New(len(cfg.Checks))
		} else {
			d.gc.Size(len(cfg.Checks))
		}
	}
	want := make([]schedule.Entry, len(cfg.Checks))
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		want[i] = schedule.Entry{Key: c.Name, Spec: c.Schedule, Sched: c.Sched}
	}
	return d.sched.Sync(want)
}

// Reload swaps in a new configuration. Checks that still exist keep their
// series and incidents; those of removed checks (and of vantages a check
// no longer names) are dropped, and an incident of a removed check is
// resolved. Runs in flight finish with the configuration they started with.
func (d *Daemon) Reload(cfg *config.Config) {
	d.reloading.Lock()
	defer d.reloading.Unlock()
	d.mu.Lock()
	if d.stopped.Load() {
		d.mu.Unlock()
		return
	}
	old := d.cfg
	diff := d.install(cfg)
	d.mu.Unlock()
	// The store write (up to storeTimeout) runs without d.mu: every run
	// that ends takes d.mu, and none should wait behind a reload.
	d.engine.Forget(old, cfg)
	d.delivery.Reset() // a notifier held as broken may be mended: try it now
	d.log.Info("configuration reloaded", "checks", len(cfg.Checks),
		"added", diff.Added, "rescheduled", diff.Changed, "removed", diff.Removed)
}

// Stop stops scheduling, lets runs in flight finish for StopGrace (or
// until ctx ends), cancels the rest, records what finished, and stops
// delivery. Cancelled runs are not recorded. Undelivered messages stay in
// the outbox for the next start.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped.Swap(true) {
		d.mu.Unlock()
		return nil
	}
	if d.gc != nil {
		d.gc.Stop()
	}
	d.mu.Unlock()
	if d.started.Load() {
		d.sched.Stop()
	}
	var err error
	graceCtx, cancel := context.WithTimeout(ctx, StopGrace)
	if !d.sched.Wait(graceCtx) || !d.runs.wait(graceCtx) {
		d.log.Warn("stop: cancelling runs still in flight", "grace", StopGrace.String())
	}
	cancel()
	d.stopRuns()
	if !d.sched.Wait(ctx) || !d.runs.wait(ctx) {
		err = fmt.Errorf("stop: runs still in flight: %w", ctx.Err())
	}
	d.engine.StopFeed() // the feed records what is left, then ends
	d.cancel()
	d.loops.Wait()
	d.delivery.Stop()
	d.engine.Close()
	return err
}

// inflight counts runs in progress; wait needs no goroutine of its own, so
// a wait that gives up leaves nothing behind.
type inflight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed while n == 0
}

func (f *inflight) add() {
	f.mu.Lock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.zero)
	}
	f.mu.Unlock()
}

// wait reports whether the count reached zero before ctx ended.
func (f *inflight) wait(ctx context.Context) bool {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return true
	}
	zero := f.zero
	f.mu.Unlock()
	select {
	case <-zero:
		return true
	case <-ctx.Done():
		return false
	}
}

// Healthy reports whether the scheduler is ticking: the condition for
// /healthz and for systemd's watchdog. A store that cannot be written
// makes the daemon degraded, not unhealthy: restarting it would lose what
// it holds in memory.
func (d *Daemon) Healthy() bool {
	if !d.started.Load() || d.stopped.Load() {
		return false
	}
	return d.now().Sub(time.Unix(0, d.lastTick.Load())) < healthyWithin
}

// config is the configuration in force.
func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// routes is delivery's routing as the engine's Router (delivery is made
// after the engine).
type routes struct{ d *Daemon }

func (r routes) For(targets []string) func(notifier.Message) []notifier.Message {
	return r.d.delivery.For(targets)
}
func (r routes) All() []string { return r.d.delivery.All() }

// SetNotifiers swaps in the notifiers of a reloaded configuration (see
// delivery.SetNotifiers); a target new since the start is named.
func (d *Daemon) SetNotifiers(primary notifier.Notifier, targets map[string]notifier.Notifier) []string {
	return d.delivery.SetNotifiers(primary, targets)
}
