package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/state"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
)

// Defaults of the daemon that the configuration does not expose.
const (
	// DefaultMaxAttempts bounds concurrent handshakes across all checks.
	DefaultMaxAttempts = 256
	// notifyTimeout bounds one call to the notifier.
	notifyTimeout = 30 * time.Second
	// maxBackoff caps the wait between delivery retries (Retry-After wins).
	maxBackoff = 2 * time.Minute
	// giveUpAfter drops an event that could not be delivered for this long;
	// a day-old alert misleads more than it helps.
	giveUpAfter = 24 * time.Hour
	// healthyWithin: /healthz and the watchdog need a scheduler tick this
	// recent.
	healthyWithin = 5 * time.Second
	// StopGrace is how long a stop lets runs in flight finish before it
	// cancels them. A check's timeout may be up to config.MaxTimeout, but a
	// stop must end within systemd's TimeoutStopSec (30 s in our unit).
	StopGrace = 10 * time.Second
	// saveEvery bounds how stale the state file gets between transitions.
	// Transitions and deliveries are saved at once; plain runs only move
	// counters, and writing 10,000 series after every run would cost more
	// than the runs.
	saveEvery = 5 * time.Second
)

// DaemonOptions are the daemon's dependencies; cmd/wscanary builds them.
type DaemonOptions struct {
	Config *config.Config
	// Store holds series and the outbox; the daemon saves it.
	Store *state.Store
	// Notifier delivers events (Slack, console, or both).
	Notifier notifier.Notifier
	// Telemetry may be nil (no spans, no metrics).
	Telemetry *telemetry.Telemetry
	Logger    *slog.Logger
	// MaxAttempts bounds concurrent handshakes; 0 means DefaultMaxAttempts.
	MaxAttempts int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnReport, when set, sees every run's report.
	OnReport func(report.Report)
	// OnTick, when set, sees every scheduled tick of a check with how late
	// it started (the benchmark measures the scheduler with it).
	OnTick func(check string, late time.Duration)
}

// Daemon is `wscanary run`: it schedules every check, feeds the configured
// attempts into series, turns transitions into events, and delivers them
// from a persisted outbox so a restart or a Slack outage loses none.
type Daemon struct {
	opts  DaemonOptions
	log   *slog.Logger
	store *state.Store
	limit chan struct{}
	wake  chan struct{}
	// ctx ends delivery; runCtx ends runs in flight (first, at a stop).
	ctx      context.Context
	cancel   context.CancelFunc
	runCtx   context.Context
	stopRuns context.CancelFunc

	mu      sync.Mutex
	cfg     *config.Config
	runner  *Runner
	cron    *cron.Cron
	running map[string]*atomic.Bool // per check name: overlap guard
	threads map[state.Key]notifier.Delivery
	// alerts remembers each open alert's event, so the recovery's update
	// of the alert message keeps the alert's facts (lost on restart: the
	// update then shows what the recovery knows).
	alerts map[state.Key]notifier.Event

	lastTick atomic.Int64
	started  atomic.Bool
	stopped  atomic.Bool
	runs     inflight
	delivery sync.WaitGroup
}

// NewDaemon validates the options; Start begins scheduling.
func NewDaemon(opts DaemonOptions) (*Daemon, error) {
	if opts.Config == nil || opts.Store == nil || opts.Notifier == nil {
		return nil, errors.New("daemon needs a config, a state store and a notifier")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	ctx, cancel := context.WithCancel(context.Background())
	runCtx, stopRuns := context.WithCancel(ctx)
	d := &Daemon{
		opts: opts, log: opts.Logger, store: opts.Store,
		limit: make(chan struct{}, opts.MaxAttempts), wake: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel, runCtx: runCtx, stopRuns: stopRuns,
		running: map[string]*atomic.Bool{}, threads: map[state.Key]notifier.Delivery{},
		alerts: map[state.Key]notifier.Event{}, cfg: opts.Config,
	}
	// Open alerts from before a restart keep their threads.
	for _, s := range d.store.Snapshot() {
		if s.Alert != nil && s.Alert.TS != "" {
			d.threads[s.Key] = notifier.Delivery{Channel: s.Alert.Channel, TS: s.Alert.TS}
		}
	}
	return d, nil
}

func (d *Daemon) now() time.Time {
	if d.opts.Now != nil {
		return d.opts.Now()
	}
	return time.Now()
}

// Start schedules every check and starts the delivery loop.
func (d *Daemon) Start() {
	d.mu.Lock()
	d.install(d.opts.Config)
	d.mu.Unlock()
	d.started.Store(true)
	d.delivery.Add(2)
	go d.deliverLoop()
	go d.saveLoop()
	d.kick() // deliver what a previous process left in the outbox
}

// install builds the runner and a fresh cron for cfg. Caller holds d.mu.
func (d *Daemon) install(cfg *config.Config) {
	runner := NewRunner(cfg, d.opts.Telemetry)
	runner.Limit = d.limit
	c := cron.New(cron.WithLogger(cronLogger{d.log}))
	now := d.now()
	c.Schedule(cron.Every(time.Second), cron.FuncJob(func() { d.lastTick.Store(d.now().UnixNano()) }))
	d.lastTick.Store(now.UnixNano())
	for i := range cfg.Checks {
		chk := &cfg.Checks[i]
		sched := newJittered(chk.Name, chk.Sched, now)
		if _, ok := d.running[chk.Name]; !ok {
			d.running[chk.Name] = &atomic.Bool{}
		}
		flag := d.running[chk.Name]
		c.Schedule(sched, cron.FuncJob(func() { d.tick(runner, chk, sched, flag) }))
	}
	d.cfg, d.runner, d.cron = cfg, runner, c
	c.Start()
}

// Reload swaps in a new configuration. Series of checks that still exist
// keep their state (and open alerts); those of removed checks are dropped.
// Runs in flight finish with the configuration they started with.
func (d *Daemon) Reload(cfg *config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped.Load() {
		return
	}
	d.cron.Stop()
	names := map[string]bool{}
	for _, c := range cfg.Checks {
		names[c.Name] = true
	}
	d.store.Retain(func(k state.Key) bool { return names[k.Check] })
	if m := d.metrics(); m != nil {
		for _, c := range d.cfg.Checks {
			if !names[c.Name] {
				m.ForgetSeries(c.Name)
			}
		}
	}
	d.install(cfg)
	d.save()
	d.log.Info("configuration reloaded", "checks", len(cfg.Checks))
}

// Stop stops scheduling, lets runs in flight finish for StopGrace (or
// until ctx ends), cancels the rest, stops delivery and saves state.
// Cancelled runs are not recorded. Undelivered events stay in the outbox
// for the next start.
func (d *Daemon) Stop(ctx context.Context) error {
	d.mu.Lock()
	if d.stopped.Swap(true) {
		d.mu.Unlock()
		return nil
	}
	d.cron.Stop()
	d.mu.Unlock()
	var err error
	graceCtx, cancel := context.WithTimeout(ctx, StopGrace)
	if !d.runs.wait(graceCtx) {
		d.log.Warn("stop: cancelling runs still in flight", "grace", StopGrace.String())
	}
	cancel()
	d.stopRuns()
	if !d.runs.wait(ctx) {
		err = fmt.Errorf("stop: runs still in flight: %w", ctx.Err())
	}
	d.cancel()
	d.delivery.Wait()
	if serr := d.store.Save(); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop: save state: %w", serr))
	}
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
// /healthz and for systemd's watchdog.
func (d *Daemon) Healthy() bool {
	if !d.started.Load() || d.stopped.Load() {
		return false
	}
	return d.now().Sub(time.Unix(0, d.lastTick.Load())) < healthyWithin
}

func (d *Daemon) metrics() *telemetry.Metrics {
	if d.opts.Telemetry == nil {
		return nil
	}
	return d.opts.Telemetry.Metrics
}

// tick is one scheduled run of one check.
func (d *Daemon) tick(runner *Runner, c *config.Check, sched *jittered, running *atomic.Bool) {
	if d.stopped.Load() {
		return
	}
	start := d.now()
	m := d.metrics()
	if late, ok := sched.lateness(start); ok {
		if m != nil {
			m.Lateness(d.ctx, late.Seconds())
		}
		if d.opts.OnTick != nil {
			d.opts.OnTick(c.Name, late)
		}
	}
	if !running.CompareAndSwap(false, true) {
		if m != nil {
			m.RunSkipped(d.ctx, c.Name)
		}
		d.log.Warn("run skipped: the previous one is still running", "check", c.Name)
		return
	}
	defer running.Store(false)
	d.runs.add()
	defer d.runs.done()
	rep := runner.Run(d.runCtx, c)
	if d.runCtx.Err() != nil {
		return // cancelled by a stop: what it saw is our doing, not the target's
	}
	if d.opts.OnReport != nil {
		d.opts.OnReport(rep)
	}
	d.observe(c, rep)
}

// observe feeds a run's configured attempts into their series and queues
// the events of any transition.
func (d *Daemon) observe(c *config.Check, rep report.Report) {
	now := d.now()
	if rep.Error != "" {
		d.log.Warn("run failed before any attempt", "check", c.Name, "err", rep.Error)
		return
	}
	configured := make([]report.Attempt, 0, len(rep.Attempts))
	for _, a := range rep.Attempts {
		if a.Variant == report.VariantConfigured {
			configured = append(configured, a)
		}
	}
	// min_vantages: an alerting status counts only when enough vantages on
	// the same route see one.
	var on []int // the per-series state speaks statuses only
	for _, m := range c.Alert.On {
		if m.Status != 0 {
			on = append(on, m.Status)
		}
	}
	agree := map[report.Route]int{}
	for _, a := range configured {
		if alerting(on, a.Status) {
			agree[a.Route]++
		}
	}
	rule := state.Rule{On: on, After: c.Alert.After, Remind: c.Alert.Remind}
	queued := false
	for _, a := range configured {
		if alerting(on, a.Status) && agree[a.Route] < c.Alert.MinVantages {
			continue // unconfirmed: leave the series where it is
		}
		key := state.Key{Check: c.Name, Vantage: a.Vantage, Route: a.Route}
		if m := d.metrics(); m != nil {
			m.SeriesStatus(c.Name, a.Vantage, string(a.Route), a.Status)
		}
		tr := d.store.Observe(key, rule, a.Status, rep.Diagnosis.Cause, a.TraceID, now)
		if tr == nil {
			continue
		}
		ev := d.event(c, rep, a, *tr, now)
		payload, err := json.Marshal(ev)
		if err == nil {
			err = d.store.Enqueue(state.Pending{ID: ev.ID, Key: key, Kind: tr.Kind, Enqueued: now, NextTry: now, Payload: payload})
		}
		if err != nil {
			d.log.Error("alert not queued", "check", c.Name, "kind", ev.Kind, "err", err)
			continue
		}
		d.log.Info("transition", "check", c.Name, "vantage", a.Vantage, "route", a.Route,
			"kind", ev.Kind, "old", tr.Old, "new", tr.New, "cause", rep.Diagnosis.Cause, "trace_id", a.TraceID)
		queued = true
	}
	if queued {
		d.save()
		d.kick()
	}
}

// saveLoop writes the state file periodically when runs changed it.
func (d *Daemon) saveLoop() {
	defer d.delivery.Done()
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.save()
		}
	}
}

func alerting(on []int, status int) bool {
	for _, s := range on {
		if s == status {
			return true
		}
	}
	return false
}

// event builds the notifier's view of a transition.
func (d *Daemon) event(c *config.Check, rep report.Report, a report.Attempt, tr state.Transition, now time.Time) notifier.Event {
	ev := notifier.Event{
		ID:   fmt.Sprintf("%s/%s/%s/%s/%d", c.Name, a.Vantage, a.Route, tr.Kind, now.UnixNano()),
		Kind: notifier.Kind(tr.Kind), Check: c.Name, Vantage: a.Vantage, Route: a.Route,
		OldStatus: tr.Old, NewStatus: tr.New, Since: tr.Since, At: now,
		Diagnosis: rep.Diagnosis, Attempt: a, Channel: c.Alert.Channel,
	}
	for _, o := range rep.Attempts {
		if o.Vantage != a.Vantage || o.Route != a.Route || o.Variant != a.Variant {
			ev.Others = append(ev.Others, o)
		}
	}
	d.mu.Lock()
	if tu := d.cfg.TraceURL; tu != "" && a.TraceID != "" {
		ev.TraceURL = strings.ReplaceAll(tu, "{trace_id}", a.TraceID)
	}
	d.mu.Unlock()
	if tr.Alert.TS != "" {
		ev.Thread = &notifier.Delivery{Channel: tr.Alert.Channel, TS: tr.Alert.TS}
	}
	key := state.Key{Check: c.Name, Vantage: a.Vantage, Route: a.Route}
	d.mu.Lock()
	switch ev.Kind {
	case notifier.KindAlert:
		d.alerts[key] = ev
	case notifier.KindRecovery, notifier.KindChange:
		if orig, ok := d.alerts[key]; ok {
			ev.Alert = &orig
		}
		if ev.Kind == notifier.KindRecovery {
			delete(d.alerts, key)
		}
	}
	d.mu.Unlock()
	return ev
}

func (d *Daemon) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Daemon) save() {
	if err := d.store.Save(); err != nil {
		d.log.Error("state not saved", "err", err)
	}
}

// deliverLoop sends the outbox in order. The head waits until it is
// delivered (or permanently fails) so that a recovery never overtakes its
// alert; Retry-After and backoff decide when to try again.
func (d *Daemon) deliverLoop() {
	defer d.delivery.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := d.deliverDue()
		timer.Reset(wait)
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// deliverDue delivers pending events whose time has come and returns how
// long to wait before looking again.
func (d *Daemon) deliverDue() time.Duration {
	for {
		pending := d.store.Pending()
		if len(pending) == 0 {
			return time.Hour
		}
		p := pending[0]
		now := d.now()
		if wait := p.NextTry.Sub(now); wait > 0 {
			return wait
		}
		if d.ctx.Err() != nil {
			return time.Hour
		}
		d.deliver(p, now)
	}
}

func (d *Daemon) deliver(p state.Pending, now time.Time) {
	var ev notifier.Event
	if err := json.Unmarshal(p.Payload, &ev); err != nil {
		d.log.Error("dropping unreadable queued event", "id", p.ID, "err", err)
		d.store.Ack(p.ID)
		d.save()
		return
	}
	if ev.Kind != notifier.KindAlert && (ev.Thread == nil || ev.Thread.TS == "") {
		d.mu.Lock()
		if th, ok := d.threads[p.Key]; ok {
			ev.Thread = &th
		}
		d.mu.Unlock()
	}
	m := d.metrics()
	ctx, cancel := context.WithTimeout(d.ctx, notifyTimeout)
	sent := d.now()
	del, err := d.opts.Notifier.Notify(ctx, ev)
	cancel()
	if err == nil {
		d.store.Ack(p.ID)
		d.mu.Lock()
		switch ev.Kind {
		case notifier.KindAlert:
			d.threads[p.Key] = del.Root()
		case notifier.KindRecovery:
			delete(d.threads, p.Key)
		}
		d.mu.Unlock()
		if ev.Kind == notifier.KindAlert && del.TS != "" {
			d.store.MarkDelivered(p.Key, ev.ID, del.Channel, del.TS, now)
		}
		d.save()
		if m != nil {
			m.AlertSent(d.ctx, ev.Check, string(ev.Kind))
		}
		d.log.Info("notification delivered", "check", ev.Check, "vantage", ev.Vantage, "route", ev.Route,
			"kind", ev.Kind, "attempts", p.Attempts+1, "latency_ms", sent.Sub(ev.At).Milliseconds())
		return
	}
	if m != nil {
		m.SlackError(d.ctx)
	}
	if d.ctx.Err() != nil {
		return // shutting down: it stays queued for the next start
	}
	if notifier.Permanent(err) || now.Sub(p.Enqueued) > giveUpAfter {
		d.log.Error("notification dropped", "check", ev.Check, "kind", ev.Kind, "attempts", p.Attempts+1, "err", err)
		d.store.Ack(p.ID)
		d.save()
		return
	}
	wait := backoff(p.Attempts)
	if ra, ok := notifier.RetryAfter(err); ok {
		wait = ra
	}
	d.log.Warn("notification failed, will retry", "check", ev.Check, "kind", ev.Kind,
		"attempts", p.Attempts+1, "retry_in", wait.String(), "err", err)
	d.store.Retry(p.ID, now.Add(wait))
	d.save()
}

// backoff doubles from one second up to maxBackoff.
func backoff(attempts int) time.Duration {
	if attempts > 10 {
		return maxBackoff
	}
	w := time.Second << attempts
	if w > maxBackoff {
		w = maxBackoff
	}
	return w
}

// cronLogger routes cron's own messages (panics in jobs) to slog.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

// Handler serves /healthz, /status and /metrics (metrics may be nil).
func (d *Daemon) Handler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !d.Healthy() {
			http.Error(w, "scheduler not ticking", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(d.Status())
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// SeriesStatus is one row of /status.
type SeriesStatus struct {
	Check     string       `json:"check"`
	Vantage   string       `json:"vantage"`
	Route     report.Route `json:"route"`
	Status    int          `json:"status"`
	Since     time.Time    `json:"since"`
	Count     int          `json:"count"`
	Cause     report.Cause `json:"cause"`
	TraceID   string       `json:"trace_id"`
	Alerting  bool         `json:"alerting"`
	AlertedAt time.Time    `json:"alerted_at,omitzero"`
}

// StatusDoc is the /status document.
type StatusDoc struct {
	Vantage string         `json:"vantage"`
	Healthy bool           `json:"healthy"`
	Checks  int            `json:"checks"`
	Pending int            `json:"pending_notifications"`
	Series  []SeriesStatus `json:"series"`
}

// Status is what /status serves: every series with its last status.
func (d *Daemon) Status() StatusDoc {
	d.mu.Lock()
	doc := StatusDoc{Vantage: d.cfg.Vantage, Checks: len(d.cfg.Checks)}
	d.mu.Unlock()
	doc.Healthy = d.Healthy()
	doc.Pending = len(d.store.Pending())
	doc.Series = []SeriesStatus{}
	for _, s := range d.store.Snapshot() {
		row := SeriesStatus{Check: s.Key.Check, Vantage: s.Key.Vantage, Route: s.Key.Route, Status: s.Status,
			Since: s.Since, Count: s.Count, Cause: s.Cause, TraceID: s.TraceID, Alerting: s.Alert != nil}
		if s.Alert != nil {
			row.AlertedAt = s.Alert.Opened
		}
		doc.Series = append(doc.Series, row)
	}
	return doc
}
