package monitor

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
	// pruneEvery: history older than `history` is deleted this often.
	pruneEvery = time.Hour
	// storeTimeout bounds one store transaction of the feed or delivery:
	// long enough for a batch of a thousand runs on a busy machine.
	storeTimeout = 30 * time.Second
	// slowAfter: a store that only timed out or was busy (not full, not
	// read-only, not gone) is waited for this long before a daemon with
	// its own SQLite file decides alone; a slow store is not a lost one,
	// and deciding alone beside it would tell incidents twice.
	slowAfter = 30 * time.Second
	// retryStoreEvery: while the store fails, it is tried again this often.
	retryStoreEvery = 5 * time.Second
)

// observation is one finished run, on its way to the store.
type observation struct {
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

func newObservation(c *config.Check, traceURL string, rep report.Report, at time.Time, force bool) observation {
	return observation{check: c, traceURL: traceURL, rep: rep, at: at, force: force, warnings: warningsOf(c, rep, at)}
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
func (d *Daemon) feedLoop() {
	defer d.feedWG.Done()
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	var batch []observation
	var flush <-chan time.Time
	var timer *time.Timer
	urgent := false // the pending flush is the short one
	for {
		select {
		case o := <-d.feedIn:
			batch = append(batch, o)
			if len(batch) < maxBatch {
				wait := idleFlush
				if d.eventful(o) {
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
			if d.store.Shared() && d.storeUsable(d.now()) {
				ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
				d.refreshIncidents(ctx)
				cancel()
			}
			d.record(nil, true)
			continue
		case <-d.feedDone:
			for {
				select {
				case o := <-d.feedIn:
					batch = append(batch, o)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				d.record(batch, false)
			}
			return
		}
		if timer != nil {
			timer.Stop()
			timer, flush, urgent = nil, nil, false
		}
		d.record(batch, false)
		batch = nil
	}
}

// eventful: the run may change something people see (a failure, a change
// of state, an open incident, a warning), so it is recorded at once.
func (d *Daemon) eventful(o observation) bool {
	if len(o.warnings) > 0 || d.mem.warned(o.check.Name) {
		return true
	}
	if _, open := d.mem.openIncident(o.check.Name); open {
		return true
	}
	for _, a := range o.rep.Attempts {
		if a.Variant != report.VariantConfigured {
			continue
		}
		p, ok := d.mem.prev(store.AttemptKey(o.check.Name, a))
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
func (d *Daemon) record(batch []observation, sweep bool) {
	now := d.now()
	rows, history := d.series(batch, now)
	if d.opts.NoHistory {
		history = nil
	}
	d.mu.Lock()
	windows, cfg := d.cfg.Maintenance, d.cfg
	d.mu.Unlock()
	stale := map[string]time.Duration{}
	var todo []decision
	seen := map[string]bool{}
	for _, o := range batch {
		stale[o.check.Name] = staleAfter(o.check, now)
		if seen[o.check.Name] {
			continue
		}
		seen[o.check.Name] = true
		if o.force || d.needsDecision(o, rows) {
			todo = append(todo, decision{check: o.check, traceURL: o.traceURL, token: o.rep.Token, now: now, windows: windows, force: o.force,
				route: d.router(targetsOf(o.check, cfg))})
		}
	}
	// Memory has every run; the store gets the series whose state changed
	// or that were not written for touchEvery.
	write := d.mem.toWrite(rows, now)
	d.mem.PutSeries(context.Background(), rows, stale)
	if sweep {
		d.mu.Lock()
		for _, name := range d.mem.openChecks() {
			if c := d.cfg.Check(name); c != nil && !seen[name] {
				todo = append(todo, decision{check: c, traceURL: d.cfg.TraceURL, token: d.mem.token(name), now: now, windows: windows,
					route: d.router(targetsOf(c, cfg))})
			}
		}
		d.mu.Unlock()
	}
	if len(rows) == 0 && len(todo) == 0 && !d.handOverPending() {
		return
	}
	if d.storeUsable(now) {
		// d.ctx ends only after the feed has recorded its last batch.
		ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
		defer cancel()
		t := &tee{mem: d.mem}
		opened := map[string]bool{}
		var hand *handOff
		lock := make([]string, 0, len(todo))
		for _, dc := range todo {
			lock = append(lock, dc.check.Name)
		}
		if d.handOverPending() {
			lock = append(lock, d.mem.dirtyChecks()...)
		}
		err := d.store.Update(ctx, func(tx *store.Tx) error {
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
			h, err := d.handOver(ctx, tx, now)
			hand = h
			if err != nil {
				return err
			}
			if err := tx.PutSeries(ctx, write, stale); err != nil {
				return err
			}
			t.staged = append(t.staged, func() { d.mem.written(write, now) })
			if err := t.AddHistory(ctx, history); err != nil {
				return err
			}
			return d.decideAll(ctx, t, cfg, todo, batch, opened)
		})
		if hand != nil {
			hand.finish(err == nil)
			if err == nil {
				d.health.mu.Lock()
				d.health.reconcile = false
				d.health.mu.Unlock()
				if err := d.journal.clear(); err != nil {
					d.log.Warn("the journal cannot be cleared after the hand-over", "err", err)
				}
				d.log.Info("handed over to the store what was decided without it", "incidents", len(hand.Incidents), "messages", len(hand.Messages))
			}
		}
		switch {
		case err == nil:
			t.commit()
			d.storeWorks()
			d.reportIncidents(opened)
			if t.opens > 0 {
				d.lastOpen.Store(now.UnixNano())
			}
			if t.queued > 0 {
				d.kick()
			}
			return
		case errors.Is(err, errHandOverLater):
			// A message decided alone is being delivered: keep deciding
			// alone until it is handed over, or the store would open the
			// incident a second time.
		default:
			d.storeFails("record", err)
		}
	}
	// Without the store: memory has the series, and decides alone once the
	// store has been away for LocalAfter.
	ctx := context.Background()
	if !d.decidesAlone(now) && !d.handOverPending() {
		return
	}
	if d.store.Shared() {
		// A member alone decides the checks the fleet has no open incident
		// for, and what it opened alone; it leaves the fleet's open
		// incidents as they are: it cannot see the other regions.
		d.aloneNotice(now)
		note := "The fleet store is unreachable: this is what " + d.member + " alone sees."
		kept := todo[:0]
		for _, dc := range todo {
			if d.mem.fleetHolds(dc.check.Name) {
				continue
			}
			dc.notes = []string{note}
			kept = append(kept, dc)
		}
		todo = kept
	}
	opened := map[string]bool{}
	if err := d.decideAll(ctx, d.mem, cfg, todo, batch, opened); err != nil {
		d.log.Error("deciding without the store failed", "err", err)
	}
	d.health.mu.Lock()
	d.health.reconcile = true
	d.health.mu.Unlock()
	d.saveAlone()
	d.reportIncidents(opened)
	d.kick()
}

// decideAll decides the checks of todo and the warnings of the batch.
func (d *Daemon) decideAll(ctx context.Context, l ledger, cfg *config.Config, todo []decision, batch []observation, opened map[string]bool) error {
	for _, dc := range todo {
		open, err := decideCheck(ctx, l, dc)
		if err != nil {
			return err
		}
		opened[dc.check.Name] = open
	}
	for _, o := range batch {
		if len(o.warnings) == 0 && !d.mem.warned(o.check.Name) {
			continue
		}
		if err := warn(ctx, l, d.router(targetsOf(o.check, cfg)), o.check, o.warnings, o.at); err != nil {
			return err
		}
	}
	return nil
}

// series folds a batch of runs into the next state of their series (the
// configured attempt of each vantage and route, with its variants for the
// diagnosis) and the rows of history. A run that could not start (its
// token source failed) records nothing: there was no attempt.
func (d *Daemon) series(batch []observation, now time.Time) ([]store.SeriesRow, []store.HistoryRow) {
	var rows []store.SeriesRow
	var history []store.HistoryRow
	m := d.metrics()
	latest := map[store.SeriesKey]int{} // a series run twice in one batch: fold both
	for _, o := range batch {
		if o.rep.Error != "" {
			continue
		}
		c := o.check
		d.mem.setToken(c.Name, o.rep.Token)
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
			} else if p, ok := d.mem.prev(k); ok {
				prev = &p.Series
			}
			s := incident.Next(prev, c.Alert, d.member, a, o.rep.Diagnosis.Cause, o.at)
			var attempts []report.Attempt
			for _, v := range o.rep.Attempts {
				if store.AttemptKey(c.Name, v) == k {
					attempts = append(attempts, v)
				}
			}
			row := store.SeriesRow{Check: c.Name, Series: s, Attempts: attempts}
			if i, ok := latest[k]; ok {
				rows[i] = row
			} else {
				latest[k] = len(rows)
				rows = append(rows, row)
			}
			if s.Outcome != report.OutcomeNotOffered { // no WebSocket over h2 to keep a history of
				history = append(history, store.HistoryRow{At: o.at, Check: c.Name, Vantage: a.Vantage, Route: a.Route,
					Transport: k.Transport, Member: d.member, Outcome: s.Outcome, Status: a.Status, Cause: o.rep.Diagnosis.Cause,
					DurationMS: a.DurationMS, ReplyMS: a.ReplyMS, TraceID: a.TraceID})
			}
			m.SeriesObserved(c.Name, a.Vantage, string(a.Route), a.Status, string(s.Outcome))
			m.CertExpiry(c.Name, a.Vantage, string(a.Route), a.CertNotAfter)
		}
	}
	return rows, history
}

// needsDecision: a check is decided when its run changed a series, when
// it fails without an open incident (the streak may now confirm one), or
// when its incident is open (the run may close or widen it).
func (d *Daemon) needsDecision(o observation, rows []store.SeriesRow) bool {
	if _, open := d.mem.openIncident(o.check.Name); open {
		return true
	}
	for _, r := range rows {
		if r.Check != o.check.Name {
			continue
		}
		if o.check.Alert.Fails(r.Outcome, r.Status, r.Cause) {
			return true
		}
		p, ok := d.mem.prev(keyOf(r))
		if !ok || p.Outcome != r.Outcome || p.Status != r.Status || p.Cause != r.Cause {
			return true
		}
	}
	return false
}

func (d *Daemon) reportIncidents(opened map[string]bool) {
	m := d.metrics()
	for c, open := range opened {
		m.IncidentOpen(c, open)
	}
}

// storeUsable reports whether to write to the store now: always while it
// works, and every retryStoreEvery while it fails.
func (d *Daemon) storeUsable(now time.Time) bool {
	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ok || now.Sub(h.lastTry) >= retryStoreEvery {
		h.lastTry = now
		return true
	}
	return false
}

// storeOK reports whether the store took the last write; senders look
// at the store only then (the feed's retries find out when it is back).
func (d *Daemon) storeOK() bool {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	return d.health.ok
}

// decidesAlone: the store has failed for LocalAfter (for slowAfter at
// least while it was only slow).
func (d *Daemon) decidesAlone(now time.Time) bool {
	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	after := d.opts.LocalAfter
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

func (d *Daemon) storeFails(op string, err error) {
	d.metrics().StoreError(d.ctx, op)
	d.metrics().StoreHealthy(false)
	h := &d.health
	h.mu.Lock()
	first := h.ok
	if first {
		h.ok, h.since, h.hard = false, d.now(), false
	}
	h.hard = h.hard || !slowOnly(err)
	h.err = err.Error()
	h.mu.Unlock()
	if first {
		d.log.Error("the store cannot be written: working from memory", "store", d.store.Where(), "op", op, "err", err)
	} else {
		d.log.Debug("the store still fails", "op", op, "err", err)
	}
}

func (d *Daemon) storeWorks() {
	h := &d.health
	h.mu.Lock()
	was := !h.ok
	h.ok, h.err, h.aloneSaid = true, "", false
	if was {
		h.okSince = d.now()
	}
	h.mu.Unlock()
	if was {
		d.metrics().StoreHealthy(true)
		d.log.Info("the store takes writes again", "store", d.store.Where())
		d.kick() // the senders wait for it
	}
}

// StoreError says why the store cannot be written, "" while it can and
// holds everything this daemon decided.
func (d *Daemon) StoreError() string {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	if d.health.err == "" && d.health.reconcile {
		return "what was decided without it is not handed over yet"
	}
	return d.health.err
}

// errHandOverLater: what was decided alone cannot be handed over yet.
var errHandOverLater = errors.New("hand over later: a message decided alone is being delivered")

func (d *Daemon) handOverPending() bool {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	return d.health.reconcile
}

// handOver writes into the store what this daemon decided alone while the
// store was away: its incidents (with where their messages already are, so
// nothing is posted again) and the messages it has not delivered yet. An
// incident the fleet opened meanwhile for the same check wins; ours is
// left as it is. The hand-over it returns leaves memory only when the
// transaction commits (handOff.finish): a failed try keeps everything for
// the next.
func (d *Daemon) handOver(ctx context.Context, tx *store.Tx, now time.Time) (*handOff, error) {
	if !d.handOverPending() {
		return nil, nil
	}
	h, ok := d.mem.takeLocal()
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
			d.log.Warn("the fleet opened its own incident while this member was alone; keeping the fleet's",
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

// forget drops the series of checks and vantages a reload removed, and
// resolves the incidents of removed checks. It needs no d.mu: old and cfg
// are immutable, and Reload runs one at a time.
func (d *Daemon) forget(old, cfg *config.Config) {
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
	now := d.now()
	ctx, cancel := context.WithTimeout(d.ctx, storeTimeout)
	defer cancel()
	err := d.store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteSeries(ctx, d.member, keep); err != nil {
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
				if err := enqueue(ctx, tx, d.router(targetsOf(&c, old)), m, inc.ID, now); err != nil {
					return err
				}
			}
			d.metrics().Forget(c.Name)
		}
		return nil
	})
	if err != nil {
		d.storeFails("reload", err)
	}
	d.mem.forget(func(check string) bool { _, ok := live[check]; return ok })
	d.kick()
}

// pruneLoop prunes at start and every pruneEvery until the daemon stops.
func (d *Daemon) pruneLoop() {
	defer d.loops.Done()
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		d.prune()
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune deletes history (and closed incidents) older than `history`, in
// chunks: each takes the store's write turn for one chunk only, so records
// go on between them.
func (d *Daemon) prune() {
	d.mu.Lock()
	keep := d.cfg.History
	d.mu.Unlock()
	if keep <= 0 {
		keep = config.DefaultHistory
	}
	ctx, cancel := context.WithTimeout(d.ctx, 5*time.Minute)
	defer cancel()
	start := time.Now()
	d.log.Debug("pruning history", "older_than", keep.String())
	n, err := d.store.Prune(ctx, d.now().Add(-keep))
	if err != nil {
		d.storeFails("prune", err)
		return
	}
	d.log.Info("history pruned", "rows", n, "older_than", keep.String(), "took", time.Since(start).Round(time.Millisecond).String())
}
