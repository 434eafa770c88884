package monitor

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/wscanary/wscanary/monitor/incident"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/notifier"
)

// ledger is where a batch of runs is recorded and its checks decided: a
// store transaction normally, this daemon's memory while the store cannot
// be written. The decision code is the same for both.
type ledger interface {
	LockCheck(ctx context.Context, check string) error
	Series(ctx context.Context, check string, now time.Time) ([]store.SeriesRow, error)
	PutSeries(ctx context.Context, rows []store.SeriesRow, staleAfter map[string]time.Duration) error
	AddHistory(ctx context.Context, rows []store.HistoryRow) error
	Incident(ctx context.Context, check string) (*store.Record, error)
	PutIncident(ctx context.Context, inc incident.Incident, view notifier.Incident, now time.Time) error
	Enqueue(ctx context.Context, m notifier.Message, incidentID string, now time.Time) error
	StartWarning(ctx context.Context, check, kind, detail string, now time.Time) (bool, error)
	EndWarning(ctx context.Context, check, kind string) error
	Silences(ctx context.Context, check string, now time.Time) ([]store.Silence, error)
}

var (
	_ ledger = (*store.Tx)(nil)
	_ ledger = (*memory)(nil)
	_ ledger = (*tee)(nil)
)

// memory is what this daemon knows without its store: its own series and
// the incidents of its checks, always; and, while the store cannot be
// written, the messages it decided alone (local) and which incidents it
// changed (dirty), to hand over when the store is back. It is the one owner
// of an open incident's facts in memory; the store owns them on disk.
type memory struct {
	mu        sync.Mutex
	series    map[store.SeriesKey]store.SeriesRow
	incidents map[string]*store.Record // by check: open, else the last closed
	warnings  map[[2]string]bool
	local     []notifier.Message            // undelivered messages decided alone
	localInc  map[string]string             // message id -> incident id
	inFlight  bool                          // local[0] is being delivered
	dirty     map[string]bool               // checks decided alone
	tokens    map[string]*report.Token      // the latest run's token facts, by check
	wrote     map[store.SeriesKey]time.Time // when a series was last written to the store
	silences  map[string][]store.Silence    // by check, as last read from the store
}

func newMemory() *memory {
	return &memory{series: map[store.SeriesKey]store.SeriesRow{}, incidents: map[string]*store.Record{},
		warnings: map[[2]string]bool{}, localInc: map[string]string{}, dirty: map[string]bool{}, tokens: map[string]*report.Token{},
		wrote: map[store.SeriesKey]time.Time{}, silences: map[string][]store.Silence{}}
}

func keyOf(r store.SeriesRow) store.SeriesKey {
	return store.SeriesKey{Check: r.Check, Vantage: r.Vantage, Route: r.Route}
}

// token returns what the check's latest run knew of its token.
func (m *memory) token(check string) *report.Token {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[check]
}

func (m *memory) setToken(check string, t *report.Token) {
	m.mu.Lock()
	m.tokens[check] = t
	m.mu.Unlock()
}

// toWrite picks the rows the store needs: a series seen first, whose state
// changed, that fails (its streak moves), or not written for touchEvery.
func (m *memory) toWrite(rows []store.SeriesRow, now time.Time) []store.SeriesRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.SeriesRow
	for _, r := range rows {
		k := keyOf(r)
		p, ok := m.series[k]
		if !ok || p.Outcome != r.Outcome || p.Status != r.Status || p.Cause != r.Cause || p.Since != r.Since ||
			r.FailStreak > 0 || p.FailStreak != r.FailStreak || now.Sub(m.wrote[k]) >= touchEvery {
			out = append(out, r)
		}
	}
	return out
}

// written records when rows reached the store.
func (m *memory) written(rows []store.SeriesRow, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rows {
		m.wrote[keyOf(r)] = at
	}
}

// prev returns the series as last recorded.
func (m *memory) prev(k store.SeriesKey) (store.SeriesRow, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.series[k]
	return r, ok
}

// openIncident returns a copy of the check's incident record when open.
func (m *memory) openIncident(check string) (store.Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.incidents[check]
	if !ok || r.Decision.State != incident.Open {
		return store.Record{}, false
	}
	return *r, true
}

// openChecks lists the checks with an open incident.
func (m *memory) openChecks() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for c, r := range m.incidents {
		if r.Decision.State == incident.Open {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

// setRoot records where an incident's message landed.
func (m *memory) setRoot(incidentID string, root notifier.Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.incidents {
		if r.Decision.ID == incidentID {
			r.Root, r.Posted = root, true
		}
	}
}

// forget drops what memory holds of checks that keep rejects.
func (m *memory) forget(keep func(check string) bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.series {
		if !keep(k.Check) {
			delete(m.series, k)
		}
	}
	for c := range m.incidents {
		if !keep(c) {
			delete(m.incidents, c)
		}
	}
}

// fleetHolds: the check's incident is open and this member has not
// decided it alone (the fleet opened it, or this member did through the
// store).
func (m *memory) fleetHolds(check string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.incidents[check]
	return ok && r.Decision.State == incident.Open && !m.dirty[check]
}

func (m *memory) LockCheck(context.Context, string) error { return nil }

// Silences are the check's silences as last read from the store: without
// it, they still hold until they end.
func (m *memory) Silences(_ context.Context, check string, now time.Time) ([]store.Silence, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Silence
	for _, sl := range m.silences[check] {
		if sl.Holds(now) {
			out = append(out, sl)
		}
	}
	return out, nil
}

// Series are this daemon's own series of the check: without the store it
// sees no other member's.
func (m *memory) Series(_ context.Context, check string, now time.Time) ([]store.SeriesRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.SeriesRow
	for k, r := range m.series {
		if k.Check == check {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b store.SeriesRow) int {
		if a.Vantage != b.Vantage {
			if a.Vantage < b.Vantage {
				return -1
			}
			return 1
		}
		if a.Route < b.Route {
			return -1
		}
		if a.Route > b.Route {
			return 1
		}
		return 0
	})
	return out, nil
}

func (m *memory) PutSeries(_ context.Context, rows []store.SeriesRow, _ map[string]time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range rows {
		m.series[keyOf(r)] = r
	}
	return nil
}

// AddHistory: without the store the history of these runs is lost; memory
// keeps no history.
func (m *memory) AddHistory(context.Context, []store.HistoryRow) error { return nil }

func (m *memory) Incident(_ context.Context, check string) (*store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.incidents[check]
	if !ok {
		return nil, nil
	}
	c := *r
	return &c, nil
}

func (m *memory) PutIncident(_ context.Context, inc incident.Incident, view notifier.Incident, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putIncidentLocked(inc, view)
	m.dirty[inc.Check] = true
	return nil
}

func (m *memory) putIncidentLocked(inc incident.Incident, view notifier.Incident) {
	r := m.incidents[inc.Check]
	if r == nil || r.Decision.ID != inc.ID {
		r = &store.Record{}
		m.incidents[inc.Check] = r
	}
	r.Decision, r.View = inc, view
}

// Enqueue keeps a message to deliver alone, coalescing like the store: an
// update waits behind a waiting open or update, replies merge.
func (m *memory) Enqueue(_ context.Context, msg notifier.Message, incidentID string, _ time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, q := range m.local {
		if m.localInc[q.ID] != incidentID || incidentID == "" || q.Target != msg.Target {
			continue
		}
		if msg.Kind == notifier.KindUpdate && (q.Kind == notifier.KindOpen || q.Kind == notifier.KindUpdate) {
			return nil
		}
		if msg.Kind == notifier.KindReply && q.Kind == notifier.KindReply {
			m.local[i].Events = append(m.local[i].Events, msg.Events...)
			m.local[i].Incident = msg.Incident
			return nil
		}
	}
	m.local = append(m.local, msg)
	m.localInc[msg.ID] = incidentID
	return nil
}

// warned reports whether a warning of the check holds.
func (m *memory) warned(check string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.warnings {
		if k[0] == check {
			return true
		}
	}
	return false
}

func (m *memory) StartWarning(_ context.Context, check, kind, _ string, _ time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{check, kind}
	if m.warnings[k] {
		return false, nil
	}
	m.warnings[k] = true
	return true, nil
}

func (m *memory) EndWarning(_ context.Context, check, kind string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.warnings, [2]string{check, kind})
	return nil
}

// nextLocal returns the first message decided alone, rendered like a
// claimed store entry: an open or update shows the incident as it is now,
// and carries its thread once the open was delivered.
func (m *memory) nextLocal() (notifier.Message, string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.local) == 0 {
		return notifier.Message{}, "", false
	}
	m.inFlight = true
	msg := m.local[0]
	incID := m.localInc[msg.ID]
	for _, r := range m.incidents {
		if r.Decision.ID != incID {
			continue
		}
		if msg.Kind == notifier.KindOpen || msg.Kind == notifier.KindUpdate {
			v := r.View
			msg.Incident = &v
		}
		if r.Root.TS != "" && msg.Kind != notifier.KindOpen {
			root := r.Root
			msg.Thread = &root
		}
	}
	return msg, incID, true
}

// doneLocal ends the delivery of the first local message: removed when
// delivered (or given up), kept for a retry otherwise. Its incident's
// message, if it was the open, landed at root.
func (m *memory) doneLocal(id string, remove bool, root *notifier.Delivery) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inFlight = false
	if root != nil {
		for _, r := range m.incidents {
			if r.Decision.ID == m.localInc[id] {
				r.Root, r.Posted = *root, true
			}
		}
	}
	if remove && len(m.local) > 0 && m.local[0].ID == id {
		m.local = m.local[1:]
		delete(m.localInc, id)
	}
}

// takeLocal hands over what was decided alone: the incidents, and the
// messages not delivered yet. Not while one is being delivered: whether it
// landed (and where) is not known yet, and handing it over could post it
// twice.
func (m *memory) takeLocal() (incidents []store.Record, undelivered []notifier.Message, incOf map[string]string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inFlight {
		return nil, nil, nil, false
	}
	for c := range m.dirty {
		if r, ok := m.incidents[c]; ok {
			incidents = append(incidents, *r)
		}
	}
	undelivered, incOf = m.local, m.localInc
	m.dirty, m.local, m.localInc = map[string]bool{}, nil, map[string]string{}
	return incidents, undelivered, incOf, true
}

// tee records into the store's transaction and stages the same writes for
// memory, applied when the transaction commits, so memory is never ahead
// of the store nor behind it.
type tee struct {
	*store.Tx
	mem    *memory
	staged []func()
	// queued counts the messages the transaction put in the outbox.
	queued int
}

func (t *tee) Enqueue(ctx context.Context, m notifier.Message, incidentID string, now time.Time) error {
	if err := t.Tx.Enqueue(ctx, m, incidentID, now); err != nil {
		return err
	}
	t.queued++
	return nil
}

func (t *tee) PutIncident(ctx context.Context, inc incident.Incident, view notifier.Incident, now time.Time) error {
	if err := t.Tx.PutIncident(ctx, inc, view, now); err != nil {
		return err
	}
	t.staged = append(t.staged, func() {
		t.mem.mu.Lock()
		t.mem.putIncidentLocked(inc, view)
		t.mem.mu.Unlock()
	})
	return nil
}

// Incident reads the store, and keeps memory's copy (with where its
// message is) current for a later moment without the store.
func (t *tee) Incident(ctx context.Context, check string) (*store.Record, error) {
	r, err := t.Tx.Incident(ctx, check)
	if err == nil && r != nil {
		c := *r
		t.staged = append(t.staged, func() {
			t.mem.mu.Lock()
			t.mem.incidents[check] = &c
			t.mem.mu.Unlock()
		})
	}
	return r, err
}

// Silences reads the store and keeps memory's copy for a moment without it.
func (t *tee) Silences(ctx context.Context, check string, now time.Time) ([]store.Silence, error) {
	sl, err := t.Tx.Silences(ctx, check, now)
	if err == nil {
		t.staged = append(t.staged, func() {
			t.mem.mu.Lock()
			if len(sl) == 0 {
				delete(t.mem.silences, check)
			} else {
				t.mem.silences[check] = sl
			}
			t.mem.mu.Unlock()
		})
	}
	return sl, err
}

func (t *tee) StartWarning(ctx context.Context, check, kind, detail string, now time.Time) (bool, error) {
	started, err := t.Tx.StartWarning(ctx, check, kind, detail, now)
	if err == nil {
		t.staged = append(t.staged, func() { t.mem.StartWarning(ctx, check, kind, detail, now) })
	}
	return started, err
}

func (t *tee) EndWarning(ctx context.Context, check, kind string) error {
	err := t.Tx.EndWarning(ctx, check, kind)
	if err == nil {
		t.staged = append(t.staged, func() { t.mem.EndWarning(ctx, check, kind) })
	}
	return err
}

func (t *tee) commit() {
	for _, f := range t.staged {
		f()
	}
}
