// Package notifier tells people that a WebSocket handshake series changed:
// an alert when it enters 401/403, a change between two alerting statuses, a
// reminder while it stays there, and a recovery when it is back to 101.
//
// The monitor builds an Event (pure data, persisted in its outbox) and hands
// it to a Notifier. A Notifier makes exactly one attempt per call; retries,
// backoff and the persisted queue belong to the monitor's delivery loop, which
// asks RetryAfter and Permanent how to treat an error.
//
// Two notifiers ship here: Slack (a bot token with threads and updates, or an
// incoming webhook) and Console (for the demo and dry runs). The message is
// built by pure functions (Blocks, Resolved, Text) tested apart from sending.
//
// Everything an Event carries has been redacted by the prober already; the
// Slack notifier additionally keeps its own secrets (the bot token, the webhook
// URL) out of the errors it returns and the logs it writes.
package notifier

import (
	"context"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// Kind of event.
type Kind string

const (
	// KindAlert: the series entered an alerting status (usually 101 -> 403).
	KindAlert Kind = "alert"
	// KindRecovery: the series is back to the expected 101.
	KindRecovery Kind = "recovery"
	// KindChange: the series moved between two alerting statuses (401 -> 403).
	KindChange Kind = "change"
	// KindReminder: the alert is still open (alert.remind).
	KindReminder Kind = "reminder"
)

// Event is everything a message needs. The monitor builds it; it is pure data
// and JSON-serialisable, because it waits in a persisted outbox until it is
// delivered. Every string in it is already redacted.
type Event struct {
	// ID is unique and stable across retries of the same event.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`

	Check   string       `json:"check"`
	Vantage string       `json:"vantage"`
	Route   report.Route `json:"route"`

	// OldStatus -> NewStatus is the transition (0 = no HTTP answer).
	OldStatus int `json:"old_status"`
	NewStatus int `json:"new_status"`

	// Since is when the series entered NewStatus (alert, change, reminder) or
	// when the alert opened (recovery).
	Since time.Time `json:"since"`
	// At is when the run that produced this event happened. Relative times in
	// the message ("12m ago") are measured from At, so the builders stay pure.
	At time.Time `json:"at"`

	Diagnosis report.Diagnosis `json:"diagnosis"`
	// Attempt is this series' configured attempt from the run (redacted).
	Attempt report.Attempt `json:"attempt"`
	// Others are the other routes' and vantages' configured attempts from the
	// same run (diagnostic variants are shown with their variant name).
	Others []report.Attempt `json:"others,omitempty"`

	// TraceURL links to the trace; "" for none. The caller formats
	// trace_url with the trace id.
	TraceURL string `json:"trace_url,omitempty"`
	// Channel overrides the notifier's default channel ("" = default).
	Channel string `json:"channel,omitempty"`

	// Thread is where the alert was posted (a Delivery returned earlier), for
	// recovery, change and reminder. nil or an empty TS means "no thread":
	// the event is posted as a plain message.
	Thread *Delivery `json:"thread,omitempty"`
	// Alert is, optionally, the event that opened the alert. When a recovery
	// carries it, the updated alert message keeps the alert's facts (cause,
	// headers, body) under its RESOLVED header; without it the update shows
	// what the recovery itself knows. Only its facts are used, never its
	// Thread or Alert.
	Alert *Event `json:"alert,omitempty"`
}

// Delivery says where a message landed, so that later events can reply in its
// thread and update it. The zero Delivery means "nowhere addressable" (webhook
// mode).
type Delivery struct {
	// Channel is the channel ID Slack answered with ("console" for Console).
	Channel string `json:"channel,omitempty"`
	// TS is the timestamp of the posted message itself.
	TS string `json:"ts,omitempty"`
	// ThreadTS is set when the message is a reply: the timestamp of the
	// thread's root (the alert).
	ThreadTS string `json:"thread_ts,omitempty"`
}

// Root is the Delivery of the thread's root message: the alert that later
// events reply to and update. For a message that is not a reply it is d.
// Storing any Delivery of a thread is enough; notifiers always use its Root.
func (d Delivery) Root() Delivery {
	if d.ThreadTS != "" {
		return Delivery{Channel: d.Channel, TS: d.ThreadTS}
	}
	return Delivery{Channel: d.Channel, TS: d.TS}
}

// Notifier delivers one event with one attempt. Errors are classified with
// RetryAfter and Permanent; a Notifier never retries by itself.
type Notifier interface {
	Notify(ctx context.Context, ev Event) (Delivery, error)
}

// thread returns the root of ev's thread and whether there is one.
func (ev Event) thread() (Delivery, bool) {
	if ev.Thread == nil {
		return Delivery{}, false
	}
	r := ev.Thread.Root()
	return r, r.TS != ""
}
