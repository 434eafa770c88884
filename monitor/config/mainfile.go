package config

import (
	"net"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// mainDraft is the main file being read.
type mainDraft struct {
	cfg                  *Config
	vantageSet, stateSet bool
}

var mainKeys = section[mainDraft]{
	{"vantage", sString("This daemon's name in alerts and telemetry; WSCANARY_VANTAGE overrides; default: hostname."),
		func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
			d.cfg.Vantage, _ = l.str(file, "vantage", v)
			d.vantageSet = d.cfg.Vantage != ""
		}},
	{"source_address", sString("A local IP address this daemon's own vantage dials from (one egress per region on a shared host)."),
		func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
			d.cfg.SourceAddress, _ = l.str(file, "source_address", v)
			if d.cfg.SourceAddress != "" && net.ParseIP(d.cfg.SourceAddress) == nil {
				l.add(file, v.Line, "source_address: %q is not an IP address", d.cfg.SourceAddress)
			}
		}},
	{"checks_dir", sString("Directory of check files, relative to this file."), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.ChecksDir, _ = l.str(file, "checks_dir", v)
		l.checksDirLine = v.Line
	}},
	{"state_dir", sString("Default: $STATE_DIRECTORY, else /var/lib/wscanary."), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.StateDir, _ = l.str(file, "state_dir", v)
		d.stateSet = d.cfg.StateDir != ""
	}},
	{"listen", sString(`Address of /healthz, /metrics and /status; "" disables.`), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.Listen, _ = l.str(file, "listen", v) // "" disables the listener
		if d.cfg.Listen != "" {
			if _, _, err := net.SplitHostPort(d.cfg.Listen); err != nil {
				l.add(file, v.Line, "listen: %q is not host:port", d.cfg.Listen)
			}
		}
	}},
	{"debug_listen", sString(`Address of Go's /debug/pprof, for profiling in the field; off by default, loopback when the host is left out (":6060").`),
		func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
			addr, _ := l.str(file, "debug_listen", v)
			if addr == "" {
				return
			}
			host, port, err := net.SplitHostPort(addr)
			if err != nil || port == "" {
				l.add(file, v.Line, "debug_listen: %q is not host:port", addr)
				return
			}
			if host == "" {
				host = "127.0.0.1" // never all interfaces by omission
			}
			d.cfg.DebugListen = net.JoinHostPort(host, port)
		}},
	{"vantages", sList(sObject(vantageKeys, ""), "Extra egress points that checks can name."), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		l.list(file, "vantages", v, func(item *yaml.Node) { l.vantage(file, item, d.cfg) })
	}},
	{"slack", sObject(slackKeys, "Where alerts go."), func(l *loader, file string, k, v *yaml.Node, d *mainDraft) {
		l.slackLine = k.Line
		slackKeys.read(l, file, v, &d.cfg.Slack)
	}},
	{"client", sEnum("The client profile of checks that name none: chrome (default), firefox, wscanary.", ClientNames...),
		func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
			d.cfg.Client = l.client(file, "client", v)
		}},
	{"trace_url", sString("Link to a trace, with {trace_id}."), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.TraceURL, _ = l.str(file, "trace_url", v)
	}},
	{"status_url", sString("The status page as people reach it (https://wscanary.example/): a group's message links to it, filtered to the group."), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.StatusURL, _ = l.str(file, "status_url", v)
		if u, err := url.Parse(d.cfg.StatusURL); d.cfg.StatusURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
			l.add(file, v.Line, "status_url: %q is not an http(s) URL", d.cfg.StatusURL)
		}
	}},
	{"store", sString(`"" for SQLite in state_dir, or a postgres:// URL that a fleet shares.`), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.Store, _ = l.str(file, "store", v)
		if err := ParseStore(d.cfg.Store); err != nil {
			l.add(file, v.Line, "store: %v", err)
		}
	}},
	{"notify", sList(sObject(notifierKeys, "A notifier beside Slack.", "name"), "Notifiers beside Slack: alertmanager, pagerduty, webhook."),
		func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
			d.cfg.Notify = l.notifiers(file, v)
		}},
	{"maintenance", windowsSchema(), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.Maintenance = l.windows(file, v)
	}},
	{"routes", sList(sObject(routeKeys, "", "labels", "channel"), "Slack channels by label: a check without alert.channel takes the channel of the first route whose labels it has."),
		func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
			d.cfg.Routes = l.routes(file, v)
		}},
	{"group", groupSchema("Incidents of several checks as one message: off, or {wait, min, by, interval}.", true), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.Group = l.group(file, v)
	}},
	{"history", historySchema(), func(l *loader, file string, _, v *yaml.Node, d *mainDraft) {
		d.cfg.History = l.history(file, v)
	}},
}

// vantageDraft keeps the proxy as written, for the rules on the pair.
type vantageDraft struct {
	v     Vantage
	proxy string
}

var vantageKeys = section[vantageDraft]{
	{"name", sString("The name checks use in vantages:."), func(l *loader, file string, _, v *yaml.Node, d *vantageDraft) {
		d.v.Name, _ = l.str(file, "name", v)
	}},
	{"proxy", sString("http://host:port (CONNECT) or socks5://host:port."), func(l *loader, file string, _, v *yaml.Node, d *vantageDraft) {
		d.proxy, _ = l.str(file, "proxy", v)
		u, err := ParseProxy(d.proxy)
		if err != nil {
			l.add(file, v.Line, "proxy: %v", err)
			return
		}
		d.v.Proxy = u
	}},
	{"source_address", sString("A local IP address to dial from."), func(l *loader, file string, _, v *yaml.Node, d *vantageDraft) {
		d.v.SourceAddress, _ = l.str(file, "source_address", v)
		if net.ParseIP(d.v.SourceAddress) == nil {
			l.add(file, v.Line, "source_address: %q is not an IP address", d.v.SourceAddress)
		}
	}},
}

func (l *loader) vantage(file string, item *yaml.Node, cfg *Config) {
	var d vantageDraft
	vantageKeys.read(l, file, item, &d)
	switch {
	case d.v.Name == "":
		l.add(file, item.Line, "vantage: name is required")
		return
	case d.proxy == "" && d.v.SourceAddress == "":
		l.add(file, item.Line, "vantage %q: set proxy or source_address", d.v.Name)
	case d.proxy != "" && d.v.SourceAddress != "":
		l.add(file, item.Line, "vantage %q: set proxy or source_address, not both", d.v.Name)
	}
	if _, dup := cfg.Vantages[d.v.Name]; dup {
		l.add(file, item.Line, "vantage %q is defined twice", d.v.Name)
	}
	cfg.Vantages[d.v.Name] = d.v
}

var slackKeys = section[Slack]{
	{"webhook_url", sString("An incoming webhook: plain posts."), func(l *loader, file string, _, v *yaml.Node, s *Slack) {
		s.WebhookURL, _ = l.str(file, "webhook_url", v)
		if s.WebhookURL != "" {
			if err := ParseHTTPURL(s.WebhookURL, true); err != nil {
				l.add(file, v.Line, "webhook_url: %v", err) // never echo it: it is a secret
			}
		}
	}},
	{"token", sString("A bot token (xoxb-): threads and updates."), func(l *loader, file string, _, v *yaml.Node, s *Slack) {
		s.Token, _ = l.str(file, "token", v)
	}},
	{"channel", sString("Default channel of the bot token."), func(l *loader, file string, _, v *yaml.Node, s *Slack) {
		s.Channel, _ = l.str(file, "channel", v)
	}},
	{"app_token", sString("An app-level token (xapp-) with connections:write: buttons on incident messages, over Socket Mode."),
		func(l *loader, file string, _, v *yaml.Node, s *Slack) {
			s.AppToken, _ = l.str(file, "app_token", v)
			if s.AppToken != "" && !strings.HasPrefix(s.AppToken, "xapp-") {
				l.add(file, v.Line, "slack.app_token: an app-level token starts with xapp- (the bot token goes in token)")
			}
		}},
	{"allowed_users", sList(sString("A Slack user id (U...) or handle."), "Who may click the buttons; unset: anyone in the channel."),
		func(l *loader, file string, _, v *yaml.Node, s *Slack) {
			s.AllowedUsers = l.strings(file, "slack.allowed_users", v)
		}},
	{"allowed_groups", sList(sString("A Slack user group id (S...)."),
		"User groups whose members may click the buttons (needs the usergroups:read scope); with allowed_users, either admits."),
		func(l *loader, file string, _, v *yaml.Node, s *Slack) {
			s.AllowedGroups = l.strings(file, "slack.allowed_groups", v)
			for _, g := range s.AllowedGroups {
				if !strings.HasPrefix(g, "S") {
					l.add(file, v.Line, "slack.allowed_groups: %q is not a user group id (S...): handles of groups cannot be checked", g)
				}
			}
		}},
	{"api_url", sString("Slack API base; tests and proxies set it."), func(l *loader, file string, _, v *yaml.Node, s *Slack) {
		s.APIURL, _ = l.str(file, "api_url", v)
		if s.APIURL == "" {
			return
		}
		if err := ParseHTTPURL(s.APIURL, false); err != nil {
			l.add(file, v.Line, "slack.api_url: %v", err)
			return
		}
		if !strings.HasSuffix(s.APIURL, "/") {
			s.APIURL += "/"
		}
	}},
}

// main parses the main file into a Config with its defaults applied.
func (l *loader) main(file string, b []byte) *Config {
	l.mainFile = file
	d := mainDraft{cfg: &Config{Path: file, Listen: DefaultListen, Vantages: map[string]Vantage{}, History: DefaultHistory(), Group: DefaultGroup()}}
	if root := l.parse(file, b); root != nil {
		mainKeys.read(l, file, root, &d)
	}
	cfg := d.cfg
	if env, ok := l.lookup("WSCANARY_VANTAGE"); ok && env != "" {
		cfg.Vantage = env
	} else if !d.vantageSet {
		cfg.Vantage = defaultVantage(l.lookup)
	}
	if !d.stateSet {
		cfg.StateDir = defaultStateDir(l.lookup)
	}
	return cfg
}
