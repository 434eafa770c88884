package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// Batching of runs into the store: one transaction records every run that
// finished within flushEvery of a run that changed or failed (a transition
// reaches the outbox at once), or within idleFlush of a run that only
// confirms the steady state, up to maxBatch runs. 10,000 healthy checks
// cost one transaction a second, not 170.
const (
	flushEvery = 50 * time.Millisecond
	idleFlush  = time.Second
	maxBatch   = 1024
	// touchEvery: a series whose state did not change is written this
	// often, not at every run; its freshness allows for it.
	touchEvery = 30 * time.Second
	// sweepEvery: open incidents are decided again this often without new
	// runs (reminders, members that went silent).
	sweepEvery = 30 * time.Second
	// pruneEvery: the history's hours are rolled up, and what is older
	// than history.raw and history.keep deleted, this often.
	pruneEvery = 10 * time.Minute
	// StoreTimeout bounds one store transaction of the feed or delivery:
	// long enough for a batch of a thousand runs on a busy machine.
	StoreTimeout = 30 * time.Second
	// slowAfter: a store that only timed out or was busy (not full, not
	// read-only, not gone) is waited for this long before a daemon with
	// its own SQLite file decides alone; a slow store is not a lost one,
	// and deciding alone beside it would tell incidents twice.
	slowAfter = 30 * time.Second
	// RetryStoreEvery: while the store fails, it is tried again this often.
	RetryStoreEvery = 5 * time.Second
)

// Observation is one finished run, on its way to the store (NewObservation).
type Observation struct {
	check    *config.Check
	traceURL string
	rep      report.Report
	at       time.Time
	// force: a person asked for this run (Run again): the incident's
	// message is refreshed with it even when nothing changed.
	force bool
	// warnings are warningsOf the run, worked out once on the run's own
	// goroutine rather than twice on the feed's.
	warnings map[string]notifier.Notice
}

// NewObservation is a finished run of c that ended at at; force says a
// person asked for it (Run again): its incident's message is refreshed even
// when nothing changed.
func NewObservation(c *config.Check, traceURL string, rep report.Report, at time.Time, force bool) Observation {
	return Observation{check: c, traceURL: traceURL, rep: rep, at: at, force: force, warnings: warningsOf(c, rep, at)}
}

// storeHealth says whether the store takes writes, and since when not.
type storeHealth struct {
	mu        sync.Mutex
	ok        bool
	err       string
	since     time.Time // first failure of the current outage
	lastTry   time.Time
	reconcile bool // decisions were made alone: hand them over when back
	hard      bool // the current outage is more than a slow store
	aloneSaid bool // the fleet was told this member alerts alone
	// okSince is when the store last became reachable (or the process
	// started): members not seen since then may have been cut off by the
	// same outage, so they are judged silent only a silence later.
	okSince time.Time
}

// feedLoop batches finished runs and records them; it also sweeps open
// incidents. Heartbeats and pruning have goroutines of their own
// (fleetLoop, pruneLoop): a long prune or a slow heartbeat must not hold
// the runs' records, nor the ticks that wait on a full feed.
func (e *Engine) feedLoop() {
	defer e.feedWG.Done()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	var batch []Observation
	var flush <-chan time.Time
	var timer *time.Timer
	urgent := false // the pending flush is the short one
	for {
		select {
		case o := <-e.feedIn:
			batch = append(batch, o)
			if len(batch) < maxBatch {
				wait := idleFlush
				if e.eventful(o) {
					wait = flushEvery
				}
				switch {
				case timer == nil:
					timer = time.NewTimer(wait)
					flush = timer.C
				case wait == flushEvery && !urgent:
					timer.Reset(wait)
				}
				urgent = urgent || wait == flushEvery
				continue
			}
		case <-flush:
		case <-sweep.C:
			if e.store.Shared() && e.StoreUsable(e.now()) {
				ctx, cancel := context.WithTimeout(e.ctx, StoreTimeout)
				e.refreshIncidents(ctx)
				cancel()
			}
			e.record(nil, true)
			continue
		case <-e.feedDone:
			for {
				select {
				case o := <-e.feedIn:
					batch = append(batch, o)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				e.record(batch, false)
			}
			return
		}
		if timer != nil {
			timer.Stop()
			timer, flush, urgent = nil, nil, false
		}
		e.record(batch, false)
		batch = nil
	}
}

// eventful: the run may change something people see (a failure, a change
// of state, an open incident, a warning), so it is recorded at once.
func (e *Engine) eventful(o Observation) bool {
	if len(o.warnings) > 0 || e.mem.warned(o.check.Name) {
		return true
	}
	if _, open := e.mem.openIncident(o.check.Name); open {
		return true
	}
	for _, a := range o.rep.Attempts {
		if a.Variant != report.VariantConfigured {
			continue
		}
		p, ok := e.mem.prev(store.AttemptKey(o.check.Name, a))
		if !a.OK || !ok || p.Outcome != report.OutcomeOf(a) || p.Status != a.Status {
			return true
		}
	}
	return false
}

// record writes a batch of runs as series and history and decides the
// checks they touch, in one store transaction; while the store fails,
// it keeps the series in memory and, once LocalAfter has passed, decides
// on this daemon's own view. sweep decides every open incident as well.
func (e *Engine) record(batch []Observation, sweep bool) {
	now := e.now()
	rows, history := e.series(batch, now)
	if e.opts.NoHistory {
		history = nil
	}
	cfg := e.config()
	todo, stale := e.decisions(batch, rows, cfg, sweep, now)
	// Memory has every run; the store gets the series whose state changed
	// or that were not written for touchEvery.
	write := e.mem.toWrite(rows, now)
	e.mem.PutSeries(context.Background(), rows, stale)
	if len(rows) == 0 && len(todo) == 0 && !e.handOverPending() {
		return
	}
	if e.StoreUsable(now) && e.recordInStore(batch, todo, write, stale, history, cfg, now) {
		return
	}
	// Without the store: memory has the series, and decides alone once the
	// store has been away for LocalAfter.
	if e.decidesAlone(now) || e.handOverPending() {
		e.recordAlone(batch, todo, cfg, now)
	}
}

// decisions are the checks a batch makes to decide (and, with sweep, every
// open incident), and how long each check's series stay fresh.
func (e *Engine) decisions(batch []Observation, rows []store.SeriesRow, cfg *config.Config, sweep bool, now time.Time) ([]decision, map[string]time.Duration) {
	stale := map[string]time.Duration{}
	var todo []decision
	runs := map[string]int{}
	for _, o := range batch {
		runs[o.check.Name]++
	}
	seen := map[string]bool{}
	byCheck := map[string][]int{} // rows by check: a batch of n runs is looked at in n steps, not n²
	for i := range rows {
		byCheck[rows[i].Check] = append(byCheck[rows[i].Check], i)
	}
	for _, o := range batch {
		stale[o.check.Name] = staleAfter(o.check, now)
		if seen[o.check.Name] {
			continue
		}
		seen[o.check.Name] = true
		if o.force || e.needsDecision(o, rows, byCheck[o.check.Name]) {
			dc := decision{cfg: cfg, check: o.check, traceURL: o.traceURL, token: o.rep.Token, now: now, windows: cfg.Maintenance, force: o.force,
				route: e.route(o.check, cfg), routeOf: e.routeOf(cfg), member: e.member}
			if runs[o.check.Name] == 1 && o.rep.Error == "" {
				dc.run, dc.runAt = &o.rep.Diagnosis, o.at
			}
			todo = append(todo, dc)
		}
	}
	if sweep {
		for _, name := range e.mem.openChecks() {
			if c := cfg.Check(name); c != nil && !seen[name] {
				todo = append(todo, decision{cfg: cfg, check: c, traceURL: cfg.TraceURL, token: e.mem.token(name), now: now, windows: cfg.Maintenance,
					route: e.route(c, cfg), routeOf: e.routeOf(cfg), member: e.member})
			}
		}
	}
	return todo, stale
}

// recordInStore writes the batch and decides todo in one store
// transaction, with the hand-over when one is pending. It reports whether
// the store took it; false leaves the batch to be decided alone.
func (e *Engine) recordInStore(batch []Observation, todo []decision, write []store.SeriesRow, stale map[string]time.Duration,
	history []store.HistoryRow, cfg *config.Config, now time.Time) bool {
	// e.ctx ends only after the feed has recorded its last batch.
	ctx, cancel := context.WithTimeout(e.ctx, StoreTimeout)
	defer cancel()
	t := &tee{mem: e.mem}
	opened := map[string]bool{}
	var hand *handOff
	lock := make([]string, 0, len(todo)+1)
	for _, dc := range todo {
		lock = append(lock, dc.check.Name)
		if grouped(cfg, dc.check) && !slices.Contains(lock, groupLock) {
			lock = append(lock, groupLock)
		}
	}
	if e.handOverPending() {
		lock = append(lock, e.mem.dirtyChecks()...)
	}
	err := e.store.Update(ctx, func(tx *store.Tx) error {
		t.Tx, t.staged, t.queued, t.opens = tx, nil, 0, 0
		if hand != nil {
			hand.finish(false) // a try that lost a conflict: start again
			hand = nil
		}
		// Every check this transaction decides is locked first, in one
		// order on every member: locks taken as the batch goes would
		// deadlock two members deciding the same checks.
		if err := tx.LockChecks(ctx, lock); err != nil {
			return err
		}
		h, err := e.handOver(ctx, tx, now)
		hand = h
		if err != nil {
			return err
		}
		if err := tx.PutSeries(ctx, write, stale); err != nil {
			return err
		}
		t.staged = append(t.staged, func() { e.mem.written(write, now) })
		if err := t.AddHistory(ctx, history); err != nil {
			return err
		}
		return e.decideAll(ctx, t, cfg, todo, batch, opened)
	})
	if hand != nil {
		hand.finish(err == nil)
		if err == nil {
			e.health.mu.Lock()
			e.health.reconcile = false
			e.health.mu.Unlock()
			if err := e.journal.clear(); err != nil {
				e.log.Warn("the journal cannot be cleared after the hand-over", "err", err)
			}
			e.log.Info("handed over to the store what was decided without it", "incidents", len(hand.Incidents), "messages", len(hand.Messages))
		}
	}
	switch {
	case err == nil:
		t.commit()
		e.StoreWorks()
		e.reportIncidents(opened)
		if t.opens > 0 {
			e.lastOpen.Store(now.UnixNano())
		}
		if t.queued > 0 {
			e.kick()
		}
		return true
	case errors.Is(err, errHandOverLater):
		// A message decided alone is being delivered: keep deciding
		// alone until it is handed over, or the store would open the
		// incident a second time.
	default:
		e.StoreFails("record", err)
	}
	return false
}

// recordAlone decides todo from memory, the store away, and keeps what it
// decided in the journal for the hand-over.
func (e *Engine) recordAlone(batch []Observation, todo []decision, cfg *config.Config, now time.Time) {
	if e.store.Shared() {
		// A member alone decides the checks the fleet has no open incident
		// for, and what it opened alone; it leaves the fleet's open
		// incidents as they are: it cannot see the other regions.
		e.aloneNotice(now)
		note := "The fleet store is unreachable: this is what " + e.member + " alone sees."
		kept := todo[:0]
		for _, dc := range todo {
			if e.mem.fleetHolds(dc.check.Name) {
				continue
			}
			dc.notes = []string{note}
			kept = append(kept, dc)
		}
		todo = kept
	}
	opened := map[string]bool{}
	if err := e.decideAll(context.Background(), e.mem, cfg, todo, batch, opened); err != nil {
		e.log.Error("deciding without the store failed", "err", err)
	}
	e.health.mu.Lock()
	e.health.reconcile = true
	e.health.mu.Unlock()
	e.saveAlone()
	e.reportIncidents(opened)
	e.kick()
}

// decideAll decides the checks of todo and the warnings of the batch.
func (e *Engine) decideAll(ctx context.Context, l ledger, cfg *config.Config, todo []decision, batch []Observation, opened map[string]bool) error {
	for _, dc := range todo {
		open, err := decideCheck(ctx, l, dc)
		if err != nil {
			return err
		}
		opened[dc.check.Name] = open
	}
	for _, o := range batch {
		if len(o.warnings) == 0 && !e.mem.warned(o.check.Name) {
			continue
		}
		if err := warn(ctx, l, e.route(o.check, cfg), o.check, o.warnings, o.at); err != nil {
			return err
		}
	}
	return nil
}

// series folds a batch of runs into the next state of their series (the
// configured attempt of each vantage and route, with its variants for the
// diagnosis) and the rows of history. A run that could not start (its
// token source failed) records nothing: there was no attempt.
func (e *Engine) series(batch []Observation, now time.Time) ([]store.SeriesRow, []store.HistoryRow) {
	var rows []store.SeriesRow
	var history []store.HistoryRow
	m := e.metrics()
	latest := map[store.SeriesKey]int{} // a series run twice in one batch: fold both
	for _, o := range batch {
		if o.rep.Error != "" {
			continue
		}
		c := o.check
		e.mem.setToken(c.Name, o.rep.Token)
		if t := o.rep.Token; t != nil && t.JWT {
			m.TokenExpiry(c.Name, t.ExpiresAt)
		}
		for _, a := range o.rep.Attempts {
			if a.Variant != report.VariantConfigured {
				continue
			}
			k := store.AttemptKey(c.Name, a)
			var prev *incident.Series
			if i, ok := latest[k]; ok {
				prev = &rows[i].Series
			} else if p, ok := e.mem.prev(k); ok {
				prev = &p.Series
			}
			s := incident.Next(prev, c.Alert, e.member, a, o.rep.Diagnosis.Cause, o.at)
			row := store.SeriesRow{Check: c.Name, Series: s}
			if s.Outcome != report.OutcomeUpgraded {
				for _, v := range o.rep.Attempts {
					if store.AttemptKey(c.Name, v) == k {
						row.Attempts = append(row.Attempts, v)
					}
				}
			}
			row = store.Kept(row)
			if i, ok := latest[k]; ok {
				rows[i] = row
			} else {
				latest[k] = len(rows)
				rows = append(rows, row)
			}
			if s.Outcome != report.OutcomeNotOffered { // no WebSocket over h2 to keep a history of
				history = append(history, store.HistoryRow{At: o.at, Check: c.Name, Vantage: a.Vantage, Route: a.Route,
					Transport: k.Transport, Member: e.member, Outcome: s.Outcome, Status: a.Status, Cause: o.rep.Diagnosis.Cause,
					DurationMS: a.DurationMS, ReplyMS: a.ReplyMS, TraceID: a.TraceID})
			}
			m.SeriesObserved(c.Name, a.Vantage, string(a.Route), a.Status, string(s.Outcome))
			m.CertExpiry(c.Name, a.Vantage, string(a.Route), a.CertNotAfter)
		}
	}
	return rows, history
}

// needsDecision: a check is decided when its run changed a series (mine:
// the indexes of its rows in rows), when
// it fails without an open incident (the streak may now confirm one), or
// when its incident is open (the run may close or widen it).
func (e *Engine) needsDecision(o Observation, rows []store.SeriesRow, mine []int) bool {
	if _, open := e.mem.openIncident(o.check.Name); open {
		return true
	}
	for _, i := range mine {
		r := &rows[i]
		if o.check.Alert.Fails(r.Outcome, r.Status, r.Cause) {
			return true
		}
		p, ok := e.mem.prev(keyOf(*r))
		if !ok || p.Outcome != r.Outcome || p.Status != r.Status || p.Cause != r.Cause {
			return true
		}
	}
	return false
}

func (e *Engine) reportIncidents(opened map[string]bool) {
	m := e.metrics()
	for c, open := range opened {
		m.IncidentOpen(c, open)
	}
}

// StoreUsable reports whether to write to the store now: always while it
// works, and every RetryStoreEvery while it fails.
func (e *Engine) StoreUsable(now time.Time) bool {
	h := &e.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ok || now.Sub(h.lastTry) >= RetryStoreEvery {
		h.lastTry = now
		return true
	}
	return false
}

// StoreOK reports whether the store took the last write; senders look
// at the store only then (the feed's retries find out when it is back).
func (e *Engine) StoreOK() bool {
	e.health.mu.Lock()
	defer e.health.mu.Unlock()
	return e.health.ok
}

// decidesAlone: the store has failed for LocalAfter (for slowAfter at
// least while it was only slow).
func (e *Engine) decidesAlone(now time.Time) bool {
	h := &e.health
	h.mu.Lock()
	defer h.mu.Unlock()
	after := e.opts.LocalAfter
	if !h.hard {
		after = max(after, slowAfter)
	}
	return !h.ok && now.Sub(h.since) >= after
}

// slowOnly: the store answered late or was busy, which waiting mends.
func slowOnly(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY")
}

// StoreFails records a failed store write: the first of an outage is
// logged and the store is reported degraded.
func (e *Engine) StoreFails(op string, err error) {
	e.metrics().StoreError(e.ctx, op)
	e.metrics().StoreHealthy(false)
	h := &e.health
	h.mu.Lock()
	first := h.ok
	if first {
		h.ok, h.since, h.hard = false, e.now(), false
	}
	h.hard = h.hard || !slowOnly(err)
	h.err = err.Error()
	h.mu.Unlock()
	if first {
		e.log.Error("the store cannot be written: working from memory", "store", e.store.Where(), "op", op, "err", err)
	} else {
		e.log.Debug("the store still fails", "op", op, "err", err)
	}
}

// StoreWorks records a store write that went through: an outage ends.
func (e *Engine) StoreWorks() {
	h := &e.health
	h.mu.Lock()
	was := !h.ok
	h.ok, h.err, h.aloneSaid = true, "", false
	if was {
		h.okSince = e.now()
	}
	h.mu.Unlock()
	if was {
		e.metrics().StoreHealthy(true)
		e.log.Info("the store takes writes again", "store", e.store.Where())
		e.kick() // the senders wait for it
	}
}

// StoreError says why the store cannot be written, "" while it can and
// holds everything this daemon decided.
func (e *Engine) StoreError() string {
	e.health.mu.Lock()
	defer e.health.mu.Unlock()
	if e.health.err == "" && e.health.reconcile {
		return "what was decided without it is not handed over yet"
	}
	return e.health.err
}

// errHandOverLater: what was decided alone cannot be handed over yet.
var errHandOverLater = errors.New("hand over later: a message decided alone is being delivered")

func (e *Engine) handOverPending() bool {
	e.health.mu.Lock()
	defer e.health.mu.Unlock()
	return e.health.reconcile
}

// handOver writes into the store what this daemon decided alone while the
// store was away: its incidents (with where their messages already are, so
// nothing is posted again) and the messages it has not delivered yet. An
// incident the fleet opened meanwhile for the same check wins; ours is
// left as it is. The hand-over it returns leaves memory only when the
// transaction commits (handOff.finish): a failed try keeps everything for
// the next.
func (e *Engine) handOver(ctx context.Context, tx *store.Tx, now time.Time) (*handOff, error) {
	if !e.handOverPending() {
		return nil, nil
	}
	h, ok := e.mem.takeLocal()
	if !ok {
		return nil, errHandOverLater
	}
	kept := map[string]bool{}
	for _, r := range h.Incidents { // their checks are locked by the caller
		cur, err := tx.Incident(ctx, r.Decision.Check)
		if err != nil {
			return h, err
		}
		if cur != nil && cur.Decision.State == incident.Open && cur.Decision.ID != r.Decision.ID {
			e.log.Warn("the fleet opened its own incident while this member was alone; keeping the fleet's",
				"check", r.Decision.Check, "fleet", cur.Decision.ID, "ours", r.Decision.ID)
			continue
		}
		if cur != nil && cur.Decision.ID != r.Decision.ID && r.Decision.State == incident.Closed {
			continue // we resolved a message the fleet never had
		}
		if err := tx.PutIncident(ctx, r.Decision, r.View, now); err != nil {
			return h, err
		}
		if r.Posted {
			if err := tx.SetRoot(ctx, r.Decision.ID, r.Root); err != nil {
				return h, err
			}
		}
		kept[r.Decision.ID] = true
	}
	for _, q := range h.Messages {
		if q.Incident != "" && !kept[q.Incident] {
			continue
		}
		// Journaled by a process that crashed after its hand-over
		// committed: already in the outbox.
		queued, err := tx.Queued(ctx, q.Message.ID)
		if err != nil {
			return h, err
		}
		if queued {
			continue
		}
		if err := tx.Enqueue(ctx, q.Message, q.Incident, now); err != nil {
			return h, err
		}
	}
	return h, nil
}

// Forget drops the series of checks and vantages a reload removed, and
// resolves the incidents of removed checks. It needs no e.mu: old and cfg
// are immutable, and Reload runs one at a time.
func (e *Engine) Forget(old, cfg *config.Config) {
	live := map[string]*config.Check{}
	for i := range cfg.Checks {
		live[cfg.Checks[i].Name] = &cfg.Checks[i]
	}
	keep := func(k store.SeriesKey) bool {
		c, ok := live[k.Check]
		if !ok {
			return false
		}
		vs := c.Vantages
		if len(vs) == 0 {
			vs = []string{cfg.Vantage}
		}
		return slices.Contains(vs, k.Vantage) && (k.Route == report.RouteCDN || c.Direct != nil) &&
			(k.Transport == report.TransportHTTP1 || slices.Contains(c.Transports, k.Transport))
	}
	now := e.now()
	ctx, cancel := context.WithTimeout(e.ctx, StoreTimeout)
	defer cancel()
	err := e.store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteSeries(ctx, e.member, keep); err != nil {
			return err
		}
		for _, c := range old.Checks {
			if _, ok := live[c.Name]; ok {
				continue
			}
			rec, err := tx.Incident(ctx, c.Name)
			if err != nil || rec == nil || rec.Decision.State != incident.Open {
				continue
			}
			inc := rec.Decision
			inc.State, inc.Closed = incident.Closed, now
			view := rec.View
			view.State, view.Closed, view.At = notifier.StateResolved, now, now
			view.Notes = append(view.Notes, "The check was removed from the configuration.")
			if err := tx.PutIncident(ctx, inc, view, now); err != nil {
				return err
			}
			ev := incident.Event{Kind: incident.Resolved, At: now, Lasted: now.Sub(inc.Opened)}
			for _, m := range messagesFor([]incident.Event{ev}, inc.ID, c.Alert.Channel, view, now) {
				if err := enqueue(ctx, tx, e.route(&c, old), m, inc.ID, now); err != nil {
					return err
				}
			}
			e.metrics().Forget(c.Name)
		}
		return nil
	})
	if err != nil {
		e.StoreFails("reload", err)
	}
	e.mem.forget(func(check string) bool { _, ok := live[check]; return ok })
	e.kick()
}

// pruneLoop prunes at start and every pruneEvery until the daemon stops.
func (e *Engine) pruneLoop() {
	defer e.loops.Done()
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		e.prune()
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune rolls up the hours of raw history that ended, then deletes raw
// attempts older than history.raw and rollups (and closed incidents)
// older than history.keep; on PostgreSQL it also makes the days ahead's
// partitions. Each step takes the store's writer in short turns (an hour
// of rollups, a chunk of rows), so records go on between them.
func (e *Engine) prune() {
	h := e.config().History
	if h.Keep <= 0 {
		h = config.DefaultHistory()
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Minute)
	defer cancel()
	now := e.now()
	start := time.Now()
	e.log.Debug("pruning history", "raw", h.Raw.String(), "keep", h.Keep.String())
	failed := func(op string, err error) {
		if e.ctx.Err() == nil { // stopping is not a store failure
			e.StoreFails(op, err)
		}
	}
	if err := e.store.PrepareHistory(ctx, now); err != nil {
		failed("history partitions", err)
		return
	}
	hours, err := e.store.Rollup(ctx, now)
	if err != nil {
		failed("rollup", err)
		return
	}
	p, err := e.store.Prune(ctx, store.Retention{Raw: now.Add(-h.Raw), Keep: now.Add(-h.Keep)})
	if err != nil {
		failed("prune", err)
		return
	}
	if hours > 0 || p != (store.Pruned{}) {
		e.log.Info("history pruned", "hours_rolled_up", hours, "raw_rows", p.RawRows, "partitions", p.Partitions,
			"rollups", p.Rollups, "raw", h.Raw.String(), "keep", h.Keep.String(), "took", time.Since(start).Round(time.Millisecond).String())
	}
}

// Judging says since when the store is reachable again (or the process
// started) and whether it is now: members not seen since then may have
// been cut off by the same outage.
func (e *Engine) Judging() (okSince time.Time, ok bool) {
	e.health.mu.Lock()
	defer e.health.mu.Unlock()
	return e.health.okSince, e.health.ok
}

// Record records a batch of runs at once, outside the feed (tests drive the
// engine with it on their own clock).
func (e *Engine) Record(batch []Observation) { e.record(batch, false) }
