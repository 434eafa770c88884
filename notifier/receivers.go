package notifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// Selective is a notifier that takes only some kinds of message: the
// monitor does not queue the others for it. Alertmanager and PagerDuty keep
// one alert per incident, so the thread replies (which the next update
// carries anyway) and notices are not theirs.
type Selective interface {
	Wants(Kind) bool
}

// Refresher re-sends the open incidents now and then: Alertmanager
// resolves an alert that is not re-sent.
type Refresher interface {
	Refresh(ctx context.Context, open []Incident) error
}

// AlertmanagerOptions configure NewAlertmanager.
type AlertmanagerOptions struct {
	// URL is the Alertmanager's base URL; basic-auth userinfo is kept out
	// of errors.
	URL        string
	HTTPClient *http.Client
}

// Alertmanager pushes each incident as one alert to /api/v2/alerts, so
// Alertmanager's grouping, inhibition, silences and routing apply. An
// alert's labels are fixed when the incident opens (alertname, check,
// incident, and the route, cause and vendor it opened with), so it stays
// one alert however its cause changes; the current cause, the summary, the
// hints and the trace link are annotations. An open incident's alert ends
// AlertHold after it was last sent; the monitor re-sends it (Refresh) well
// within that, and a resolved one is sent with its end.
type Alertmanager struct {
	url string
	p   *poster
}

// AlertHold is how long an open incident's alert lasts without news.
const AlertHold = 10 * time.Minute

// AlertName is the alertname label of every incident's alert.
const AlertName = "WebSocketHandshakeFailing"

// NewAlertmanager returns an Alertmanager notifier.
func NewAlertmanager(opts AlertmanagerOptions) (*Alertmanager, error) {
	if opts.URL == "" {
		return nil, errorf("alertmanager", "a URL is required")
	}
	return &Alertmanager{url: strings.TrimRight(opts.URL, "/") + "/api/v2/alerts",
		p: newPoster("alertmanager", opts.HTTPClient, opts.URL)}, nil
}

// Wants: the incident's message and its updates.
func (a *Alertmanager) Wants(k Kind) bool { return k == KindOpen || k == KindUpdate }

// Notify sends the incident's alert (ended when the incident resolved).
func (a *Alertmanager) Notify(ctx context.Context, m Message) (Delivery, error) {
	if m.Incident == nil {
		return Delivery{}, nil
	}
	return Delivery{}, a.send(ctx, []Incident{*m.Incident})
}

// Refresh re-sends the alerts of open incidents.
func (a *Alertmanager) Refresh(ctx context.Context, open []Incident) error {
	for len(open) > 0 {
		n := min(len(open), 200)
		if err := a.send(ctx, open[:n]); err != nil {
			return err
		}
		open = open[n:]
	}
	return nil
}

// AMAlert is an alert as Alertmanager's API v2 takes it.
type AMAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// AlertOf is the Alertmanager alert of an incident as it stands.
func AlertOf(inc Incident, now time.Time) AMAlert {
	cause, vendor, routes := inc.FirstCause, inc.FirstVendor, inc.FirstRoutes
	if cause == "" {
		cause, vendor = inc.Cause, inc.Vendor
	}
	if len(routes) == 0 {
		routes = failingRoutes(inc.Cells)
	}
	labels := map[string]string{"alertname": AlertName, "check": inc.Check, "incident": inc.ID,
		"cause": string(cause), "route": strings.Join(routeNames(routes), ",")}
	if vendor != "" {
		labels["vendor"] = vendor
	}
	if inc.InGroup != nil {
		// Alertmanager's own group_by: [group] folds a group's alerts.
		labels["group"] = inc.InGroup.ID
	}
	for k, v := range inc.Labels {
		if _, ours := labels[k]; !ours { // the configuration refuses ours; a stored view is not trusted
			labels[k] = v
		}
	}
	ann := map[string]string{
		"summary":       Headline(inc),
		"description":   inc.Summary,
		"current_cause": string(inc.Cause),
		"where":         failingWhere(inc.Cells),
		"matrix":        Matrix(inc.Cells),
	}
	if inc.Vendor != "" {
		ann["current_vendor"] = inc.Vendor
	}
	if hs := hintsOf(inc.Hints); len(hs) > 0 {
		ann["hints"] = strings.Join(hs, "\n")
	}
	if inc.TraceURL != "" {
		ann["trace_url"] = inc.TraceURL
	}
	if inc.AckedBy != "" {
		ann["acknowledged_by"] = inc.AckedBy
	}
	for k, v := range ann {
		if v == "" {
			delete(ann, k)
		}
	}
	al := AMAlert{Labels: labels, Annotations: ann, StartsAt: inc.Opened.UTC(), EndsAt: now.Add(AlertHold).UTC(), GeneratorURL: inc.TraceURL}
	if inc.State == StateResolved {
		al.EndsAt = inc.Closed.UTC()
		if al.EndsAt.IsZero() {
			al.EndsAt = now.UTC()
		}
	}
	return al
}

func (a *Alertmanager) send(ctx context.Context, incs []Incident) error {
	now := time.Now()
	alerts := make([]AMAlert, 0, len(incs))
	for _, inc := range incs {
		alerts = append(alerts, AlertOf(inc, now))
		if g := inc.InGroup; g != nil && g.Joined.After(inc.Opened) {
			// It was alerted on before it joined, without the group label:
			// that alert ends now rather than lingering for AlertHold.
			before := inc
			before.InGroup = nil
			al := AlertOf(before, now)
			al.EndsAt = now.UTC()
			alerts = append(alerts, al)
		}
	}
	b, err := json.Marshal(alerts)
	if err != nil {
		return errorf("alerts", "encode: %v", err)
	}
	return a.p.post(ctx, "alerts", a.url, nil, b)
}

func failingRoutes(cells []Cell) []report.Route {
	var out []report.Route
	for _, c := range badCells(cells) {
		if !slices.Contains(out, c.Route) {
			out = append(out, c.Route)
		}
	}
	slices.Sort(out)
	return out
}

// PagerDutyOptions configure NewPagerDuty.
type PagerDutyOptions struct {
	RoutingKey string
	// APIURL is the Events API v2 enqueue endpoint.
	APIURL string
	// Severity is the default (critical, error, warning, info);
	// SeverityByCause overrides it by the incident's cause.
	Severity        string
	SeverityByCause map[string]string
	HTTPClient      *http.Client
}

// PagerDuty triggers and resolves one PagerDuty alert per incident (its
// dedup_key is the incident id, whichever regions see it), and re-triggers
// it with the new summary when the incident changes.
type PagerDuty struct {
	opts PagerDutyOptions
	p    *poster
}

// NewPagerDuty returns a PagerDuty notifier.
func NewPagerDuty(opts PagerDutyOptions) (*PagerDuty, error) {
	if opts.RoutingKey == "" || opts.APIURL == "" {
		return nil, errorf("enqueue", "a routing key and an API URL are required")
	}
	if opts.Severity == "" {
		opts.Severity = "critical"
	}
	return &PagerDuty{opts: opts, p: newPoster("pagerduty", opts.HTTPClient, opts.RoutingKey)}, nil
}

// Wants: the incident's message and its updates.
func (p *PagerDuty) Wants(k Kind) bool { return k == KindOpen || k == KindUpdate }

// TakesGroups: a group is one PagerDuty incident (its dedup_key the
// group's id), its members in custom_details.
func (p *PagerDuty) TakesGroups() bool { return true }

// PDEvent is an Events API v2 event.
type PDEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key"`
	Payload     *PDPayload `json:"payload,omitempty"`
	Links       []PDLink   `json:"links,omitempty"`
	Client      string     `json:"client,omitempty"`
}

// PDPayload is a trigger's payload.
type PDPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// PDLink is a link on the alert.
type PDLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// EventOf is the Events API event for an incident as it stands.
func (p *PagerDuty) EventOf(inc Incident) PDEvent {
	ev := PDEvent{RoutingKey: p.opts.RoutingKey, DedupKey: inc.ID, Client: "wscanary"}
	if inc.State == StateResolved || inc.InGroup != nil {
		// A member that joined a group is paged as the group from then
		// on: its own alert ends.
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	sev := p.opts.Severity
	if s, ok := p.opts.SeverityByCause[string(inc.Cause)]; ok {
		sev = s
	}
	source := inc.Check
	if inc.Attempt.URL != "" {
		source = inc.Attempt.URL
	}
	summary := truncate(Headline(inc), 1000) // PagerDuty takes 1,024 characters; a cut must not split one
	details := map[string]any{"incident": inc.ID, "cause": inc.Cause, "where": failingWhere(inc.Cells), "matrix": Matrix(inc.Cells),
		"summary": inc.Summary, "opened": inc.Opened.UTC().Format(time.RFC3339)}
	if inc.Vendor != "" {
		details["vendor"] = inc.Vendor
	}
	if hs := hintsOf(inc.Hints); len(hs) > 0 {
		details["hints"] = hs
	}
	if inc.AckedBy != "" {
		details["acknowledged_by"] = inc.AckedBy
	}
	ev.Payload = &PDPayload{Summary: summary, Source: source, Severity: sev, Timestamp: inc.Opened.UTC().Format(time.RFC3339),
		Component: inc.Check, Group: strings.Join(routeNames(failingRoutes(inc.Cells)), ","), Class: string(inc.Cause), CustomDetails: details}
	if g := inc.Group; g != nil {
		ev.Payload.Source, ev.Payload.Component, ev.Payload.Group = "wscanary", "group", g.Key
		details["checks"], details["failing"] = g.Checks, g.Failing
		details["failing_checks"], details["upgrading_again"] = g.FailingNames, g.AgainNames
		if g.Link != "" {
			ev.Links = append(ev.Links, PDLink{Href: g.Link, Text: "Every check of the group"})
		}
	}
	if inc.TraceURL != "" {
		ev.Links = []PDLink{{Href: inc.TraceURL, Text: "Trace of the failing handshake"}}
	}
	return ev
}

// Notify triggers, re-triggers or resolves the incident's alert.
func (p *PagerDuty) Notify(ctx context.Context, m Message) (Delivery, error) {
	if m.Incident == nil {
		return Delivery{}, nil
	}
	b, err := json.Marshal(p.EventOf(*m.Incident))
	if err != nil {
		return Delivery{}, errorf("enqueue", "encode: %v", err)
	}
	return Delivery{}, p.p.post(ctx, "enqueue", p.opts.APIURL, nil, b)
}

// WebhookOptions configure NewWebhook.
type WebhookOptions struct {
	URL, Secret string
	HTTPClient  *http.Client
}

// Webhook posts every message as JSON (WebhookBody; docs/webhook.md) with
// X-Wscanary-Timestamp and X-Wscanary-Signature: "sha256=" and the hex
// HMAC-SHA256 of "<timestamp>.<body>" under the secret, so the receiver
// can check who sent it and when. X-Wscanary-Id is the message id: a
// message delivered twice (at least once) has the same id.
type Webhook struct {
	opts WebhookOptions
	p    *poster
}

// NewWebhook returns a webhook notifier.
func NewWebhook(opts WebhookOptions) (*Webhook, error) {
	if opts.URL == "" || opts.Secret == "" {
		return nil, errorf("post", "a URL and a secret are required")
	}
	return &Webhook{opts: opts, p: newPoster("webhook", opts.HTTPClient, opts.URL, opts.Secret)}, nil
}

// TakesGroups: a group is one event per change of it (its incident has
// a group object); its members' own messages are not sent.
func (w *Webhook) TakesGroups() bool { return true }

// WebhookVersion is the version of WebhookBody.
const WebhookVersion = 1

// WebhookBody is what a webhook receives.
type WebhookBody struct {
	Version int       `json:"version"`
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind"`
	SentAt  time.Time `json:"sent_at"`
	// Text is the message as plain text (Text).
	Text     string    `json:"text"`
	Incident *Incident `json:"incident,omitempty"`
	Events   []Event   `json:"events,omitempty"`
	Notice   *Notice   `json:"notice,omitempty"`
}

// Sign is the signature header value of body sent at ts.
func Sign(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.", ts)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Notify posts m.
func (w *Webhook) Notify(ctx context.Context, m Message) (Delivery, error) {
	now := time.Now().UTC()
	b, err := json.Marshal(WebhookBody{Version: WebhookVersion, ID: m.ID, Kind: m.Kind, SentAt: now, Text: Text(m),
		Incident: m.Incident, Events: m.Events, Notice: m.Notice})
	if err != nil {
		return Delivery{}, errorf("post", "encode: %v", err)
	}
	ts := now.Unix()
	return Delivery{}, w.p.post(ctx, "post", w.opts.URL, map[string]string{
		"X-Wscanary-Id":        m.ID,
		"X-Wscanary-Timestamp": strconv.FormatInt(ts, 10),
		"X-Wscanary-Signature": Sign(w.opts.Secret, ts, b),
	}, b)
}
