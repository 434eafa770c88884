package config

import (
	"errors"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/wscanary/wscanary/monitor/protocol"
	"github.com/wscanary/wscanary/monitor/report"
)

// checkDraft is a check being read, with the lines that whole-check rules
// point at.
type checkDraft struct {
	c                                                            Check
	urlLine, sendLine, minVantLine, transportsLine, protocolLine int
}

var checkKeys = section[checkDraft]{
	{"name", sPattern(`^[A-Za-z0-9._-]+$`, "Unique across checks.d."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Name, _ = l.str(file, "name", v)
		if err := CheckName(d.c.Name); err != nil {
			l.add(file, v.Line, "name: %v", err)
		}
	}},
	{"url", sPattern(`^wss?://`, "ws:// or wss:// URL, as browsers open it."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.urlLine = v.Line
		s, ok := l.str(file, "url", v)
		if !ok {
			return
		}
		u, err := ParseCheckURL(s)
		if err != nil {
			l.add(file, v.Line, "url: %v", err)
			return
		}
		d.c.URL = u
	}},
	{"tls", sRef("tls"), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		tlsKeys.read(l, file, v, &d.c.TLS)
	}},
	{"direct", sObject(directKeys, "The route around the CDN: dial address, keep Host and SNI of url.", "address"),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			d.c.Direct = &Direct{}
			directKeys.read(l, file, v, d.c.Direct)
			if d.c.Direct.Address == "" {
				l.add(file, v.Line, "direct: address is required")
			}
		}},
	{"schedule", sString(`Cron expression (5 fields) or descriptor such as "@every 30s".`), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Schedule, _ = l.str(file, "schedule", v)
		sched, err := ParseSchedule(d.c.Schedule, l.now())
		switch {
		case errors.Is(err, ErrNeverFires):
			l.add(file, v.Line, "schedule: %q %v", d.c.Schedule, err)
		case errors.As(err, new(SyntaxError)):
			l.add(file, v.Line, "schedule: %q: %v (use 5 cron fields or a descriptor like \"@every 30s\")", d.c.Schedule, err)
		case err != nil:
			l.add(file, v.Line, "schedule: %q: %v", d.c.Schedule, err)
		default:
			d.c.Sched = sched
		}
	}},
	{"timeout", sString("Bound on a whole attempt, a Go duration. Default 10s, at most 1m."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		if t, ok := l.duration(file, "timeout", v); ok {
			if t > MaxTimeout {
				l.add(file, v.Line, "timeout: %s is more than the maximum of %s", v.Value, MaxTimeout)
				return
			}
			d.c.Timeout = t
		}
	}},
	{"origin", sString("Origin header; omitted means none, like curl."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Origin, _ = l.str(file, "origin", v)
	}},
	{"headers", sMap("Extra request headers. Their values are treated as secrets."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Headers = l.stringMap(file, "headers", v)
	}},
	{"token", tokenSchema(), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Token = l.token(file, v)
	}},
	{"subprotocols", sList(schema{"type": "string"}, "Subprotocols to offer."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Subprotocols = l.strings(file, "subprotocols", v)
	}},
	{"client", sEnum("The client profile the handshake is made as: chrome (default, or the main file's client), firefox, wscanary.", ClientNames...),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			d.c.Client = l.client(file, "client", v)
		}},
	{"transports", sList(schema{"enum": TransportNames}, "What the WebSocket goes over: http1 (the Upgrade) and, for wss://, http2 (RFC 8441 extended CONNECT, which browsers use on an HTTP/2 connection that offers it). Default both for wss://, [http1] for ws://; each costs one handshake per vantage and route."),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			d.transportsLine = v.Line
			l.list(file, "transports", v, func(item *yaml.Node) {
				s, ok := l.str(file, "transports", item)
				switch {
				case !ok:
				case !slices.Contains(TransportNames, s):
					l.add(file, item.Line, "transports: %q is not a transport (%s)", s, strings.Join(TransportNames, ", "))
				case slices.Contains(d.c.Transports, report.Transport(s)):
					l.add(file, item.Line, "transports: %q is listed twice", s)
				default:
					d.c.Transports = append(d.c.Transports, report.Transport(s))
				}
			})
			if len(v.Content) == 0 && v.Kind == yaml.SequenceNode {
				l.add(file, v.Line, "transports: an empty list makes no attempt; name http1, http2 or both")
			}
		}},
	{"trace_header", sBool("Send traceparent (the one header added to a browser's); false for endpoints that judge unknown headers. Default true."),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			on, ok := l.boolean(file, "trace_header", v)
			d.c.NoTraceHeader = ok && !on
		}},
	{"steps", stepsSchema(), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Steps = l.steps(file, v)
	}},
	{"protocol", sEnum("The application protocol after the upgrade: its session opens first (with the credential where it carries one), and its refusal is read in its own words; steps: run after it.", protocol.Names...),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			d.protocolLine = v.Line
			d.c.Protocol = l.protocolName(file, v)
		}},
	{"protocol_options", sMap("The protocol's options: socket.io namespace; graphql-ws payload (connection_init's, a JSON object, {token} replaced); mqtt username, client_id, version (3.1.1 or 5); stomp login, host, header; actioncable channel, params; phoenix topic, payload; signalr negotiate (true or false)."),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			d.c.ProtocolOptions = l.stringMap(file, "protocol_options", v)
		}},
	{"send", sString("Message sent after open; {token} is replaced with in: message."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.sendLine = v.Line
		d.c.Send, _ = l.str(file, "send", v)
	}},
	{"expect", sString("Regular expression the first reply must match."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		s, ok := l.str(file, "expect", v)
		if !ok {
			return
		}
		re, err := ParseExpect(s)
		if err != nil {
			l.add(file, v.Line, "expect: %v", err)
			return
		}
		d.c.Expect = re
	}},
	{"vantages", sList(schema{"type": "string"}, "Default: this daemon's own vantage."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Vantages = l.strings(file, "vantages", v)
		for _, name := range d.c.Vantages {
			l.vantageRef = append(l.vantageRef, vantageRef{file: file, name: name, line: v.Line})
		}
	}},
	{"alert", sObject(alertKeys, "When the check opens an incident."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		alertKeys.read(l, file, v, d)
	}},
	{"maintenance", windowsSchema(), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Maintenance = l.windows(file, v)
	}},
	{"warn", sObject(warnKeys, "Early warnings: a message when each starts, never an incident."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		warnKeys.read(l, file, v, &d.c.Warn)
	}},
	{"labels", sMap("The check's labels (team: payments): usable in group.by as label:NAME, on the status page (?label=team=payments) and as Alertmanager labels."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Labels = l.stringMap(file, "labels", v)
		for k := range d.c.Labels {
			if err := LabelName(k); err != nil {
				l.add(file, v.Line, "labels: %v", err)
			}
		}
	}},
	{"group", groupSchema("off: this check's incidents are never part of a group.", false), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		if v.Kind != yaml.ScalarNode || !isOff(v.Value) {
			l.add(file, v.Line, "group: a check can only say off (group: is set in the main file)")
			return
		}
		d.c.NoGroup = true
	}},
}

var warnKeys = section[Warn]{
	{"cert_expiry", sString("Warn when a certificate on any route expires within this (14d, 36h); default 14d."), func(l *loader, file string, _, v *yaml.Node, w *Warn) {
		w.CertExpiry, _ = l.days(file, "warn.cert_expiry", v)
	}},
	{"token_expiry", sString("Warn when the JWT has less than this share of its lifetime (10%) or this time (2h) left; default 10%."),
		func(l *loader, file string, _, v *yaml.Node, w *Warn) {
			s, ok := l.str(file, "warn.token_expiry", v)
			if !ok {
				return
			}
			share, left, err := ParseTokenExpiry(s)
			if err != nil {
				l.add(file, v.Line, "warn.token_expiry: %v", err)
				return
			}
			w.TokenShare, w.TokenLeft = share, left
		}},
}

var tlsKeys = section[TLS]{
	{"ca_file", sString("PEM file of CA certificates to trust, read at load."), func(l *loader, file string, _, v *yaml.Node, t *TLS) {
		t.CAFile, _ = l.str(file, "ca_file", v)
		pool, err := readCA(t.CAFile)
		if err != nil {
			l.add(file, v.Line, "ca_file: %v", err)
		}
		t.Roots = pool
	}},
	{"server_name", sString("TLS server name to verify instead of the URL's host."), func(l *loader, file string, _, v *yaml.Node, t *TLS) {
		t.ServerName, _ = l.str(file, "server_name", v)
	}},
	{"insecure_skip_verify", sBool("Do not verify the certificate. Never the default."), func(l *loader, file string, _, v *yaml.Node, t *TLS) {
		t.InsecureSkipVerify, _ = l.boolean(file, "insecure_skip_verify", v)
	}},
}

var directKeys = section[Direct]{
	{"address", sString("host:port of the origin."), func(l *loader, file string, _, v *yaml.Node, d *Direct) {
		d.Address, _ = l.str(file, "address", v)
		if err := CheckAddress(d.Address); err != nil {
			l.add(file, v.Line, "direct.address: %v", err)
		}
	}},
	{"tls", sRef("tls"), func(l *loader, file string, _, v *yaml.Node, d *Direct) {
		t := TLS{}
		tlsKeys.read(l, file, v, &t)
		d.TLS = &t
	}},
}

// tokenDraft counts the sources set: exactly one is allowed.
type tokenDraft struct {
	t       Token
	sources int
}

var tokenKeys = section[tokenDraft]{
	{"value", sString("The credential itself, usually ${VAR}."), func(l *loader, file string, _, v *yaml.Node, d *tokenDraft) {
		d.t.Value, _ = l.str(file, "value", v)
		d.sources++
	}},
	{"file", sString("Read at every run."), func(l *loader, file string, _, v *yaml.Node, d *tokenDraft) {
		d.t.File, _ = l.str(file, "file", v)
		d.sources++
	}},
	{"command", schema{"type": "array", "items": schema{"type": "string"}, "minItems": 1, "description": "Run at every run; stdout is the token."},
		func(l *loader, file string, _, v *yaml.Node, d *tokenDraft) {
			d.t.Command = l.strings(file, "command", v)
			d.sources++
			if len(d.t.Command) == 0 {
				l.add(file, v.Line, "token.command: needs at least the program")
			}
		}},
	{"in", sEnum("Default query.", "query", "header", "cookie", "message"), func(l *loader, file string, _, v *yaml.Node, d *tokenDraft) {
		s, _ := l.str(file, "in", v)
		in, err := ParseTokenIn(s)
		if err != nil {
			l.add(file, v.Line, "token.in: %v", err)
		}
		d.t.In = in
	}},
	{"name", sString("Parameter, cookie or header name. Defaults: token, token, Authorization (Bearer)."), func(l *loader, file string, _, v *yaml.Node, d *tokenDraft) {
		d.t.Name, _ = l.str(file, "name", v)
	}},
}

func tokenSchema() schema {
	s := sObject(tokenKeys, "A credential: exactly one of value, file, command.")
	s["oneOf"] = []schema{{"required": []string{"value"}}, {"required": []string{"file"}}, {"required": []string{"command"}}}
	return s
}

func (l *loader) token(file string, v *yaml.Node) *Token {
	d := tokenDraft{t: Token{In: TokenInQuery}}
	tokenKeys.read(l, file, v, &d)
	if d.sources != 1 {
		l.add(file, v.Line, "token: set exactly one of value, file or command")
	}
	if d.t.Name == "" {
		d.t.Name = defaultTokenName(d.t.In)
	}
	return &d.t
}

var alertKeys = section[checkDraft]{
	{"on", sList(schema{"oneOf": []schema{
		{"type": "integer", "minimum": 100, "maximum": 599},
		{"enum": append([]string{"1xx", "2xx", "3xx", "4xx", "5xx", "refused", "rejected_after_open", "no_answer", "any"}, alertCauses()...)},
	}}, "What fails: statuses, classes (4xx), outcomes (refused, rejected_after_open, no_answer), any, or causes (client_blocked opens an incident only when named). Default [401, 403, rejected_after_open]."),
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			if v.Kind != yaml.SequenceNode {
				l.add(file, v.Line, "alert.on: expected a list of statuses, classes or outcomes")
				return
			}
			d.c.Alert.On = nil
			for _, item := range v.Content {
				s, ok := l.str(file, "alert.on", item)
				if !ok {
					continue
				}
				on, err := ParseAlertOn(s)
				if err != nil {
					l.add(file, item.Line, "alert.on: %v", err)
					continue
				}
				d.c.Alert.On = append(d.c.Alert.On, on)
			}
		}},
	{"after", schema{"description": "Failing runs before an incident opens: N consecutive runs, or \"X of Y\" (X of a series' last Y runs, Y at most 64). Default 1.",
		"oneOf": []schema{{"type": "integer", "minimum": 1}, {"type": "string", "pattern": `^\s*[1-9][0-9]*\s+of\s+[1-9][0-9]*\s*$`}}},
		func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
			if v.Kind == yaml.ScalarNode && strings.Contains(v.Value, "of") {
				x, y, err := ParseXOfY(v.Value)
				if err != nil {
					l.add(file, v.Line, "alert.after: %v", err)
					return
				}
				d.c.Alert.After, d.c.Alert.Within = x, y
				return
			}
			if n, ok := l.atLeastOne(file, "alert.after", v); ok {
				d.c.Alert.After = n
			}
		}},
	{"recover_after", sInt(1, "Consecutive upgraded runs of every series before an open incident closes. Default 1."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		if n, ok := l.atLeastOne(file, "alert.recover_after", v); ok {
			d.c.Alert.RecoverAfter = n
		}
	}},
	{"min_vantages", sInt(1, "Vantages (fleet-wide) that must fail before an incident opens. Default 1."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.minVantLine = v.Line
		if n, ok := l.atLeastOne(file, "alert.min_vantages", v); ok {
			d.c.Alert.MinVantages = n
		}
	}},
	{"remind", sString("Remind in the incident's thread this often while it lasts (Go duration). Default never."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Alert.Remind, _ = l.duration(file, "alert.remind", v)
	}},
	{"channel", sString("Overrides slack.channel."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Alert.Channel, _ = l.str(file, "alert.channel", v)
	}},
	{"notify", sList(schema{"type": "string"}, "Notifiers of this check: slack and names under notify:. Default all."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Alert.Notify = l.strings(file, "alert.notify", v)
	}},
	{"depends_on", sList(schema{"type": "string"}, "Checks this one depends on: while one of them has an open incident, this check opens none."), func(l *loader, file string, _, v *yaml.Node, d *checkDraft) {
		d.c.Alert.DependsOn = l.strings(file, "alert.depends_on", v)
	}},
}

// checks parses one checks.d file.
func (l *loader) checks(file string, b []byte) []Check {
	root := l.parse(file, b)
	if root == nil {
		return nil
	}
	var out []Check
	fileKeys := section[[]Check]{{"checks", nil, func(l *loader, file string, _, v *yaml.Node, out *[]Check) {
		if v.Kind != yaml.SequenceNode {
			l.add(file, v.Line, "checks: expected a list")
			return
		}
		for _, item := range v.Content {
			if c, ok := l.check(file, item); ok {
				*out = append(*out, c)
			}
		}
	}}}
	fileKeys.read(l, file, root, &out)
	return out
}

// check reads one check and applies the rules that span its keys.
func (l *loader) check(file string, n *yaml.Node) (Check, bool) {
	d := checkDraft{c: Check{File: file, Line: n.Line, Timeout: DefaultTimeout,
		Alert: Alert{On: DefaultAlertOn(), After: DefaultAfter, RecoverAfter: 1, MinVantages: DefaultMinVant}, Warn: DefaultWarn()}}
	before := l.count()
	checkKeys.read(l, file, n, &d)
	c := &d.c
	if c.Name == "" {
		l.add(file, n.Line, "check: name is required")
	} else if prev, dup := l.checkAt[c.Name]; dup {
		l.add(file, n.Line, "check %q is already defined at %s", c.Name, prev)
	} else {
		l.checkAt[c.Name] = fmtLine(file, n.Line)
	}
	if c.URL == nil && d.urlLine == 0 {
		l.add(file, n.Line, "check %q: url is required", c.Name)
	}
	if c.Schedule == "" {
		l.add(file, n.Line, "check %q: schedule is required", c.Name)
	}
	carried := false
	if c.Protocol != "" || c.ProtocolOptions != nil {
		line := d.protocolLine
		if line == 0 {
			line = n.Line
		}
		if c.Protocol == "" {
			l.add(file, line, "check %q: protocol_options without protocol", c.Name)
		} else if sess, err := protocol.Open(c.Protocol, c.ProtocolOptions, c.Token != nil && c.Token.In == TokenInMessage); err != nil {
			l.add(file, line, "check %q: %v", c.Name, err)
		} else {
			carried = sess.CarriesToken
		}
	}
	if len(c.Steps) > 0 && (c.Send != "" || c.Expect != nil) {
		l.add(file, c.Steps[0].Line, "check %q: steps: and send:/expect: both set; send and expect are the one-step form, put them in a step", c.Name)
	}
	if c.Token != nil && !carried {
		sends := c.Send
		for _, st := range c.Steps {
			sends += st.Send
		}
		if err := CheckMessageToken(c.Token.In, sends); err != nil {
			line := d.sendLine
			if line == 0 {
				line = n.Line
			}
			l.add(file, line, "check %q: %v", c.Name, err)
		}
	}
	tls := c.URL != nil && c.URL.Scheme == "wss"
	switch {
	case c.Transports == nil && tls:
		c.Transports = slices.Clone(report.Transports)
	case c.Transports == nil:
		c.Transports = []report.Transport{report.TransportHTTP1}
	case !tls && slices.Contains(c.Transports, report.TransportHTTP2):
		l.add(file, d.transportsLine, "check %q: transports: http2 needs a wss:// url (browsers take HTTP/2 over TLS only)", c.Name)
	}
	if nv := max(len(c.Vantages), 1); c.Alert.MinVantages > nv && !l.fleet {
		l.add(file, d.minVantLine, "alert.min_vantages: %d is more than the check's %d vantage(s)", c.Alert.MinVantages, nv)
	}
	return *c, l.count() == before
}
