package engine

import (
	"context"
	"slices"
	"strings"
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
	// Groups (engine/group.go).
	IncidentByID(ctx context.Context, id string) (*store.Record, error)
	OpenByKey(ctx context.Context, key string, since time.Time) ([]*store.Record, error)
	DropQueued(ctx context.Context, incidentID, target string) (int, error)
	Claimed(ctx context.Context, incidentID, target string) (bool, error)
	SetRoot(ctx context.Context, incidentID string, root notifier.Delivery) error
	PutMember(ctx context.Context, groupID string, m store.GroupMember) error
	DropMember(ctx context.Context, groupID, incidentID string) error
	Member(ctx context.Context, groupID, incidentID string) (*store.GroupMember, error)
	GroupCounts(ctx context.Context, groupID string) (store.GroupCount, error)
	GroupNames(ctx context.Context, groupID string, open bool, limit int) ([]string, error)
	GroupPops(ctx context.Context, groupID string, limit int) ([]string, error)
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
	local     []localMsg                    // undelivered messages decided alone, in order
	handing   bool                          // a hand-over of local is under way
	dirty     map[string]bool               // checks decided alone
	tokens    map[string]*report.Token      // the latest run's token facts, by check
	wrote     map[store.SeriesKey]time.Time // when a series was last written to the store
	silences  map[string][]store.Silence    // by check, as last read from the store
	// groups are the members of the groups this daemon knows, by group
	// id then incident id.
	groups map[string]map[string]store.GroupMember
}

func newMemory() *memory {
	m := &memory{series: map[store.SeriesKey]store.SeriesRow{}, incidents: map[string]*store.Record{},
		warnings: map[[2]string]bool{}, dirty: map[string]bool{}, tokens: map[string]*report.Token{},
		wrote: map[store.SeriesKey]time.Time{}, silences: map[string][]store.Silence{}, groups: map[string]map[string]store.GroupMember{}}
	return m
}

func keyOf(r store.SeriesRow) store.SeriesKey {
	return store.AttemptKey(r.Check, report.Attempt{Vantage: r.Vantage, Route: r.Route, Transport: r.Transport})
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
			r.FailStreak > 0 || p.FailStreak != r.FailStreak || p.Recent != r.Recent || now.Sub(m.wrote[k]) >= touchEvery {
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
		if a.Route != b.Route {
			return strings.Compare(string(a.Route), string(b.Route))
		}
		return strings.Compare(string(a.Transport), string(b.Transport))
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
	if r == nil && strings.HasPrefix(inc.Check, groupLock) {
		// A group whose key changed is kept under its new name, with
		// where its message is.
		for name, old := range m.incidents {
			if old.Decision.ID == inc.ID {
				r = old
				delete(m.incidents, name)
				m.incidents[inc.Check] = r
				break
			}
		}
	}
	if r == nil || r.Decision.ID != inc.ID {
		r = &store.Record{}
		m.incidents[inc.Check] = r
	}
	r.Decision, r.View = inc, view
}

// Enqueue keeps a message to deliver alone, coalescing like the store
// (one rule, store.Coalesce): an update waits behind a waiting open or
// update, replies merge.
func (m *memory) Enqueue(_ context.Context, msg notifier.Message, incidentID string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.local {
		q := &m.local[i]
		if q.inFlight || q.incident != incidentID || incidentID == "" || q.msg.Target != msg.Target {
			continue
		}
		switch store.Coalesce(q.msg.Kind, msg.Kind) {
		case store.Drop:
			return nil
		case store.Merge:
			q.msg.Events = store.MergeEvents(q.msg.Events, msg.Events)
			q.msg.Incident = msg.Incident
			return nil
		}
	}
	m.local = append(m.local, localMsg{msg: msg, incident: incidentID, enqueued: now, next: now})
	return nil
}

// OpenByKey: the open incidents memory holds that share a group key and
// opened at since or later, oldest first.
func (m *memory) OpenByKey(_ context.Context, key string, since time.Time) ([]*store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*store.Record
	for _, r := range m.incidents {
		if d := r.Decision; d.State == incident.Open && d.GroupKey == key && !d.Opened.Before(since) {
			c := *r
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *store.Record) int {
		if c := a.Decision.Opened.Compare(b.Decision.Opened); c != 0 {
			return c
		}
		return strings.Compare(a.Decision.ID, b.Decision.ID)
	})
	return out, nil
}

// IncidentByID is the incident of that id memory holds, nil if none.
func (m *memory) IncidentByID(_ context.Context, id string) (*store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.incidents {
		if r.Decision.ID == id {
			c := *r
			return &c, nil
		}
	}
	return nil, nil
}

// DropQueued removes the messages decided alone of an incident for
// target that are not being delivered.
func (m *memory) DropQueued(_ context.Context, incidentID, target string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.local)
	m.local = slices.DeleteFunc(m.local, func(q localMsg) bool {
		return q.incident == incidentID && q.msg.Target == target && !q.inFlight
	})
	return n - len(m.local), nil
}

// Claimed: a message decided alone of the incident is being delivered.
func (m *memory) Claimed(_ context.Context, incidentID, target string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.ContainsFunc(m.local, func(q localMsg) bool {
		return q.incident == incidentID && q.msg.Target == target && q.inFlight
	}), nil
}

// SetRoot records where an incident's message is (a group takes its first
// member's message).
func (m *memory) SetRoot(_ context.Context, incidentID string, root notifier.Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setRootLocked(incidentID, root)
	return nil
}

func (m *memory) setRootLocked(incidentID string, root notifier.Delivery) {
	for _, r := range m.incidents {
		if r.Decision.ID == incidentID {
			r.Root, r.Posted = root, true
		}
	}
}

// PutMember keeps a member's row of a group.
func (m *memory) PutMember(_ context.Context, groupID string, gm store.GroupMember) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g := m.groups[groupID]
	if g == nil {
		g = map[string]store.GroupMember{}
		m.groups[groupID] = g
	}
	if old, ok := g[gm.Incident]; ok {
		gm.Joined = old.Joined
	}
	g[gm.Incident] = gm
	return nil
}

// DropMember forgets a member that left its group.
func (m *memory) DropMember(_ context.Context, groupID, incidentID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.groups[groupID], incidentID)
	return nil
}

// Member is a member's row, nil if the incident is not in the group.
func (m *memory) Member(_ context.Context, groupID, incidentID string) (*store.GroupMember, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gm, ok := m.groups[groupID][incidentID]
	if !ok {
		return nil, nil
	}
	return &gm, nil
}

// GroupCounts counts a group's members as memory knows them.
func (m *memory) GroupCounts(_ context.Context, groupID string) (store.GroupCount, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := store.GroupCount{OpenByKey: map[string]int{}}
	for _, gm := range m.groups[groupID] {
		c.Members++
		if gm.Open {
			c.Open++
			c.OpenByKey[gm.Key]++
		}
	}
	return c, nil
}

// GroupNames are the first limit members, open or not, as they joined.
func (m *memory) GroupNames(_ context.Context, groupID string, open bool, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ms []store.GroupMember
	for _, gm := range m.groups[groupID] {
		if gm.Open == open {
			ms = append(ms, gm)
		}
	}
	slices.SortFunc(ms, func(a, b store.GroupMember) int {
		if c := a.Joined.Compare(b.Joined); c != 0 {
			return c
		}
		return strings.Compare(a.Check, b.Check)
	})
	var out []string
	for i := 0; i < len(ms) && i < limit; i++ {
		out = append(out, ms[i].Check)
	}
	return out, nil
}

// GroupPops are the edge locations of a group's failing members.
func (m *memory) GroupPops(_ context.Context, groupID string, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, gm := range m.groups[groupID] {
		if gm.Open && gm.Pop != "" && !slices.Contains(out, gm.Pop) {
			out = append(out, gm.Pop)
		}
	}
	slices.Sort(out)
	return out[:min(len(out), limit)], nil
}

// localMsg is a message decided alone, waiting for its notifier.
type localMsg struct {
	msg      notifier.Message
	incident string
	attempts int
	enqueued time.Time
	next     time.Time // not before
	inFlight bool
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

// nextLocal returns the first message decided alone for target that is
// due and not behind another message of its incident, rendered like a
// claimed store entry: an open or update shows the incident as it is now,
// and carries its thread once the open was delivered; a reply or update
// of an incident never posted is its message instead (notifier.AsOpen). It is in flight
// until doneLocal. With nothing to send now, it says when to look again
// (0: nothing waits).
func (m *memory) nextLocal(target string, now time.Time) (notifier.Message, string, time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var wait time.Duration
	ahead := map[string]bool{} // incidents with an earlier message waiting
	for i := range m.local {
		q := &m.local[i]
		if q.msg.Target != target || m.handing {
			continue
		}
		blocked := q.incident != "" && ahead[q.incident]
		if q.incident != "" {
			ahead[q.incident] = true
		}
		if q.inFlight || blocked {
			continue
		}
		if d := q.next.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		q.inFlight = true
		msg := q.msg
		if r := m.byID(q.incident); r != nil {
			if msg.Kind == notifier.KindOpen || msg.Kind == notifier.KindUpdate {
				v := r.View
				msg.Incident = &v
			}
			if r.Root.TS != "" && msg.Kind != notifier.KindOpen {
				root := r.Root
				msg.Thread = &root
			}
			if open, ok := notifier.AsOpen(msg, r.Posted, &r.View); ok {
				msg = open
			}
		}
		return msg, q.incident, 0, true
	}
	return notifier.Message{}, "", wait, false
}

func (m *memory) byID(incidentID string) *store.Record {
	if incidentID == "" {
		return nil
	}
	for _, r := range m.incidents {
		if r.Decision.ID == incidentID {
			return r
		}
	}
	return nil
}

// doneLocal ends a delivery of a local message: removed when delivered
// (or dropped), else due again at retry. Its incident's message, if it was
// the open, landed at root.
func (m *memory) doneLocal(id string, remove bool, root *notifier.Delivery, retry time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.local {
		q := &m.local[i]
		if q.msg.ID != id || !q.inFlight {
			continue
		}
		q.inFlight = false
		if root != nil {
			if r := m.byID(q.incident); r != nil {
				r.Root, r.Posted = *root, true
			}
		}
		if remove {
			m.local = slices.Delete(m.local, i, i+1)
		} else {
			q.attempts++
			q.next = retry
		}
		break
	}
}

// deferLocal gives a local message back untried, due at next.
func (m *memory) deferLocal(id string, next time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.local {
		if q := &m.local[i]; q.msg.ID == id {
			q.inFlight, q.next = false, next
		}
	}
}

// localInfo counts the failed deliveries of a local message and says when
// it was decided.
func (m *memory) localInfo(id string) (int, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, q := range m.local {
		if q.msg.ID == id {
			return q.attempts, q.enqueued
		}
	}
	return 0, time.Time{}
}

// pendingLocal counts the messages decided alone and not delivered.
func (m *memory) pendingLocal() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.local)
}

// handOff is what was decided alone, on its way into the store: the
// incidents, and the messages not delivered yet. While it is out no local
// message is delivered (one would be posted twice: here and from the
// store); finish removes it from memory once the store has it, or gives it
// back when the transaction failed.
type handOff struct {
	aloneState
	m *memory
}

// takeLocal starts a hand-over. Not while a message is being delivered:
// whether it landed (and where) is not known yet, and handing it over
// could post it twice.
func (m *memory) takeLocal() (*handOff, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.ContainsFunc(m.local, func(q localMsg) bool { return q.inFlight }) {
		return nil, false
	}
	m.handing = true
	return &handOff{aloneState: m.aloneLocked(), m: m}, true
}

// aloneState is what memory holds that the store does not: the
// incidents decided alone (with where their messages are) and the
// messages not delivered yet, for the journal and the hand-over.
func (m *memory) aloneState() aloneState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.aloneLocked()
}

func (m *memory) aloneLocked() aloneState {
	var st aloneState
	for c := range m.dirty {
		if r, ok := m.incidents[c]; ok {
			st.Incidents = append(st.Incidents, *r)
		}
	}
	slices.SortFunc(st.Incidents, func(a, b store.Record) int { return strings.Compare(a.Decision.Check, b.Decision.Check) })
	for _, q := range m.local {
		st.Messages = append(st.Messages, aloneMessage{Message: q.msg, Incident: q.incident})
	}
	return st
}

// restore takes back what a previous process journaled and never handed
// over, to hand over now.
func (m *memory) restore(st aloneState, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range st.Incidents {
		c := r
		m.incidents[r.Decision.Check] = &c
		m.dirty[r.Decision.Check] = true
	}
	for _, q := range st.Messages {
		m.local = append(m.local, localMsg{msg: q.Message, incident: q.Incident, enqueued: now, next: now})
	}
}

// dirtyChecks are the checks decided alone, to lock before a hand-over.
func (m *memory) dirtyChecks() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.dirty))
	for c := range m.dirty {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// finish ends the hand-over: what the store now has leaves memory when
// committed; otherwise it all stays, to be handed over by a later try.
func (h *handOff) finish(committed bool) {
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.handing = false
	if !committed {
		return
	}
	for _, r := range h.Incidents {
		delete(m.dirty, r.Decision.Check)
	}
	taken := map[string]bool{}
	for _, q := range h.Messages {
		taken[q.Message.ID] = true
	}
	m.local = slices.DeleteFunc(m.local, func(q localMsg) bool { return taken[q.msg.ID] })
}

// tee records into the store's transaction and stages the same writes for
// memory, applied when the transaction commits, so memory is never ahead
// of the store nor behind it.
type tee struct {
	*store.Tx
	mem    *memory
	staged []func()
	// queued counts the messages the transaction put in the outbox, opens
	// those that are an incident's first message to the primary notifier.
	queued, opens int
}

func (t *tee) Enqueue(ctx context.Context, m notifier.Message, incidentID string, now time.Time) error {
	if err := t.Tx.Enqueue(ctx, m, incidentID, now); err != nil {
		return err
	}
	t.queued++
	if m.Kind == notifier.KindOpen && m.Target == "" {
		t.opens++
	}
	return nil
}

// noteOpen counts an incident that opened inside a group: its message is
// the group's, but the storm's settling counts it (Engine.LastOpen).
func (t *tee) noteOpen() { t.opens++ }

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

func (t *tee) SetRoot(ctx context.Context, incidentID string, root notifier.Delivery) error {
	if err := t.Tx.SetRoot(ctx, incidentID, root); err != nil {
		return err
	}
	t.staged = append(t.staged, func() { t.mem.SetRoot(ctx, incidentID, root) })
	return nil
}

func (t *tee) PutMember(ctx context.Context, groupID string, m store.GroupMember) error {
	if err := t.Tx.PutMember(ctx, groupID, m); err != nil {
		return err
	}
	t.staged = append(t.staged, func() { t.mem.PutMember(ctx, groupID, m) })
	return nil
}

func (t *tee) DropMember(ctx context.Context, groupID, incidentID string) error {
	if err := t.Tx.DropMember(ctx, groupID, incidentID); err != nil {
		return err
	}
	t.staged = append(t.staged, func() { t.mem.DropMember(ctx, groupID, incidentID) })
	return nil
}

func (t *tee) commit() {
	for _, f := range t.staged {
		f()
	}
}
