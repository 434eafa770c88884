// Package engine is the single owner of series, incidents and decisions:
// finished runs go in, outbox rows come out (docs/architecture.md, section 3).
//
// It records each batch of runs and decides the checks they touch in one
// store transaction; while the store fails it decides from memory and a
// journal, and hands that over when the store is back. It does not know
// notifiers, delivery, the fleet's heartbeats or the web pages: routing a
// message to notifiers is a Router it is given, and the pages read a
// Snapshot.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
)

// Router fans a message out to notifiers: For(targets) gives one copy per
// target that takes its kind (each with its own id), All names every
// target, for fleet notices. Delivery owns the notifiers and implements it.
type Router interface {
	For(targets []string) func(notifier.Message) []notifier.Message
	All() []string
}

// noRoutes routes nothing: an engine without notifiers keeps its decisions
// and queues no message.
type noRoutes struct{}

func (noRoutes) For([]string) func(notifier.Message) []notifier.Message {
	return func(notifier.Message) []notifier.Message { return nil }
}
func (noRoutes) All() []string { return nil }

// Options are the engine's dependencies.
type Options struct {
	Store *store.Store
	// Config is the configuration at start; SetConfig swaps it on reload.
	Config *config.Config
	Router Router
	// Queued is told when messages were queued in the outbox or in memory
	// (delivery wakes up); nil for none.
	Queued  func()
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LocalAfter is how long the store may fail before the engine decides
	// on its own view (0: at once).
	LocalAfter time.Duration
	// NoHistory keeps no history rows (the benchmark's comparison).
	NoHistory bool
}

// Engine is the owner of series, incidents and decisions. Feed takes the
// runs; Start, StopFeed and Close are its lifecycle.
type Engine struct {
	opts    Options
	log     *slog.Logger
	store   *store.Store
	mem     *memory
	member  string
	health  storeHealth
	journal *journal
	cfg     atomic.Pointer[config.Config]
	// lastOpen is when this member last decided a new incident (unix ns):
	// the opens of a storm wait until it has been quiet a moment.
	lastOpen atomic.Int64

	feedIn   chan Observation
	feedDone chan struct{}
	feedWG   sync.WaitGroup
	loops    sync.WaitGroup
	// ctx ends the engine's store work at Close.
	ctx    context.Context
	cancel context.CancelFunc
}

// New loads what the store knows of this member's checks (series, open
// incidents, warnings), frees the outbox claims a crash of this member
// left, and restores from the journal what a previous process decided
// without the store.
func New(opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Queued == nil {
		opts.Queued = func() {}
	}
	if opts.Router == nil {
		opts.Router = noRoutes{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{opts: opts, log: opts.Logger, store: opts.Store, mem: newMemory(), member: opts.Config.Vantage,
		feedIn: make(chan Observation, 4096), feedDone: make(chan struct{}), ctx: ctx, cancel: cancel}
	e.cfg.Store(opts.Config)
	e.health.okSince = e.now()
	e.health.ok = true
	j, err := openJournal(opts.Config.StateDir)
	if err != nil {
		e.log.Warn("no journal for what is decided without the store: a crash during a store outage may post those incidents again",
			"state_dir", opts.Config.StateDir, "err", err)
	}
	e.journal = j
	if err := e.load(ctx); err != nil {
		j.close()
		cancel()
		return nil, err
	}
	return e, nil
}

// load brings the store's series and incidents of this member into memory.
func (e *Engine) load(ctx context.Context) error {
	now := e.now()
	rows, err := e.store.AllSeries(ctx, now)
	if err != nil {
		return fmt.Errorf("load series: %w", err)
	}
	for _, r := range rows {
		if r.Member == e.member {
			e.mem.series[keyOf(r)] = r
		}
	}
	open, err := e.store.OpenIncidents(ctx)
	if err != nil {
		return fmt.Errorf("load incidents: %w", err)
	}
	for check, r := range open {
		e.mem.incidents[check] = r
	}
	warnings, err := e.store.Warnings(ctx)
	if err != nil {
		return fmt.Errorf("load warnings: %w", err)
	}
	for _, w := range warnings {
		e.mem.warnings[w] = true
	}
	if err := e.store.ReleaseClaims(ctx, e.member); err != nil {
		return fmt.Errorf("release claims: %w", err)
	}
	st, err := e.journal.load()
	if err != nil {
		e.log.Error("the journal of what was decided without the store cannot be read; starting without it", "err", err)
	}
	if len(st.Incidents)+len(st.Messages) > 0 {
		// A previous process decided these alone and ended before it could
		// hand them over: hand them over now, with where their messages are.
		e.mem.restore(st, now)
		e.health.reconcile = true
		e.log.Warn("handing over what a previous process decided without the store", "incidents", len(st.Incidents), "messages", len(st.Messages))
	}
	return nil
}

// Start runs the feed and the prune, each on its own goroutine.
func (e *Engine) Start() {
	e.feedWG.Add(1)
	go e.feedLoop()
	e.loops.Add(1)
	go e.pruneLoop()
}

// Feed hands a finished run to the engine; false once the feed has
// stopped (a run that ended after the last record).
func (e *Engine) Feed(o Observation) bool {
	select {
	case e.feedIn <- o:
		return true
	case <-e.feedDone:
		return false
	}
}

// StopFeed records what the feed holds and ends it. Delivery may still use
// the engine (its local messages, the store's health) until Close.
func (e *Engine) StopFeed() {
	select {
	case <-e.feedDone:
		return
	default:
	}
	close(e.feedDone)
	e.feedWG.Wait()
}

// Close ends the engine's store work and its journal; after StopFeed and
// after delivery stopped.
func (e *Engine) Close() {
	e.StopFeed()
	e.cancel()
	e.loops.Wait()
	e.journal.close()
}

// SetConfig swaps in a reloaded configuration.
func (e *Engine) SetConfig(cfg *config.Config) { e.cfg.Store(cfg) }

func (e *Engine) config() *config.Config { return e.cfg.Load() }

func (e *Engine) now() time.Time {
	if e.opts.Now != nil {
		return e.opts.Now()
	}
	return time.Now()
}

func (e *Engine) metrics() *telemetry.Metrics { return e.opts.Metrics }

func (e *Engine) kick() { e.opts.Queued() }

// route is the router for a check's targets.
// routeOf is route for any check of cfg.
func (e *Engine) routeOf(cfg *config.Config) func(*config.Check) func(notifier.Message) []notifier.Message {
	return func(c *config.Check) func(notifier.Message) []notifier.Message { return e.route(c, cfg) }
}

func (e *Engine) route(c *config.Check, cfg *config.Config) func(notifier.Message) []notifier.Message {
	return e.opts.Router.For(c.Targets(cfg))
}

// saveAlone journals what memory holds that the store does not.
func (e *Engine) saveAlone() {
	if err := e.journal.save(e.mem.aloneState); err != nil {
		e.log.Warn("the journal of what is decided without the store cannot be written", "err", err)
	}
}

// LastOpen is when this member last decided a new incident.
func (e *Engine) LastOpen() time.Time { return time.Unix(0, e.lastOpen.Load()) }

// Token is what the check's last run said of its credential.
func (e *Engine) Token(check string) *report.Token { return e.mem.token(check) }

// Snapshot is what this member knows without its store: its series and
// the open incidents it holds.
func (e *Engine) Snapshot(now time.Time) ([]store.SeriesRow, map[string]*store.Record) {
	e.mem.mu.Lock()
	defer e.mem.mu.Unlock()
	var rows []store.SeriesRow
	for _, r := range e.mem.series {
		r.Stale = now.Sub(r.Updated) > 10*time.Minute
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b store.SeriesRow) int {
		return strings.Compare(a.Check+"\x00"+a.Vantage+"\x00"+string(a.Route)+"\x00"+string(a.Transport),
			b.Check+"\x00"+b.Vantage+"\x00"+string(b.Route)+"\x00"+string(b.Transport))
	})
	open := map[string]*store.Record{}
	for c, r := range e.mem.incidents {
		if r.Decision.State == incident.Open {
			cp := *r
			open[c] = &cp
		}
	}
	return rows, open
}

// Refresh changes the open incident id of check with change (when set),
// then decides the check again and updates its message (a person clicked:
// acknowledge, silence). An incident that closed meanwhile is left alone.
func (e *Engine) Refresh(ctx context.Context, c *config.Check, change func(context.Context, *store.Tx, *store.Record) (bool, error), id string) error {
	cfg := e.config()
	dc := decision{cfg: cfg, check: c, traceURL: cfg.TraceURL, token: e.mem.token(c.Name), now: e.now(), windows: cfg.Maintenance, force: true,
		route: e.route(c, cfg), routeOf: e.routeOf(cfg)}
	t := &tee{mem: e.mem}
	err := e.store.Update(ctx, func(tx *store.Tx) error {
		t.Tx, t.staged, t.queued, t.opens = tx, nil, 0, 0
		lock := []string{c.Name}
		if grouped(cfg, c) {
			lock = append(lock, groupLock)
		}
		if err := tx.LockChecks(ctx, lock); err != nil {
			return err
		}
		cur, err := tx.Incident(ctx, c.Name)
		if err != nil {
			return err
		}
		if cur == nil || cur.Decision.ID != id || cur.Decision.State != incident.Open {
			e.log.Info("slack action: the incident is no longer open", "check", c.Name, "incident", id)
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
		e.kick()
	}
	return nil
}

// Enqueue queues m for the notifiers route picks, in the transaction tx
// (a fleet notice of the heartbeat).
func Enqueue(ctx context.Context, tx *store.Tx, route func(notifier.Message) []notifier.Message, m notifier.Message, incidentID string, now time.Time) error {
	return enqueue(ctx, tx, route, m, incidentID, now)
}

// The local outbox: messages decided while the store was away, delivered
// by the senders before the store's (docs/architecture.md, section 7).

// NextLocal is the next message decided alone that is due for target,
// with its incident; else how long until one is (0: none waits).
func (e *Engine) NextLocal(target string, now time.Time) (notifier.Message, string, time.Duration, bool) {
	return e.mem.nextLocal(target, now)
}

// DeferLocal makes a message decided alone due at next.
func (e *Engine) DeferLocal(id string, next time.Time) { e.mem.deferLocal(id, next) }

// DoneLocal records a delivery of a message decided alone: removed (sent or
// given up), or retried at retry; root is where an incident's first message
// landed. What memory holds alone is journaled again.
func (e *Engine) DoneLocal(id string, remove bool, root *notifier.Delivery, retry time.Time) {
	e.mem.doneLocal(id, remove, root, retry)
	if remove {
		e.saveAlone() // where it landed survives a crash
	}
}

// LocalInfo is how often a message decided alone was tried, and since when
// it waits.
func (e *Engine) LocalInfo(id string) (int, time.Time) { return e.mem.localInfo(id) }

// PendingLocal counts the messages decided alone that wait.
func (e *Engine) PendingLocal() int { return e.mem.pendingLocal() }

// SetRoot records where an incident's first message landed (the store has
// it too, once Done).
func (e *Engine) SetRoot(incidentID string, root notifier.Delivery) { e.mem.setRoot(incidentID, root) }

// OpenIncident is the check's open incident as this member holds it.
func (e *Engine) OpenIncident(check string) (store.Record, bool) { return e.mem.openIncident(check) }
