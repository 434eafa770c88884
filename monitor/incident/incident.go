// Package incident decides, for one check, whether an incident opens,
// changes or closes. The unit a person acts on is the check, not one
// (vantage, route) series: one incident, one Slack message, however many
// vantages, routes and fleet members see the failure.
//
// Decide is a pure function of the check's series (every vantage and
// route, from every member), the incident as it stands, the diagnosis of
// the latest attempts and the clock, so every rule is a row in a table
// test. The store persists what it returns; the notifier words the events.
package incident

import (
	"crypto/rand"
	"encoding/hex"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/notifier"
)

// Series is what the store knows of one (vantage, route) of a check.
type Series struct {
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`
	// Transport is http1 or http2 ("" from releases before: http1).
	Transport report.Transport `json:"transport,omitempty"`
	// Member is the daemon that observed it (its own vantage name).
	Member  string         `json:"member"`
	Outcome report.Outcome `json:"outcome"`
	Status  int            `json:"status"`
	Cause   report.Cause   `json:"cause"`
	// Since is when the series entered this outcome and status.
	Since time.Time `json:"since"`
	// FirstSeen is its first observation; Since == FirstSeen means it
	// has looked like this since the first run.
	FirstSeen time.Time `json:"first_seen"`
	// FailStreak counts the consecutive runs that failed by the rule.
	FailStreak int `json:"fail_streak"`
	// Recent holds the last 64 runs, the latest in bit 0: 1 for a run
	// that failed by the rule ("after: X of Y").
	Recent uint64 `json:"recent,omitempty"`
	// OKStreak counts the consecutive upgraded runs (recover_after).
	OKStreak int       `json:"ok_streak,omitempty"`
	Updated  time.Time `json:"updated"`
	// Stale: its member stopped reporting it; it neither opens nor closes
	// anything (the caller judges freshness).
	Stale bool `json:"stale,omitempty"`
	// Muted: a silence holds for its vantage; it neither opens, holds nor
	// closes anything, and is shown as it is.
	Muted   bool   `json:"muted,omitempty"`
	TraceID string `json:"trace_id,omitempty"`
}

// Key names the series' cell in the matrix.
func (s Series) Key() string { return CellKey(s.Vantage, s.Route, s.Transport) }

// CellKey names a cell: vantage/route, and /h2 for the HTTP/2 path (the
// HTTP/1.1 cell keeps the name it had before there were transports).
func CellKey(vantage string, route report.Route, t report.Transport) string {
	if t == report.TransportHTTP2 {
		return vantage + "/" + string(route) + "/h2"
	}
	return vantage + "/" + string(route)
}

// failing: the series counts against the check: fresh, not silenced, and
// its outcome is one the rule alerts on.
func (s Series) failing(rule config.Alert) bool {
	return !s.Stale && !s.Muted && rule.Fails(s.Outcome, s.Status, s.Cause)
}

// State of an incident.
type State string

const (
	Open   State = "open"
	Closed State = "closed"
)

// Cell is one square of the vantage x route matrix a message shows: the
// notifier's own, so the decision and the message cannot disagree on what
// a cell is. The engine leaves Reason and Pop to the message's builder.
type Cell = notifier.Cell

// Incident is one check failing, as the store keeps it between decisions.
type Incident struct {
	ID     string    `json:"id"`
	Check  string    `json:"check"`
	State  State     `json:"state"`
	Opened time.Time `json:"opened"`
	// Closed is zero while open.
	Closed time.Time `json:"closed,omitzero"`
	// Cause and Vendor are the diagnosis as last told.
	Cause  report.Cause `json:"cause"`
	Vendor string       `json:"vendor,omitempty"`
	// Cells is the matrix as last shown.
	Cells []Cell `json:"cells"`
	// Seen are the cells (vantage/route) that failed at some point of the
	// incident: a cell failing that is not in it widens the incident.
	Seen []string `json:"seen"`
	// Reminded is when the last reminder went out.
	Reminded time.Time `json:"reminded,omitzero"`
	// Flaps counts how often it closed and failed again.
	Flaps int `json:"flaps,omitempty"`
	// Flips counts how often, while open, every series upgraded but not
	// for alert.recover_after runs; Holding is true while that lasts.
	Flips   int  `json:"flips,omitempty"`
	Holding bool `json:"holding,omitempty"`
	// FirstRun: the check was failing from its very first run, so there
	// is no "before" to tell.
	FirstRun bool `json:"first_run,omitempty"`
	// Acked is who acknowledged it and when: reminders stop.
	Acked *Ack `json:"acked,omitempty"`
	// FirstCause, FirstVendor and FirstRoutes are what it opened with
	// (the stable labels of an Alertmanager alert).
	FirstCause  report.Cause   `json:"first_cause,omitempty"`
	FirstVendor string         `json:"first_vendor,omitempty"`
	FirstRoutes []report.Route `json:"first_routes,omitempty"`
	// GroupKey is what a member shares with the others of its group
	// (group.by and its channel), set when it opens; Group the group it
	// is in ("" none).
	GroupKey string `json:"group_key,omitempty"`
	Group    string `json:"group,omitempty"`
}

// Ack is a person saying they are on it.
type Ack struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// Event is what a decision says; its kinds are the notifier's, so a kind
// the engine can produce is one every notifier words.
type Event = notifier.Event

// The kinds of events, as the notifier names them.
const (
	Opened       = notifier.EventOpened
	Reopened     = notifier.EventReopened
	Changed      = notifier.EventChanged
	CauseChanged = notifier.EventCauseChanged
	Widened      = notifier.EventWidened
	Reminder     = notifier.EventReminder
	Resolved     = notifier.EventResolved
)

// Input is everything one decision reads.
type Input struct {
	Check string
	Rule  config.Alert
	// Series are every series of the check the store knows, stale ones
	// marked.
	Series []Series
	// Current is the open incident, or the last closed one (which may be
	// reopened), or nil.
	Current *Incident
	// Diagnosis is over the latest attempts of the fresh series.
	Diagnosis report.Diagnosis
	Now       time.Time
	// Quiet: a silence or maintenance window holds. Nothing opens and no
	// reminder goes out; an open incident still changes and closes.
	Quiet bool
	// ReopenWithin: a check that fails again for the same cause this soon
	// after its incident closed reopens it instead of opening another (a
	// flapping check keeps one message); another cause is another incident.
	ReopenWithin time.Duration
	// NewID names a new incident.
	NewID func() string
}

// Decision is what changed. Incident is nil when nothing did.
type Decision struct {
	Incident *Incident
	Events   []Event
}

// Decide applies the alert rule to the check's series (README, "Incidents"):
// an incident opens when, for Rule.After consecutive runs, at
// least Rule.MinVantages vantages have a failing series on some route,
// outside any silence; it stays open while any fresh series is not
// upgraded (a rejection after the upgrade is never a recovery) and closes
// when all are upgraded. Stale series neither open nor close it: one that
// was failing when its member went silent keeps it open, since nobody
// knows whether that vantage recovered.
func Decide(in Input) Decision {
	cells := cellsOf(in.Series, in.Rule)
	cur := in.Current
	if cur != nil && cur.State == Open {
		return decideOpen(in, clone(cur), cells)
	}
	if in.Quiet || len(confirmedVantages(in.Series, in.Rule)) < max(in.Rule.MinVantages, 1) {
		return Decision{}
	}
	seen := failingKeys(cells)
	cause, vendor := causeOf(in.Diagnosis, cur)
	if cur != nil && in.ReopenWithin > 0 && in.Now.Sub(cur.Closed) <= in.ReopenWithin && cause == cur.Cause {
		inc := clone(cur)
		inc.State, inc.Closed, inc.Flaps = Open, time.Time{}, cur.Flaps+1
		inc.Cells, inc.Seen = cells, seen
		inc.Cause, inc.Vendor = cause, vendor
		return Decision{Incident: inc, Events: []Event{{Kind: Reopened, At: in.Now, Flaps: inc.Flaps}}}
	}
	inc := &Incident{ID: in.NewID(), Check: in.Check, State: Open, Opened: in.Now, Cells: cells, Seen: seen,
		FirstRun: sinceFirstRun(in.Series, in.Rule)}
	inc.Cause, inc.Vendor = causeOf(in.Diagnosis, nil)
	inc.FirstCause, inc.FirstVendor = inc.Cause, inc.Vendor
	for _, c := range cells {
		if c.Failing && !slices.Contains(inc.FirstRoutes, c.Route) {
			inc.FirstRoutes = append(inc.FirstRoutes, c.Route)
		}
	}
	slices.Sort(inc.FirstRoutes)
	return Decision{Incident: inc, Events: []Event{{Kind: Opened, At: in.Now}}}
}

func decideOpen(in Input, inc *Incident, cells []Cell) Decision {
	fresh := 0
	upgraded, recovered := 0, 0
	held := false // a series failed when its member went silent
	for _, s := range in.Series {
		if s.Muted {
			continue
		}
		if s.Stale {
			held = held || in.Rule.Fails(s.Outcome, s.Status, s.Cause)
			continue
		}
		fresh++
		if s.Outcome == report.OutcomeUpgraded {
			upgraded++
		}
		if s.recovered(in.Rule) {
			recovered++
		}
	}
	if fresh > 0 && recovered == fresh && !held {
		inc.State, inc.Closed, inc.Cells, inc.Holding = Closed, in.Now, cells, false
		return Decision{Incident: inc, Events: []Event{{Kind: Resolved, At: in.Now, Lasted: in.Now.Sub(inc.Opened), Flips: inc.Flips}}}
	}
	// Every series upgrades but not for long enough (recover_after): the
	// incident holds, and counts the flip once; the thread hears of the
	// flips with the recovery, not one message each.
	holding := fresh > 0 && upgraded == fresh && !held
	var events []Event
	if holding != inc.Holding {
		if holding {
			inc.Flips++
		}
		inc.Holding = holding
		if slices.Equal(cells, inc.Cells) {
			// Nothing to say: the incident is written, no message goes.
			return Decision{Incident: inc}
		}
	}
	shrank := shrinks(inc.Cells, cells)
	if !slices.Equal(cells, inc.Cells) {
		inc.Cells = cells
		events = append(events, Event{Kind: Changed, At: in.Now})
	}
	if c, v := causeOf(in.Diagnosis, inc); c != inc.Cause || v != inc.Vendor {
		// While it recovers place by place (a rule lifted region after
		// region), what is left may read differently: the message says
		// so, the thread does not.
		if !shrank {
			events = append(events, Event{Kind: CauseChanged, At: in.Now, FromCause: inc.Cause, FromVendor: inc.Vendor, ToCause: c, ToVendor: v})
		} else if len(events) == 0 {
			events = append(events, Event{Kind: Changed, At: in.Now})
		}
		inc.Cause, inc.Vendor = c, v
	}
	var added []string
	for _, k := range failingKeys(cells) {
		if !slices.Contains(inc.Seen, k) {
			added = append(added, k)
		}
	}
	if len(added) > 0 {
		inc.Seen = append(inc.Seen, added...)
		slices.Sort(inc.Seen)
		events = append(events, Event{Kind: Widened, At: in.Now, Added: added})
	}
	if r := in.Rule.Remind; r > 0 && !in.Quiet && inc.Acked == nil {
		last := inc.Opened
		if inc.Reminded.After(last) {
			last = inc.Reminded
		}
		if in.Now.Sub(last) >= r {
			inc.Reminded = in.Now
			events = append(events, Event{Kind: Reminder, At: in.Now, Lasted: in.Now.Sub(inc.Opened)})
		}
	}
	if len(events) == 0 {
		return Decision{}
	}
	return Decision{Incident: inc, Events: events}
}

// causeOf is the diagnosis' cause, or what was told before when this run
// has nothing better to say (every series it saw upgraded, or the run
// could not start).
func causeOf(d report.Diagnosis, before *Incident) (report.Cause, string) {
	if before != nil && (d.Cause == "" || d.Cause == report.CauseOK || d.Cause == report.CauseRunError) {
		return before.Cause, before.Vendor
	}
	return d.Cause, d.Vendor
}

// cellsOf is the matrix, sorted by vantage then route (cdn first).
func cellsOf(series []Series, rule config.Alert) []Cell {
	out := make([]Cell, 0, len(series))
	for _, s := range series {
		out = append(out, Cell{Vantage: s.Vantage, Route: s.Route, Transport: s.Transport, Outcome: s.Outcome, Status: s.Status,
			Failing: s.failing(rule), Stale: s.Stale, Muted: s.Muted})
	}
	slices.SortFunc(out, func(a, b Cell) int {
		if a.Vantage != b.Vantage {
			if a.Vantage < b.Vantage {
				return -1
			}
			return 1
		}
		if a.Route != b.Route {
			if a.Route == report.RouteCDN {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.Transport), string(b.Transport)) // http1 first
	})
	return out
}

// shrinks: fewer cells fail than before but some still do, and none that
// did not.
func shrinks(before, after []Cell) bool {
	was, now := failingKeys(before), failingKeys(after)
	if len(now) == 0 || len(now) >= len(was) {
		return false
	}
	for _, k := range now {
		if !slices.Contains(was, k) {
			return false
		}
	}
	return true
}

func failingKeys(cells []Cell) []string {
	var out []string
	for _, c := range cells {
		if c.Failing {
			out = append(out, CellKey(c.Vantage, c.Route, c.Transport))
		}
	}
	return out
}

// confirmedVantages are the vantages with a fresh series that fails and
// has failed as often as the rule wants (Series.confirmed).
func confirmedVantages(series []Series, rule config.Alert) []string {
	var out []string
	for _, s := range series {
		if s.failing(rule) && s.confirmed(rule) && !slices.Contains(out, s.Vantage) {
			out = append(out, s.Vantage)
		}
	}
	return out
}

// sinceFirstRun: every failing series has failed since it was first seen.
func sinceFirstRun(series []Series, rule config.Alert) bool {
	any := false
	for _, s := range series {
		if !s.failing(rule) {
			continue
		}
		if !s.Since.Equal(s.FirstSeen) {
			return false
		}
		any = true
	}
	return any
}

func clone(inc *Incident) *Incident {
	c := *inc
	c.Cells = slices.Clone(inc.Cells)
	c.Seen = slices.Clone(inc.Seen)
	c.FirstRoutes = slices.Clone(inc.FirstRoutes)
	return &c
}

// Next folds one run's attempt into a series: the streaks and since move
// on, the rest is the attempt's. prev is nil for a series seen first.
func Next(prev *Series, rule config.Alert, member string, a report.Attempt, cause report.Cause, at time.Time) Series {
	s := Series{Vantage: a.Vantage, Route: a.Route, Transport: a.Transport.OrHTTP1(), Member: member, Outcome: report.OutcomeOf(a), Status: a.Status,
		Cause: cause, Since: at, FirstSeen: at, Updated: at, TraceID: a.TraceID}
	if prev != nil {
		s.FirstSeen = prev.FirstSeen
		if prev.Outcome == s.Outcome && prev.Status == s.Status {
			s.Since = prev.Since
		}
	}
	if prev != nil {
		s.Recent = prev.Recent << 1
	}
	if rule.Fails(s.Outcome, s.Status, s.Cause) {
		s.FailStreak = 1
		s.Recent |= 1
		if prev != nil {
			s.FailStreak = prev.FailStreak + 1
		}
	}
	if s.Outcome == report.OutcomeUpgraded {
		s.OKStreak = 1
		if prev != nil {
			s.OKStreak = prev.OKStreak + 1
		}
	}
	return s
}

// confirmed: the series has failed as often as the rule wants before an
// incident opens: After consecutive runs, or After of its last Within.
func (s Series) confirmed(rule config.Alert) bool {
	after := max(rule.After, 1)
	if rule.Within == 0 {
		return s.FailStreak >= after
	}
	mask := ^uint64(0)
	if rule.Within < 64 {
		mask = 1<<rule.Within - 1
	}
	return bits.OnesCount64(s.Recent&mask) >= after
}

// recovered: the series has upgraded for the rule's RecoverAfter
// consecutive runs (any upgraded run when it is 1, as before there was a
// count: a series written by an older release has none).
func (s Series) recovered(rule config.Alert) bool {
	return s.Outcome == report.OutcomeUpgraded && (rule.RecoverAfter <= 1 || s.OKStreak >= rule.RecoverAfter)
}

// NewID names an incident: the check, when it opened, and a random suffix
// so that two members racing to open one never pick the same name.
func NewID(check string, opened time.Time) string {
	var b [3]byte
	rand.Read(b[:])
	return check + "-" + opened.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
