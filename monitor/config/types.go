// Package config loads wscanary.yaml and checks.d/*.yaml strictly: unknown
// keys, bad values and unset ${VAR}s are errors that name file and line, and
// every error is reported, not just the first. Defaults are set in one place
// (defaults.go) so the rest of the program never guesses.
package config

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wscanary/wscanary/monitor/report"
)

// Config is the loaded, validated, defaulted configuration. Treat it as
// immutable: a reload builds a new one.
type Config struct {
	// Path is the main file this was loaded from ("" for an embedded one).
	Path string
	// Vantage names this daemon in alerts and telemetry. WSCANARY_VANTAGE
	// overrides the file; the default is the hostname.
	Vantage string
	// SourceAddress is the local IP the daemon's own vantage dials from; ""
	// for the system's choice.
	SourceAddress string
	// ChecksDir is absolute (resolved against the main file's directory).
	ChecksDir string
	// StateDir defaults to $STATE_DIRECTORY, else /var/lib/wscanary.
	StateDir string
	// Listen is the address of /healthz, /metrics and /status; "" disables.
	// Default 127.0.0.1:9464.
	Listen string
	// DebugListen serves Go's /debug/pprof on its own address, so a daemon
	// in the field can be profiled without exposing the profiler on the
	// main listener; "" (the default) serves none. A host left out means
	// loopback.
	DebugListen string
	// Vantages are the extra egress points, by name.
	Vantages map[string]Vantage
	Slack    Slack
	// TraceURL contains {trace_id}; "" means alerts show the bare id.
	TraceURL string
	// StatusURL is the status page as people reach it; "" for none.
	StatusURL string
	// Client is the client profile of checks that name none (DefaultClient).
	Client string
	// Store is "" for SQLite in StateDir, or a postgres:// URL that a
	// fleet shares.
	Store string
	// History is how long the store keeps what the daemon saw.
	History History
	// Group is how incidents of several checks become one message
	// (group:).
	Group Group
	// Routes give checks without alert.channel a channel by their labels.
	Routes []Route

	// index and dependents answer Check and Dependents (buildIndex); a
	// Config built by hand has neither, and Check searches.
	index      map[string]int
	dependents map[string][]string
	// Maintenance are the windows of every check.
	Maintenance []Window
	// Notify are the notifiers beside Slack (notify:).
	Notify []Notifier
	Checks []Check
}

// Check is the configured check of that name, or nil: the one lookup the
// commands, the daemon and the notifiers' refresh share.
func (c *Config) Check(name string) *Check {
	if i, ok := c.index[name]; ok && i < len(c.Checks) && c.Checks[i].Name == name {
		return &c.Checks[i]
	}
	for i := range c.Checks {
		if c.Checks[i].Name == name {
			return &c.Checks[i]
		}
	}
	return nil
}

// History is how long the store keeps what the daemon saw: every attempt
// for Raw, hourly rollups of them (counts by outcome, status and cause, a
// latency histogram) for Keep. Raw <= Keep.
type History struct {
	Raw  time.Duration
	Keep time.Duration
}

// Dependents are the checks whose alert.depends_on names this one, in
// the configuration's order.
func (c *Config) Dependents(name string) []string { return c.dependents[name] }

// index builds the lookups a loaded configuration answers from: checks by
// name, and who depends on whom.
func (c *Config) buildIndex() {
	c.index = make(map[string]int, len(c.Checks))
	c.dependents = map[string][]string{}
	for i, ch := range c.Checks {
		c.index[ch.Name] = i
		for _, p := range ch.Alert.DependsOn {
			c.dependents[p] = append(c.dependents[p], ch.Name)
		}
	}
}

// Select returns the checks named, in the configuration's order, or every
// check when names is empty; a name no check has is an error.
func (c *Config) Select(names []string) ([]*Check, error) {
	for _, n := range names {
		if c.Check(n) == nil {
			return nil, fmt.Errorf("no check named %q in %s", n, c.ChecksDir)
		}
	}
	var checks []*Check
	for i := range c.Checks {
		if len(names) == 0 || slices.Contains(names, c.Checks[i].Name) {
			checks = append(checks, &c.Checks[i])
		}
	}
	return checks, nil
}

// Vantage is an egress point other than the daemon itself.
type Vantage struct {
	Name string
	// Proxy is socks5://, socks5h:// or http:// (CONNECT); nil if unset.
	Proxy *url.URL
	// SourceAddress is the local IP to bind; "" if unset.
	SourceAddress string
}

// Slack is where alerts go. Either WebhookURL, or Token with Channel.
type Slack struct {
	WebhookURL string
	Token      string
	Channel    string
	// APIURL is the Slack API base ending in "/", "" for slack-go's default.
	APIURL string
	// AppToken (xapp-) opens a Socket Mode connection: the incident
	// messages get buttons (acknowledge, silence, run again). Needs Token.
	AppToken string
	// AllowedUsers (ids or handles) and AllowedGroups (user group ids)
	// may click the buttons; both empty: anyone who sees the message.
	AllowedUsers  []string
	AllowedGroups []string
}

// Allows reports whether the user (id, handle) in groups may click; ok
// when no list is set.
func (s Slack) Allows(id, handle string, groups []string) bool {
	if len(s.AllowedUsers) == 0 && len(s.AllowedGroups) == 0 {
		return true
	}
	for _, u := range s.AllowedUsers {
		if u != "" && (u == id || strings.TrimPrefix(u, "@") == handle) {
			return true
		}
	}
	for _, g := range groups {
		if slices.Contains(s.AllowedGroups, g) {
			return true
		}
	}
	return false
}

// ClientNames are the client profiles a check can be made as
// (report.Clients), the default first.
var ClientNames = names(report.Clients)

// TransportNames are the transports a check can use (report.Transports).
var TransportNames = names(report.Transports)

// names are a vocabulary's words as strings, for messages and the schema.
func names[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// DefaultClient is the profile of a check and a main file that name none.
const DefaultClient = string(report.ClientChrome)

// Enabled reports whether any Slack destination is configured.
func (s Slack) Enabled() bool { return s.WebhookURL != "" || s.Token != "" }

// TLS is the client TLS configuration of a route.
type TLS struct {
	// CAFile is the path it came from, Roots its certificates (read at
	// load); both empty means the system roots.
	CAFile     string
	Roots      *x509.CertPool
	ServerName string
	// InsecureSkipVerify is never the default.
	InsecureSkipVerify bool
}

// Direct is the route around the CDN.
type Direct struct {
	// Address is host:port to dial; Host and SNI stay the URL's.
	Address string
	// TLS overrides the check's TLS for this route when non-nil.
	TLS *TLS
}

// TokenIn says where the credential goes.
type TokenIn string

const (
	TokenInQuery   TokenIn = "query"
	TokenInHeader  TokenIn = "header"
	TokenInCookie  TokenIn = "cookie"
	TokenInMessage TokenIn = "message"
)

// Token is how a check gets its credential. Exactly one of Value, File,
// Command is set. File and Command are read at every run: tokens rotate.
type Token struct {
	Value   string
	File    string
	Command []string
	In      TokenIn
	// Name is the query parameter, cookie or header name. Defaults: query
	// "token", cookie "token", header "Authorization" (sent as "Bearer X").
	Name string
}

// Alert is the check's alert rule.
type Alert struct {
	// On says which attempts count as failing; default
	// [401, 403, rejected_after_open].
	On []AlertOn
	// After is the number of failing runs before alerting; default 1.
	// They are consecutive unless Within is set.
	After int
	// Within, when set ("after: 3 of 5"), makes After a count of the last
	// Within runs of a series: a flapping check opens too. 0 means After
	// consecutive runs.
	Within int
	// RecoverAfter is how many consecutive upgraded runs every series
	// needs before the incident closes; default 1.
	RecoverAfter int
	// MinVantages is how many vantages must agree on a route; default 1.
	MinVantages int
	// Remind repeats an open alert this often; 0 = never.
	Remind time.Duration
	// Channel overrides Slack.Channel.
	Channel string
	// Notify names the notifiers its messages go to ("slack" and names
	// under notify:); empty means all of them.
	Notify []string
	// DependsOn names checks this one depends on: while one of them has an
	// open incident, this check opens none.
	DependsOn []string
}

// Group is the main file's group: section. Incidents that open within
// Wait of each other and share a key (the channel, and By) form a group
// once Min of them are open; the group is one message.
type Group struct {
	// Off keeps one message per incident (group: off).
	Off  bool
	Wait time.Duration
	Min  int
	// By are the key's parts beside the channel: cause, vendor, pop,
	// vantages, route, or label:NAME.
	By []string
	// Interval spaces the updates of a group's message: a storm of
	// members joining or recovering edits it this often at most.
	Interval time.Duration
}

// Defaults of group:.
const (
	DefaultGroupWait     = 30 * time.Second
	DefaultGroupMin      = 3
	DefaultGroupInterval = 10 * time.Second
)

// DefaultGroupBy is group.by unless the main file says otherwise.
func DefaultGroupBy() []string { return []string{"cause", "vendor"} }

// GroupByParts are what group.by may name, beside label:NAME.
var GroupByParts = []string{"cause", "vendor", "pop", "vantages", "route"}

// AlertOn is one entry of alert.on: an HTTP status, a class of statuses,
// an outcome, or any failure at all. The zero value matches nothing.
type AlertOn struct {
	// Status is an HTTP status other than 101; 0 when unset.
	Status int
	// Class is 1-5 for "1xx".."5xx"; 0 when unset.
	Class int
	// Outcome is a failing outcome (refused, rejected_after_open,
	// no_answer); "" when unset.
	Outcome report.Outcome
	// Any matches every outcome but upgraded.
	Any bool
	// Cause matches a run's diagnosed cause (client_blocked, ...).
	Cause report.Cause
}

// Names reports whether alert.on names the cause.
func (a Alert) Names(c report.Cause) bool {
	return c != "" && slices.ContainsFunc(a.On, func(m AlertOn) bool { return m.Cause == c })
}

// Warns reports whether a run of this cause posts a warning rather than
// failing: client_blocked (the users are likely fine) unless alert.on
// names it.
func (a Alert) Warns(c report.Cause) bool {
	return c == report.CauseClientBlocked && !a.Names(c)
}

func (a AlertOn) String() string {
	switch {
	case a.Cause != "":
		return string(a.Cause)
	case a.Any:
		return "any"
	case a.Outcome != "":
		return string(a.Outcome)
	case a.Class != 0:
		return strconv.Itoa(a.Class) + "xx"
	}
	return strconv.Itoa(a.Status)
}

// Fails reports whether an attempt that came to outcome with status
// counts as failing under this rule. An upgrade never does.
//
// cause is the run's diagnosis: a warning-only cause fails only when the
// rule names it; h2_path_broken, gateway_auth_required and
// vantage_proxy_refused fail whatever the status.
func (a Alert) Fails(outcome report.Outcome, status int, cause report.Cause) bool {
	if outcome == report.OutcomeUpgraded || outcome == report.OutcomeNotOffered || outcome == "" {
		return false
	}
	switch {
	case a.Names(cause):
		return true
	case a.Warns(cause):
		return false
	case cause == report.CauseH2PathBroken:
		// Browsers on that path fail, whatever status refused them; a
		// check that does not want it names transports: [http1].
		return true
	case cause == report.CauseGatewayAuthRequired, cause == report.CauseVantageProxyRefused:
		// A sign-in wall (a 302 or a 200 page as often as a 401) and a
		// vantage whose proxy lets nothing out (407, 502): the monitor is
		// blind there, whatever the status.
		return true
	}
	for _, m := range a.On {
		switch {
		case m.Any, m.Outcome == outcome:
			return true
		case outcome == report.OutcomeRefused && m.Status != 0 && m.Status == status:
			return true
		case outcome == report.OutcomeRefused && m.Class != 0 && status/100 == m.Class:
			return true
		}
	}
	return false
}

// Warn are the check's early warnings: messages, never incidents.
type Warn struct {
	// CertExpiry warns when a certificate on any route expires within it;
	// default 14 days, 0 never.
	CertExpiry time.Duration
	// TokenShare warns when a JWT has less than this share of its
	// lifetime left (default 0.1); TokenLeft, when set instead, when less
	// than this time is left.
	TokenShare float64
	TokenLeft  time.Duration
}

// Check is one configured endpoint.
type Check struct {
	Name string
	// URL is ws:// or wss://.
	URL *url.URL
	TLS TLS
	// Direct is nil when the check has no route around the CDN.
	Direct *Direct
	// Schedule is the text as written; Sched the parsed schedule.
	Schedule string
	Sched    cron.Schedule
	// Timeout bounds a whole attempt; default 10s.
	Timeout      time.Duration
	Origin       string
	Headers      map[string]string
	Token        *Token
	Subprotocols []string
	// Client is the client profile (ClientNames); the main file's, else
	// "chrome", when the check sets none. NoTraceHeader drops traceparent.
	Client        string
	NoTraceHeader bool
	// Transports are what the WebSocket goes over: both for wss:// unless
	// the check names some, http1 for ws://.
	Transports []report.Transport
	// Steps are the scripted exchange after open, after the protocol's own
	// session (Protocol, with ProtocolOptions) when one is named. Send and
	// Expect are the one-step form.
	Steps           []Step
	Protocol        string
	ProtocolOptions map[string]string
	Send            string
	// Expect is nil when the check expects nothing.
	Expect *regexp.Regexp
	// Vantages are names: the daemon's own (Config.Vantage) or keys of
	// Config.Vantages. Default: the daemon's own only.
	Vantages []string
	Alert    Alert
	// Labels are the check's own names for itself (team, env): usable in
	// group.by, on the status page and as Alertmanager labels.
	Labels map[string]string
	// NoGroup (group: off) keeps one message per incident of this check.
	NoGroup bool
	Warn    Warn
	// Maintenance are the check's own windows; Config.Maintenance holds
	// for it as well.
	Maintenance []Window
	// File and Line locate the check's definition for messages.
	File string
	Line int
}

// Interval is how often the check runs, judged from two consecutive ticks
// after from; 0 for a schedule that fires once.
func (c *Check) Interval(from time.Time) time.Duration { return Interval(c.Sched, from) }

// Interval is how often a schedule fires, judged from two consecutive
// ticks after from; 0 for nil or a schedule that does not fire twice.
func Interval(s cron.Schedule, from time.Time) time.Duration {
	if d, ok := s.(cron.ConstantDelaySchedule); ok {
		return d.Delay
	}
	if s == nil {
		return 0
	}
	a := s.Next(from)
	b := s.Next(a)
	if a.IsZero() || b.IsZero() {
		return 0
	}
	return b.Sub(a)
}
