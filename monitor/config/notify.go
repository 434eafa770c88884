package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Notifier is one destination under notify: beside Slack. Exactly one of
// Alertmanager, PagerDuty and Webhook is set.
type Notifier struct {
	// Name is what a check's alert.notify lists; "slack" is the slack:
	// section (or the console without it) and cannot be taken.
	Name         string
	Alertmanager *Alertmanager
	PagerDuty    *PagerDuty
	Webhook      *Webhook
	File         string
	Line         int
}

// Alertmanager receives each incident as one alert (POST /api/v2/alerts).
type Alertmanager struct {
	// URL is the Alertmanager's base URL (http://127.0.0.1:9093); it may
	// carry basic-auth credentials.
	URL string
}

// PagerDuty is the Events API v2.
type PagerDuty struct {
	RoutingKey string
	// APIURL is the enqueue endpoint; default the public one.
	APIURL string
	// Severity is the default event severity (critical, error, warning,
	// info); default critical. SeverityByCause overrides it per cause.
	Severity        string
	SeverityByCause map[string]string
}

// Webhook posts each message as JSON, signed with an HMAC of Secret.
type Webhook struct {
	URL    string
	Secret string
}

// DefaultPagerDutyURL is the Events API v2 endpoint.
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// PrimaryNotifier names the slack: section in alert.notify.
const PrimaryNotifier = "slack"

var pdSeverities = []string{"critical", "error", "warning", "info"}

type notifierDraft struct {
	n     Notifier
	kinds int
}

var notifierKeys = section[notifierDraft]{
	{"name", sPattern(`^[a-z0-9_-]+$`, "What alert.notify calls it."), func(l *loader, file string, _, v *yaml.Node, d *notifierDraft) {
		d.n.Name, _ = l.str(file, "notify.name", v)
	}},
	{"alertmanager", sObject(alertmanagerKeys, "Push each incident to Alertmanager's /api/v2/alerts.", "url"), func(l *loader, file string, _, v *yaml.Node, d *notifierDraft) {
		d.kinds++
		d.n.Alertmanager = &Alertmanager{}
		alertmanagerKeys.read(l, file, v, d.n.Alertmanager)
		if d.n.Alertmanager.URL == "" {
			l.add(file, v.Line, "alertmanager: url is required")
		}
	}},
	{"pagerduty", sObject(pagerdutyKeys, "PagerDuty Events API v2: trigger and resolve, one dedup_key per incident.", "routing_key"),
		func(l *loader, file string, _, v *yaml.Node, d *notifierDraft) {
			d.kinds++
			d.n.PagerDuty = &PagerDuty{APIURL: DefaultPagerDutyURL, Severity: "critical"}
			pagerdutyKeys.read(l, file, v, d.n.PagerDuty)
			if d.n.PagerDuty.RoutingKey == "" {
				l.add(file, v.Line, "pagerduty: routing_key is required")
			}
		}},
	{"webhook", sObject(webhookKeys, "POST every message as JSON, signed with HMAC-SHA256.", "url", "secret"), func(l *loader, file string, _, v *yaml.Node, d *notifierDraft) {
		d.kinds++
		d.n.Webhook = &Webhook{}
		webhookKeys.read(l, file, v, d.n.Webhook)
		if d.n.Webhook.URL == "" || d.n.Webhook.Secret == "" {
			l.add(file, v.Line, "webhook: url and secret are required (the receiver verifies the signature)")
		}
	}},
}

var alertmanagerKeys = section[Alertmanager]{
	{"url", sString("Base URL, e.g. http://127.0.0.1:9093."), func(l *loader, file string, _, v *yaml.Node, a *Alertmanager) {
		a.URL, _ = l.str(file, "alertmanager.url", v)
		if a.URL != "" {
			if err := ParseHTTPURL(a.URL, false); err != nil {
				l.add(file, v.Line, "alertmanager.url: %v", err)
			}
		}
	}},
}

var pagerdutyKeys = section[PagerDuty]{
	{"routing_key", sString("The integration's routing key, usually ${PAGERDUTY_ROUTING_KEY}."), func(l *loader, file string, _, v *yaml.Node, p *PagerDuty) {
		p.RoutingKey, _ = l.str(file, "pagerduty.routing_key", v)
	}},
	{"api_url", sString("Events API endpoint; tests and proxies set it."), func(l *loader, file string, _, v *yaml.Node, p *PagerDuty) {
		p.APIURL, _ = l.str(file, "pagerduty.api_url", v)
		if err := ParseHTTPURL(p.APIURL, false); err != nil {
			l.add(file, v.Line, "pagerduty.api_url: %v", err)
		}
	}},
	{"severity", sEnum("Default severity; default critical.", pdSeverities...), func(l *loader, file string, _, v *yaml.Node, p *PagerDuty) {
		p.Severity, _ = l.str(file, "pagerduty.severity", v)
		if !slices.Contains(pdSeverities, p.Severity) {
			l.add(file, v.Line, "pagerduty.severity: %q is not one of %s", p.Severity, strings.Join(pdSeverities, ", "))
		}
	}},
	{"severity_by_cause", sMap("Severity per cause, e.g. {token_expired: warning}."), func(l *loader, file string, _, v *yaml.Node, p *PagerDuty) {
		p.SeverityByCause = l.stringMap(file, "pagerduty.severity_by_cause", v)
		for c, s := range p.SeverityByCause {
			if !slices.Contains(pdSeverities, s) {
				l.add(file, v.Line, "pagerduty.severity_by_cause.%s: %q is not one of %s", c, s, strings.Join(pdSeverities, ", "))
			}
		}
	}},
}

var webhookKeys = section[Webhook]{
	{"url", sString("Where to POST."), func(l *loader, file string, _, v *yaml.Node, w *Webhook) {
		w.URL, _ = l.str(file, "webhook.url", v)
		if w.URL != "" {
			if err := ParseHTTPURL(w.URL, true); err != nil {
				l.add(file, v.Line, "webhook.url: %v", err)
			}
		}
	}},
	{"secret", sString("HMAC-SHA256 key of the X-Wscanary-Signature header, usually ${WEBHOOK_SECRET}."), func(l *loader, file string, _, v *yaml.Node, w *Webhook) {
		w.Secret, _ = l.str(file, "webhook.secret", v)
	}},
}

// notifiers reads the notify: list.
func (l *loader) notifiers(file string, v *yaml.Node) []Notifier {
	var out []Notifier
	l.list(file, "notify", v, func(item *yaml.Node) {
		d := notifierDraft{n: Notifier{File: file, Line: item.Line}}
		notifierKeys.read(l, file, item, &d)
		switch {
		case d.n.Name == "":
			l.add(file, item.Line, "notify: name is required")
		case d.n.Name == PrimaryNotifier:
			l.add(file, item.Line, "notify: %q names the slack: section; pick another name", PrimaryNotifier)
		case slices.ContainsFunc(out, func(o Notifier) bool { return o.Name == d.n.Name }):
			l.add(file, item.Line, "notify: %q is defined twice", d.n.Name)
		}
		if d.kinds != 1 {
			l.add(file, item.Line, "notify %q: set exactly one of alertmanager, pagerduty or webhook", d.n.Name)
		}
		out = append(out, d.n)
	})
	return out
}

// checkNotify validates alert.notify names against the notify: section.
func checkNotify(cfg *Config, l *loader) {
	names := []string{PrimaryNotifier}
	for _, n := range cfg.Notify {
		if n.Name != "" && !slices.Contains(names, n.Name) {
			names = append(names, n.Name)
		}
	}
	for _, c := range cfg.Checks {
		for _, n := range c.Alert.Notify {
			if !slices.Contains(names, n) {
				l.add(c.File, c.Line, "alert.notify: %q is not %s", n, fmt.Sprintf("one of %s (notify: in %s)", strings.Join(names, ", "), l.mainFile))
			}
		}
	}
}

// Targets are the notifiers a check's messages go to: alert.notify, or
// every one configured. "" is the slack: section (or the console).
func (c *Check) Targets(cfg *Config) []string {
	if len(c.Alert.Notify) == 0 {
		out := []string{""}
		for _, n := range cfg.Notify {
			out = append(out, n.Name)
		}
		return out
	}
	var out []string
	for _, n := range c.Alert.Notify {
		if n == PrimaryNotifier {
			n = ""
		}
		out = append(out, n)
	}
	return out
}
