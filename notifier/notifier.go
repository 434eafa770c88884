// Package notifier tells people about incidents: one message per incident,
// kept up to date while it lasts, with thread replies for what a person
// should notice (the cause changed, more vantages fail, a reminder, the
// recovery), and short notices of their own (a certificate about to expire,
// a fleet member gone silent).
//
// The monitor builds a Message (pure data, persisted in its outbox) and
// hands it to a Notifier. A Notifier makes exactly one attempt per call;
// retries, backoff and the persisted queue belong to the monitor's delivery
// loop, which asks RetryAfter and Permanent how to treat an error.
//
// Kind and EventKind are the one vocabulary the incident engine, the store
// and every notifier share: a kind added here is handled everywhere or fails
// to build, never a permanent error at delivery.
//
// Everything a Message carries has been redacted by the prober already;
// the Slack notifier additionally keeps its own secrets (the bot token, the
// webhook URL) out of the errors it returns and the logs it writes.
package notifier

import (
	"context"
	"slices"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// Kind is what a message does.
type Kind string

const (
	// KindOpen posts an incident's root message.
	KindOpen Kind = "open"
	// KindUpdate re-renders the root message in place (coalesced: the
	// latest state wins).
	KindUpdate Kind = "update"
	// KindReply posts in the root's thread what a person should notice.
	KindReply Kind = "reply"
	// KindNotice posts a message of its own: a warning, a fleet notice.
	KindNotice Kind = "notice"
)

// Kinds are every Kind; a notifier that switches on Kind must handle each.
var Kinds = []Kind{KindOpen, KindUpdate, KindReply, KindNotice}

// EventKind is what changed in an incident.
type EventKind string

const (
	// EventOpened: a new incident.
	EventOpened EventKind = "opened"
	// EventReopened: the check failed again soon after its incident
	// closed; the same incident and message carry on.
	EventReopened EventKind = "reopened"
	// EventChanged: the matrix changed.
	EventChanged EventKind = "changed"
	// EventCauseChanged: the diagnosis names another cause.
	EventCauseChanged EventKind = "cause_changed"
	// EventWidened: vantages or routes that had not failed now do.
	EventWidened EventKind = "widened"
	// EventReminder: still open after alert.remind.
	EventReminder EventKind = "reminder"
	// EventResolved: every series is back to upgraded.
	EventResolved EventKind = "resolved"
	// EventLeft: a check left the group (its cause changed away from the
	// group's) and is told on its own again; Member names it.
	EventLeft EventKind = "left"
	// EventElided stands for earlier events a merged reply leaves out
	// (Flaps counts them): they are in the history.
	EventElided EventKind = "elided"
)

// Event is one thing that happened to an incident, worded by the
// notifiers in thread replies.
type Event struct {
	Kind EventKind `json:"kind"`
	At   time.Time `json:"at"`
	// FromCause/ToCause for a changed cause (with their vendors).
	FromCause  report.Cause `json:"from_cause,omitempty"`
	FromVendor string       `json:"from_vendor,omitempty"`
	ToCause    report.Cause `json:"to_cause,omitempty"`
	ToVendor   string       `json:"to_vendor,omitempty"`
	// Added are the vantage/route cells a widening adds.
	Added []string `json:"added,omitempty"`
	// Lasted is how long the incident has been open (reminder, resolved).
	Lasted time.Duration `json:"lasted,omitempty"`
	// Flaps is how often the incident has reopened.
	Flaps int `json:"flaps,omitempty"`
	// Flips is how often, while it was open, every series upgraded for
	// fewer runs than alert.recover_after (resolved).
	Flips int `json:"flips,omitempty"`
	// Member is the check a group's event is about (left).
	Member string `json:"member,omitempty"`
	// Failing says what failed where at the moment of the event ("403
	// Forbidden on 2 of 6"), so a reply that merges several events words
	// each as it was.
	Failing string `json:"failing,omitempty"`
}

// State of an incident as shown.
type State string

const (
	StateOpen     State = "open"
	StateResolved State = "resolved"
)

// Cell is one square of the vantage x route matrix.
type Cell struct {
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`
	// Transport is http1 or http2 ("" before transports: http1).
	Transport report.Transport `json:"transport,omitempty"`
	Outcome   report.Outcome   `json:"outcome"`
	Status    int              `json:"status"`
	// Reason is the status line's reason or the error class ("Forbidden",
	// "closed 4003", "connect").
	Reason  string `json:"reason,omitempty"`
	Failing bool   `json:"failing,omitempty"`
	// Stale: the member that observes it stopped reporting.
	Stale bool `json:"stale,omitempty"`
	// Muted: a silence holds for its vantage.
	Muted bool `json:"muted,omitempty"`
	// Pop is the edge location that answered ("FRA"), when the edge said.
	Pop string `json:"pop,omitempty"`
}

// Incident is everything a message shows of an incident: pure data, so the
// builders are pure functions of it. Every string has been redacted.
type Incident struct {
	ID    string `json:"id"`
	Check string `json:"check"`
	State State  `json:"state"`
	// Opened is when the incident opened; Closed when it resolved.
	Opened time.Time `json:"opened"`
	Closed time.Time `json:"closed,omitzero"`
	// At is when this view was taken; relative times count from it, so the
	// builders stay pure.
	At time.Time `json:"at"`
	// FirstRun: failing since the check's first run (there is no "before").
	FirstRun bool `json:"first_run,omitempty"`
	Flaps    int  `json:"flaps,omitempty"`
	// Group, on a group's own message, is its members; InGroup, on a
	// member's, points at the group its message now lives in.
	Group   *GroupView `json:"group,omitempty"`
	InGroup *GroupRef  `json:"in_group,omitempty"`
	// Labels are the check's labels (labels:), Alertmanager labels too.
	Labels map[string]string `json:"labels,omitempty"`
	// Flips counts how often every series upgraded, the incident open,
	// for fewer runs than alert.recover_after: a flapping check.
	Flips int `json:"flips,omitempty"`

	Cause   report.Cause `json:"cause"`
	Vendor  string       `json:"vendor,omitempty"`
	Summary string       `json:"summary,omitempty"`
	Hints   []string     `json:"hints,omitempty"`

	// Cells are the matrix, sorted by vantage, cdn before direct.
	Cells []Cell `json:"cells"`
	// Attempt is the telling failing attempt (its headers, body, URL and
	// trace), or for a resolved incident the last one that failed.
	Attempt report.Attempt `json:"attempt"`
	// Variants are the diagnostic attempts of the same run and place.
	Variants []report.Attempt `json:"variants,omitempty"`
	// TraceURL links to the telling attempt's trace; "" for none.
	TraceURL string `json:"trace_url,omitempty"`
	// Notes are lines the message carries as they are: a maintenance
	// window, a silence, a member alone without its fleet store.
	Notes []string `json:"notes,omitempty"`
	// FirstCause, FirstVendor and FirstRoutes are what the incident
	// opened with: the labels of its Alertmanager alert, which must not
	// change while it lasts.
	FirstCause  report.Cause   `json:"first_cause,omitempty"`
	FirstVendor string         `json:"first_vendor,omitempty"`
	FirstRoutes []report.Route `json:"first_routes,omitempty"`
	// AckedBy is who acknowledged the incident (a Slack user id or a
	// name), AckedAt when; "" while nobody did.
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
}

// Notice is a message of its own: a warning, a fleet notice.
type Notice struct {
	// Title is one line ("chat: TLS certificate expires in 5 days").
	Title string   `json:"title"`
	Lines []string `json:"lines,omitempty"`
	// Check is the check it is about; "" for the fleet.
	Check string `json:"check,omitempty"`
	// Good: the notice says something ended well (a member is back), not
	// a warning.
	Good bool `json:"good,omitempty"`
}

// Message is one delivery: what Notify gets. It is JSON because it waits
// in the persisted outbox.
type Message struct {
	// ID is unique and stable across retries.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Channel overrides the notifier's default ("" = default).
	Channel string `json:"channel,omitempty"`
	// Incident is the incident as the message shows it (open, update,
	// reply).
	Incident *Incident `json:"incident,omitempty"`
	// Events are what a reply says, in order (several when coalesced).
	Events []Event `json:"events,omitempty"`
	// Notice is the content of a notice.
	Notice *Notice `json:"notice,omitempty"`
	// Thread is where the incident's root message is (update, reply); nil
	// or empty when it is not addressable (webhook).
	Thread *Delivery `json:"thread,omitempty"`
	// Target names the notifier that delivers it: "" for the primary one
	// (Slack, or the console), else a name under notify:.
	Target string `json:"target,omitempty"`
	// Spacing, for an update, is the shortest time since the incident's
	// last update (0: the store's UpdateSpacing); a group's is
	// group.interval. It is read when queued, not kept.
	Spacing time.Duration `json:"-"`
	// Scope says which notifiers a message is for while groups exist
	// (ScopePrimary, ScopeMember); "" is every notifier of the check.
	Scope Scope `json:"scope,omitempty"`
}

// Scope narrows the notifiers a message goes to while groups exist: the
// primary notifier (Slack, the console) tells a group as one message,
// the others keep one alert, event or page per incident.
type Scope string

const (
	// ScopeGroup: a group's own messages, for the primary notifier and
	// those that take groups (GroupTaker: PagerDuty, webhooks).
	ScopeGroup Scope = "group"
	// ScopePrimary: for the primary notifier alone: a member's pointer to
	// its group, a member's own message again.
	ScopePrimary Scope = "primary"
	// ScopeMember: a member's news, for the notifiers that keep one alert
	// per incident (Alertmanager: its own group_by folds them).
	ScopeMember Scope = "member"
)

// GroupTaker is a notifier that tells a group as one (one PagerDuty
// incident, one webhook event per change) instead of its members.
type GroupTaker interface {
	TakesGroups() bool
}

// Takes says whether the notifier n, as target ("" the primary), gets a
// message of this scope.
func Takes(n Notifier, target string, s Scope) bool {
	groups := target == ""
	if g, ok := n.(GroupTaker); ok && g.TakesGroups() {
		groups = true
	}
	switch s {
	case ScopeGroup:
		return groups
	case ScopePrimary:
		return target == ""
	case ScopeMember:
		return !groups
	}
	return true
}

// Delivery says where a message landed, so that later messages can reply
// in its thread and update it. The zero Delivery means "nowhere
// addressable" (webhook mode).
type Delivery struct {
	// Channel is the channel ID Slack answered with ("console" for Console).
	Channel string `json:"channel,omitempty"`
	// TS is the timestamp of the posted message itself.
	TS string `json:"ts,omitempty"`
}

// Notifier delivers one message with one attempt. Errors are classified
// with RetryAfter and Permanent; a Notifier never retries by itself.
type Notifier interface {
	Notify(ctx context.Context, m Message) (Delivery, error)
}

// thread returns the root of m's thread and whether there is one.
func (m Message) thread() (Delivery, bool) {
	if m.Thread == nil || m.Thread.TS == "" {
		return Delivery{}, false
	}
	return *m.Thread, true
}

// Resolves reports whether a reply closes the incident.
func (m Message) Resolves() bool { return m.tells(EventResolved) }

// tells reports whether a reply carries an event of that kind.
func (m Message) tells(k EventKind) bool {
	return slices.ContainsFunc(m.Events, func(e Event) bool { return e.Kind == k })
}

// AsOpen turns a reply or update of an incident whose own message was never
// posted (it was dropped, or the store lost track of it) into that
// message, as the incident is now: nobody gets a recovery for an incident
// they were never told of.
func AsOpen(m Message, posted bool, view *Incident) (Message, bool) {
	if m.Target != "" || m.Kind == KindOpen || m.Kind == KindNotice || posted || view == nil || m.Thread != nil {
		return m, false
	}
	v := *view
	return Message{ID: m.ID, Kind: KindOpen, Channel: m.Channel, Incident: &v, Target: m.Target}, true
}

// GroupView is what a group's message shows beside the shared cause,
// vendor, summary and hints: how many checks, how many still fail, and the
// first of them by name.
type GroupView struct {
	// Key says what the members share ("cause=cdn_blocked vendor=nginx").
	Key     string `json:"key"`
	Checks  int    `json:"checks"`
	Failing int    `json:"failing"`
	// Pops are the edge locations that answered its failing members.
	Pops []string `json:"pops,omitempty"`
	// FailingNames and AgainNames are the first members still failing and
	// upgrading again, in the order they joined.
	FailingNames []string `json:"failing_names,omitempty"`
	AgainNames   []string `json:"again_names,omitempty"`
	// Link is the status page filtered to the group; "" without
	// status_url.
	Link string `json:"link,omitempty"`
	// Emptied: every member moved to another group or left it.
	Emptied bool `json:"emptied,omitempty"`
	// Changed is when a member last joined, moved, left or recovered: the
	// group's first message waits for its members to settle.
	Changed time.Time `json:"changed,omitzero"`
}

// GroupMember is one check of a group.
type GroupMember struct {
	Check    string `json:"check"`
	Incident string `json:"incident"`
	Open     bool   `json:"open"`
	// Failing is what failed where when it was last told ("403 Forbidden
	// on 2 of 2").
	Failing string `json:"failing,omitempty"`
	// Pop is the edge location that answered it ("" when none said).
	Pop string `json:"pop,omitempty"`
	// Key is the member's own group key now; Away, when it differs from
	// the group's, since when (it leaves after group.wait of it).
	Key  string    `json:"key,omitempty"`
	Away time.Time `json:"away,omitzero"`
}

// GroupRef is a member's pointer to its group.
type GroupRef struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	// Joined is when the member joined: after it opened, its Alertmanager
	// alert changes labels then (group), and the one before ends.
	Joined time.Time `json:"joined,omitzero"`
}
