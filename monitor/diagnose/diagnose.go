// Package diagnose turns one run's evidence into the most likely reason a
// WebSocket handshake failed and what to change. It is a pure function of
// its input, with no I/O and no clock of its own, so every rule is a row in
// a table test.
//
// The knowledge is the checklist of the 403 handshake guide: Origin
// allowlists, missing or expired tokens, CSRF middleware, CDN/WAF rules,
// proxies that strip Upgrade/Connection. The place of the failure is read
// first (CDN vs direct, one vantage vs all), because "where" is what the
// differential attempts prove; "what" comes from variants, token claims,
// status, headers and body.
package diagnose

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// Input is one run's evidence.
type Input struct {
	Attempts []report.Attempt
	// Token describes the configured credential; nil when none is.
	Token *Token
	// Timeout is the check's attempt timeout: a token that expires within
	// it will be rejected by the time the handshake lands.
	Timeout time.Duration
	Now     time.Time
	// ExpectConfigured says the check has send/expect.
	ExpectConfigured bool
}

// Token is what a JWT says about itself (decoded, never verified).
type Token = report.Token

// certWarning is how close a certificate's expiry must be to earn a hint.
const certWarning = 14 * 24 * time.Hour

// Diagnose returns the verdict on one run.
func Diagnose(in Input) report.Diagnosis {
	var configured []report.Attempt
	for _, a := range in.Attempts {
		if a.Variant == report.VariantConfigured || a.Variant == "" {
			configured = append(configured, a)
		}
	}
	if len(configured) == 0 {
		return report.Diagnosis{Cause: report.CauseUnexpectedStatus, Summary: "No attempt was made.", Hints: []string{}}
	}
	// The HTTP/1.1 attempts explain a failure first: every client has that
	// path. Only when all of them upgrade does a failing HTTP/2 attempt
	// tell its own story (h2_path_broken).
	var h1, h2 []report.Attempt
	for _, a := range configured {
		if a.Transport == report.TransportHTTP2 {
			h2 = append(h2, a)
		} else {
			h1 = append(h1, a)
		}
	}
	var d report.Diagnosis
	failing, ok := firstFailure(h1)
	switch {
	case !ok:
		d = explain(in, h1, failing)
	case len(h1) > 0:
		d = healthy(h1[0])
		if f, ok := firstFailure(h2); !ok {
			d = h2PathBroken(f)
		}
	default: // HTTP/2 alone
		d = healthy(configured[0])
		if f, ok := firstFailure(h2); !ok {
			d = explain(in, h2, f)
		}
	}
	if d.Hop == "" && d.Cause != report.CauseOK {
		if a, ok := find(configured, d.Vantage, d.Route); ok {
			d.Hop, _ = Answered(a)
		}
	}
	d.Hints = append(d.Hints, warnings(in)...)
	if d.Hints == nil {
		d.Hints = []string{}
	}
	return d
}

// firstFailure picks the attempt the verdict is about: the CDN route before
// the direct one (users go through the CDN), then the first vantage.
func firstFailure(as []report.Attempt) (report.Attempt, bool) {
	for _, route := range []report.Route{report.RouteCDN, report.RouteDirect, ""} {
		for _, a := range as {
			if !a.OK && (a.Route == route || route == "") {
				return a, false
			}
		}
	}
	return report.Attempt{}, true
}

func healthy(a report.Attempt) report.Diagnosis {
	return report.Diagnosis{Cause: report.CauseOK, Route: a.Route, Vantage: a.Vantage,
		Summary: "Every configured attempt upgraded to WebSocket (101)."}
}

func isAuthStatus(s int) bool { return s == 401 || s == 403 }

// explain finds the cause of a failed run, most specific place first.
func explain(in Input, configured []report.Attempt, f report.Attempt) report.Diagnosis {
	// Vendor is only named where the edge is the culprit: an origin's 403
	// relayed by a CDN carries the CDN's headers but is not its doing.
	d := report.Diagnosis{Route: f.Route, Vantage: f.Vantage}

	// 0. Who answered: the vantage's own proxy, a sign-in gateway.
	if who, ok := whoAnswered(in, d, configured); ok {
		return who
	}
	// 1. Place: on one route, some vantages upgrade and others are
	// refused. This comes first: a CDN that refuses one region's egress
	// address (an IP or geo rule) while others pass is not a WAF rule to
	// change for everyone.
	for _, route := range []report.Route{report.RouteCDN, report.RouteDirect} {
		var good, bad []string
		var badAtt report.Attempt
		for _, a := range configured {
			if a.Route != route {
				continue
			}
			switch {
			case a.OK:
				good = append(good, a.Vantage)
			case isAuthStatus(a.Status):
				if len(bad) == 0 {
					badAtt = a
				}
				bad = append(bad, a.Vantage)
			}
		}
		if len(good) > 0 && len(bad) > 0 {
			d.Route, d.Vantage, d.Vendor = route, badAtt.Vantage, Vendor(badAtt.Headers, badAtt.Body)
			return vantageBlocked(d, badAtt, good, bad, pops(configured, route, true), pops(configured, route, false))
		}
	}
	// 1b. Who: refused as this client, admitted as a browser. A bot rule
	// judges the client's signature; before a verdict on the route, or a
	// WAF rule would be blamed for what a browser passes.
	if f.Status >= 400 && f.Status < 500 {
		if b, ok := findVariant(in.Attempts, f, report.VariantBrowser); ok && b.OK {
			d.Vendor = Vendor(f.Headers, f.Body)
			if report.Client(f.Client).Browser() {
				return browserRefused(d, f, b)
			}
			return clientBlocked(d, f, b)
		}
	}

	// 2. Place: the CDN route fails where the direct route from the same
	// vantage upgrades.
	for _, cdn := range configured {
		if cdn.Route != report.RouteCDN || cdn.OK || cdn.Status == 0 {
			continue
		}
		direct, found := find(configured, cdn.Vantage, report.RouteDirect)
		if !found || !direct.OK {
			continue
		}
		d.Route, d.Vantage, d.Vendor = report.RouteCDN, cdn.Vantage, Vendor(cdn.Headers, cdn.Body)
		switch {
		case readWords(cdn).limited && (cdn.Status == 429 || cdn.Status == 503):
			return rateLimited(d, cdn, readWords(cdn), true)
		case isAuthStatus(cdn.Status) || isChallenge(cdn.Headers, cdn.Body) || isEdgeBlock(d.Vendor, cdn):
			return cdnBlocked(d, cdn)
		case backendSawNoUpgrade(cdn.Status, cdn.Headers, cdn.Reason, cdn.Body):
			return proxyStripped(d, cdn)
		}
	}

	// 2b. Both routes refuse, and the CDN's refusal is the edge's own (a
	// challenge or its block page): the CDN's answer says nothing about the
	// origin, so the verdict is the origin's, from the direct route, and the
	// edge's block is named beside it. Fixing only one of the two would
	// leave users refused by the other.
	if f.Route == report.RouteCDN && f.Status != 0 {
		direct, found := find(configured, f.Vantage, report.RouteDirect)
		vendor := Vendor(f.Headers, f.Body)
		if found && !direct.OK && direct.Status != 0 && (isChallenge(f.Headers, f.Body) || isEdgeBlock(vendor, f)) {
			od := explain(in, configured, direct)
			edge := cdnBlocked(report.Diagnosis{Vendor: vendor}, f)
			what := "refuses it too"
			if isChallenge(f.Headers, f.Body) {
				what = "answers with a challenge page too"
			}
			od.Summary += fmt.Sprintf(" Through cdn the %s %s (%s): once the origin accepts, the edge must let the upgrade through as well.",
				vendorName(vendor), what, status(f))
			od.Hints = append(od.Hints, edge.Hints...)
			return od
		}
	}

	// 3. What: the request itself, from the variants and the server's
	// own words.
	switch {
	case f.Status == 0:
		return noAnswer(d, f)
	case f.Opened():
		return postHandshake(d, f, in.ExpectConfigured)
	}
	w := readWords(f)
	if w.limited && (f.Status == 429 || f.Status == 503) {
		d.Vendor = Vendor(f.Headers, f.Body)
		return rateLimited(d, f, w, false)
	}
	refused := isAuthStatus(f.Status) || f.Status == 400
	if refused {
		if in.Token != nil && in.Token.JWT && !in.Token.ExpiresAt.IsZero() &&
			!in.Token.ExpiresAt.After(in.Now.Add(in.Timeout)) && isAuthStatus(f.Status) {
			return tokenExpired(d, f, in)
		}
		if w.csrf {
			return csrf(d, f)
		}
		if w.expired && isAuthStatus(f.Status) && f.Credential != "" {
			return tokenExpiredSaid(d, f, w)
		}
	}
	// Origin, from the variants: 403 (or 400, or Action Cable's 404) to
	// the configured Origin, 101 without it or with the URL's own.
	if refused || f.Status == 404 {
		noOrigin, _ := findVariant(in.Attempts, f, report.VariantNoOrigin)
		sameOrigin, _ := findVariant(in.Attempts, f, report.VariantSameOrigin)
		switch {
		case f.Origin != "" && (noOrigin.OK || sameOrigin.OK):
			return originRejected(d, f, noOrigin.OK, sameOrigin.OK, w)
		case f.Origin == "" && sameOrigin.OK:
			return originRequired(d, f)
		}
	}
	// The attempt chosen first has no more specific explanation: another
	// failing one may (the CDN refuses for its own reason while the origin's
	// refusal, seen on the direct route, is an Origin allowlist).
	for _, o := range configured {
		if o.OK || (o.Vantage == f.Vantage && o.Route == f.Route) || !isAuthStatus(o.Status) || o.Origin == "" {
			continue
		}
		noOrigin, _ := findVariant(in.Attempts, o, report.VariantNoOrigin)
		sameOrigin, _ := findVariant(in.Attempts, o, report.VariantSameOrigin)
		if noOrigin.OK || sameOrigin.OK {
			d.Route, d.Vantage = o.Route, o.Vantage
			return originRejected(d, o, noOrigin.OK, sameOrigin.OK, readWords(o))
		}
	}
	// Origin, from the server's words alone: every variant was refused
	// too, yet the server says it is the Origin.
	if (refused || f.Status == 404) && w.origin {
		noOrigin, hasNo := findVariant(in.Attempts, f, report.VariantNoOrigin)
		sameOrigin, hasSame := findVariant(in.Attempts, f, report.VariantSameOrigin)
		return originSaid(d, f, w, hasNo && !noOrigin.OK, hasSame && !sameOrigin.OK)
	}
	if isAuthStatus(f.Status) {
		d = auth(d, f, configured, w, in.Token)
		if id := answeredBy(f); id != "" {
			// A gateway or edge in front of the server refused it itself:
			// its rules are where to look first.
			e, _ := edgeByID(id)
			d.Vendor = id
			d.Summary += " The answer is the " + e.name + "'s own."
			d.Hints = append(slices.Clone(e.blocked), d.Hints...)
		}
		return d
	}
	if w.socketIO {
		return socketIO(d, f, w)
	}
	return byStatus(d, f)
}

// whoAnswered is the verdict when something other than the target
// answered: a vantage's own egress proxy refused the tunnel (the target
// was not reached from there: the verdict is about that vantage alone when
// every other attempt upgrades, and the others' story otherwise), or a
// sign-in gateway answered for the application (its page, a redirect to
// its identity provider). A gateway's signs outrank a verdict on the
// route: a WAF rule would be blamed for a login wall.
func whoAnswered(in Input, d report.Diagnosis, configured []report.Attempt) (report.Diagnosis, bool) {
	var viaProxy, rest []report.Attempt
	for _, a := range configured {
		if !a.OK && a.Hop == report.HopVantageProxy {
			viaProxy = append(viaProxy, a)
		} else {
			rest = append(rest, a)
		}
	}
	if len(viaProxy) > 0 {
		other, none := firstFailure(rest)
		if none {
			return vantageProxyRefused(d, viaProxy[0], configured), true
		}
		od := explain(in, rest, other)
		od.Summary += proxyNote(viaProxy[0])
		od.Hints = append(od.Hints, proxyFix(viaProxy[0], proxyProduct(viaProxy[0])))
		return od, true
	}
	for _, route := range []report.Route{report.RouteCDN, report.RouteDirect, ""} {
		for _, a := range configured {
			if a.OK || (a.Route != route && route != "") {
				continue
			}
			if id := gatewayOf(a); id != "" {
				d.Route, d.Vantage = a.Route, a.Vantage
				return gatewayAuth(d, a, id, configured), true
			}
		}
	}
	return report.Diagnosis{}, false
}

// answeredBy names the edge or gateway that produced an answer itself, not
// merely relayed it: its own error page, a Server header it sets only on
// its own answers (Kong), or API Gateway's error type.
func answeredBy(a report.Attempt) string {
	if id := pageOf(a.Body); id != "" {
		return id
	}
	h := func(n string) string { return strings.ToLower(headerValue(a.Headers, n)) }
	switch server := h("Server"); {
	case strings.HasPrefix(server, "kong"):
		return "kong"
	case strings.HasPrefix(server, "awselb"):
		return "aws-alb"
	case (server == "envoy" || server == "istio-envoy") && h("X-Envoy-Upstream-Service-Time") == "":
		return "envoy"
	case h("X-Amzn-Errortype") != "":
		return "aws-apigateway"
	}
	return ""
}

// isEdgeBlock: the edge's own block page, whatever status it came with
// (F5 and Imperva often answer 200, AWS WAF's challenge 202, Fastly's
// Next-Gen WAF 406).
func isEdgeBlock(vendor string, a report.Attempt) bool {
	if vendor == "" || a.Status == 101 {
		return false
	}
	b := strings.ToLower(a.Body)
	e, _ := edgeByID(vendor)
	for _, m := range e.body {
		if strings.Contains(b, m) && a.Status != 404 && a.Status < 500 {
			return true
		}
	}
	return a.Status == 406 && vendor == "fastly"
}

func find(as []report.Attempt, vantage string, route report.Route) (report.Attempt, bool) {
	for _, a := range as {
		if a.Vantage == vantage && a.Route == route {
			return a, true
		}
	}
	return report.Attempt{}, false
}

// findVariant returns the variant attempt made for the same vantage and
// route as f.
func findVariant(as []report.Attempt, f report.Attempt, v report.Variant) (report.Attempt, bool) {
	for _, a := range as {
		if a.Variant == v && a.Vantage == f.Vantage && a.Route == f.Route {
			return a, true
		}
	}
	return report.Attempt{}, false
}

func status(a report.Attempt) string {
	s := fmt.Sprint(a.Status)
	if a.Reason != "" {
		s += " " + a.Reason
	}
	return s
}

func where(a report.Attempt) string {
	if a.Vantage == "" {
		return "through " + string(a.Route)
	}
	return fmt.Sprintf("through %s from %s", a.Route, a.Vantage)
}

func cdnBlocked(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	d.Cause = report.CauseCDNBlocked
	what := "refuses"
	if isChallenge(a.Headers, a.Body) {
		what = "answers with a challenge page (which a WebSocket client can never pass) to"
	}
	at := ""
	if p := popOf(a); p != "" {
		at = " at " + p
	}
	d.Summary = fmt.Sprintf("The %s%s %s the upgrade (%s %s) while the origin accepts it directly: a CDN/WAF rule blocks WebSocket upgrades.",
		vendorName(d.Vendor), at, what, status(a), where(a))
	if e, ok := edgeByID(d.Vendor); ok && len(e.blocked) > 0 {
		d.Hints = slices.Clone(e.blocked)
	} else {
		d.Hints = []string{
			"Find the edge rule that matches the upgrade request (headers Upgrade: websocket, Connection: Upgrade) and add an exception for the WebSocket path, placed before managed rules.",
		}
	}
	return d
}

// h2PathBroken: the HTTP/1.1 upgrade works and the WebSocket over HTTP/2
// that the server advertised (SETTINGS_ENABLE_CONNECT_PROTOCOL) does not.
// Browsers take that path on an HTTP/2 connection to the host, so their
// users fail while an HTTP/1.1 canary stays green.
func h2PathBroken(a report.Attempt) report.Diagnosis {
	d := report.Diagnosis{Cause: report.CauseH2PathBroken, Route: a.Route, Vantage: a.Vantage, Transport: report.TransportHTTP2}
	d.Vendor = Vendor(a.Headers, a.Body)
	what := "answers " + status(a) + " to the extended CONNECT it advertised"
	if a.Status == 0 {
		what = "breaks the extended CONNECT it advertised (" + a.Error + ")"
	} else if a.Opened() {
		what = "opens the WebSocket over HTTP/2 and then breaks it (" + cmp.Or(a.Error, fmt.Sprintf("close %d", a.CloseCode)) + ")"
	}
	d.Summary = fmt.Sprintf("%s %s %s, while the HTTP/1.1 upgrade works: Chrome and Firefox open the WebSocket over HTTP/2 on a connection to this host that offers it (RFC 8441), and their users fail.",
		answerer(d.Vendor, false), what, where(a))
	d.Hints = []string{
		"Either serve WebSockets over HTTP/2 end to end (RFC 8441: CONNECT with :protocol websocket, answered 200) or stop advertising SETTINGS_ENABLE_CONNECT_PROTOCOL, so browsers fall back to HTTP/1.1.",
		"A Go server run with GODEBUG=http2xconnect=1 advertises it for every handler, and WebSocket libraries that only hijack HTTP/1.1 upgrades refuse it (golang/go#71128): remove the setting or use a library that accepts extended CONNECT.",
		"A proxy in front (HAProxy, Envoy, nginx) must carry the h2 stream to a backend that upgrades (HAProxy's h2 frontends translate it to an HTTP/1.1 upgrade), or not advertise extended CONNECT.",
	}
	return d
}

// clientBlocked: the edge refuses this client's signature and admits a
// browser's (the browser variant upgraded).
func clientBlocked(d report.Diagnosis, a, browser report.Attempt) report.Diagnosis {
	d.Cause = report.CauseClientBlocked
	who := answerer(d.Vendor, false)
	d.Summary = fmt.Sprintf("%s refuses this client's signature (client %s: %s %s) and admits a browser's (%s: %d): a bot rule, not a broken endpoint. Users with browsers are likely fine.",
		who, a.Client, status(a), where(a), browser.Client, browser.Status)
	switch d.Vendor {
	case "cloudflare":
		d.Hints = []string{
			"Cloudflare: add a WAF custom rule with action Skip (Super Bot Fight Mode, managed rules) for the monitor's egress IPs or its User-Agent, placed first.",
			"Bot Fight Mode cannot be skipped by a rule: make the check as client: chrome, or turn Bot Fight Mode off for the WebSocket path.",
		}
	case "aws-waf", "cloudfront", "aws-alb":
		d.Hints = []string{
			"AWS WAF Bot Control: add a scope-down statement to the Bot Control rule group that leaves out the monitor (its IP set or a header only it sends).",
		}
	default:
		d.Hints = []string{
			"Exempt the monitor from the bot rule (its egress addresses or User-Agent), or make the check as client: chrome so it judges what users send.",
		}
	}
	d.Hints = append(d.Hints, "client_blocked posts a warning, not an incident; alert.on: [client_blocked] makes it an incident.")
	return d
}

// browserRefused: one browser's signature is refused while the other's is
// admitted: the users of that browser are refused, an incident.
func browserRefused(d report.Diagnosis, a, other report.Attempt) report.Diagnosis {
	d.Cause = report.CauseCDNBlocked
	who := answerer(d.Vendor, false)
	d.Summary = fmt.Sprintf("%s refuses %s's signature (%s %s) and admits %s's (%d): users of %s are refused.",
		who, a.Client, status(a), where(a), other.Client, other.Status, a.Client)
	d.Hints = []string{
		"A bot or browser rule at the edge matches this browser's User-Agent, headers or TLS fingerprint: find it (the edge's firewall events for this path) and exempt real browsers.",
	}
	return d
}

func proxyStripped(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	d.Cause = report.CauseProxyStrippedUpgrade
	d.Summary = fmt.Sprintf("%s the server answers %s as to a plain HTTP request, while the direct route upgrades: a proxy on the way drops the Upgrade/Connection headers.",
		capitalize(where(a)), status(a))
	if e, ok := edgeByID(d.Vendor); ok && len(e.stripped) > 0 {
		d.Hints = slices.Clone(e.stripped)
	} else {
		d.Hints = []string{
			"Find the proxy or load balancer on the CDN route that speaks HTTP/1.0 or drops hop-by-hop headers to the origin: it must pass Upgrade: websocket and Connection: Upgrade (WebSocket support on, HTTP/1.1 to the backend).",
		}
	}
	return d
}

func vantageBlocked(d report.Diagnosis, a report.Attempt, good, bad []string, goodPops, badPops []string) report.Diagnosis {
	d.Cause = report.CauseVantageBlocked
	d.Summary = fmt.Sprintf("Through %s the upgrade gets %s from %s but 101 from %s: the rule depends on where the client is.",
		a.Route, status(a), strings.Join(bad, ", "), strings.Join(good, ", "))
	if len(badPops) > 0 && len(goodPops) > 0 && !slices.Equal(badPops, goodPops) {
		d.Summary += fmt.Sprintf(" The edges disagree: refused at %s, upgraded at %s.", strings.Join(badPops, " and "), strings.Join(goodPops, " and "))
	}
	d.Hints = []string{
		"Check IP allowlists, geo rules and rate limits on the " + string(a.Route) + " route for the refused vantages' egress addresses.",
	}
	if d.Vendor != "" {
		d.Hints = append(d.Hints, vendorName(d.Vendor)+": look up the request by its ray/request id in the answer headers to see which rule matched.")
	}
	return d
}

func tokenExpired(d report.Diagnosis, a report.Attempt, in Input) report.Diagnosis {
	d.Cause = report.CauseTokenExpired
	exp := in.Token.ExpiresAt.UTC().Format(time.RFC3339)
	if in.Token.ExpiresAt.After(in.Now) {
		d.Summary = fmt.Sprintf("The server answers %s %s and the token (a JWT) expires at %s, within the check's %s timeout.", status(a), where(a), exp, in.Timeout)
	} else {
		d.Summary = fmt.Sprintf("The server answers %s %s and the token (a JWT) expired at %s (%s ago).", status(a), where(a), exp, in.Now.Sub(in.Token.ExpiresAt).Round(time.Second))
	}
	d.Hints = []string{
		"Refresh the token before it expires: fetch it right before connecting (token.command or token.file that your issuer rotates) rather than storing a long-lived value.",
		"A 403 with a valid token is policy, not authentication; with an expired one, renew first and look again.",
	}
	return d
}

// tokenExpiredSaid: the server says the token expired (an opaque token,
// or a JWT whose exp we could not read).
func tokenExpiredSaid(d report.Diagnosis, a report.Attempt, w words) report.Diagnosis {
	d.Cause = report.CauseTokenExpired
	d.Summary = fmt.Sprintf("The server answers %s %s to the credential sent in the %s and says it has expired.%s", status(a), where(a), a.Credential, w.said())
	d.Hints = []string{
		"Refresh the token before it expires: fetch it right before connecting (token.command, or a token.file your issuer rotates) rather than storing a long-lived value.",
	}
	if w.bearer != "" {
		d.Hints = append(d.Hints, fmt.Sprintf("The WWW-Authenticate challenge says error=%q (RFC 6750): the token was read and refused, not missing.", w.bearer))
	}
	return d
}

func csrf(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	d.Cause = report.CauseCSRFRejected
	d.Summary = fmt.Sprintf("The server answers %s %s and names CSRF: CSRF middleware treats the upgrade request as an unprotected form post.", status(a), where(a))
	d.Hints = []string{
		"Django: route WebSocket traffic through Channels' ProtocolTypeRouter in asgi.py ('websocket': AuthMiddlewareStack(URLRouter(...))) and run under an ASGI server, so CsrfViewMiddleware never sees it.",
		"ASP.NET: call app.UseWebSockets() before app.UseAntiforgery(); in other frameworks exempt the WebSocket path from CSRF middleware.",
	}
	return d
}

func originRejected(d report.Diagnosis, a report.Attempt, noOriginOK, sameOriginOK bool, w words) report.Diagnosis {
	d.Cause = report.CauseOriginRejected
	which := "without an Origin"
	if sameOriginOK && !noOriginOK {
		which = "with the URL's own origin"
	} else if sameOriginOK {
		which = "without an Origin and with the URL's own origin"
	}
	d.Summary = fmt.Sprintf("The server answers %s %s to Origin %s but upgrades %s: the Origin allowlist does not include %s.",
		status(a), where(a), a.Origin, which, a.Origin)
	switch {
	case w.quote != "" && !w.origin:
		// The words and the variants disagree: say what each showed.
		d.Summary += fmt.Sprintf(" Its message (%q) does not name the Origin, but only the Origin changed between the attempts.", w.quote)
	default:
		d.Summary += w.said()
	}
	d.Hints = []string{
		fmt.Sprintf("Add %s (scheme, host and port must match exactly) to the WebSocket server's allowed origins.", a.Origin),
		"Origins differ by port and scheme: https://app.example.com and https://app.example.com:8443 or http://... are different origins.",
	}
	return d
}

// originSaid: every variant was refused, yet the server says the Origin is
// the problem. The allowlist may admit neither the configured origin nor
// the URL's own: the summary says what the words and the variants showed.
func originSaid(d report.Diagnosis, a report.Attempt, w words, noOriginRefused, sameOriginRefused bool) report.Diagnosis {
	d.Cause = report.CauseOriginRejected
	origin := "no Origin"
	if a.Origin != "" {
		origin = "Origin " + a.Origin
	}
	d.Summary = fmt.Sprintf("The server answers %s %s to %s and its answer names the Origin.%s", status(a), where(a), origin, w.said())
	if noOriginRefused || sameOriginRefused {
		d.Summary += " The attempts without an Origin or with the URL's own origin were refused too: the allowlist admits none of them (or the server wants an Origin it knows)."
	}
	d.Hints = []string{
		"Compare the server's allowed origins with the Origin the check sends (origin:), scheme, host and port exactly; browsers send the page's origin.",
		"Some servers (Django Channels' OriginValidator, a strict CheckOrigin) refuse a missing Origin as well: set origin: to an allowed one.",
	}
	return d
}

func originRequired(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	d.Cause = report.CauseOriginRequired
	d.Summary = fmt.Sprintf("The server answers %s %s to a request without Origin but upgrades when the URL's own origin is sent: it requires an Origin header.", status(a), where(a))
	d.Hints = []string{
		"Browsers always send Origin; set origin: in the check to the origin your pages are served from.",
		"If non-browser clients must connect, let the server accept a missing Origin for authenticated clients.",
	}
	return d
}

func auth(d report.Diagnosis, a report.Attempt, configured []report.Attempt, w words, tok *Token) report.Diagnosis {
	if a.Credential == "" {
		d.Cause = report.CauseAuthMissing
		d.Summary = fmt.Sprintf("The server answers %s %s and no credential was sent: it wants one.", status(a), where(a))
		if a.Status == 401 {
			if ch := headerValue(a.Headers, "Www-Authenticate"); ch != "" {
				d.Summary = fmt.Sprintf("The server answers %s %s (WWW-Authenticate: %s) and no credential was sent.", status(a), where(a), oneLine(ch))
			}
		}
		if w.description == "" {
			d.Summary += w.said()
		}
		d.Hints = []string{
			"Configure token: in the check, in the place the server reads it (query parameter, cookie, Authorization header, or the first message).",
			"401 means \"who are you?\" (no or unreadable credential); 403 means \"I know you, but no\".",
		}
		return d
	}
	d.Cause = report.CauseAuthRejected
	everywhere := true
	for _, o := range configured {
		if o.OK {
			everywhere = false
		}
	}
	scope := "on every route"
	if !everywhere {
		scope = "here"
	}
	jwtInQuery := tok != nil && tok.JWT && a.Credential == "query"
	switch {
	case w.bearer == "insufficient_scope":
		d.Summary = fmt.Sprintf("The server answers %s %s: the credential sent in the %s is valid but lacks a scope it needs (WWW-Authenticate error=\"insufficient_scope\").%s",
			status(a), where(a), a.Credential, w.said())
		d.Hints = []string{"Issue the token with the scope the WebSocket endpoint requires (the challenge's scope= parameter names it, when the server sends one)."}
		return d
	case w.invalid || w.missing:
		d.Summary = fmt.Sprintf("The server answers %s %s and says the credential sent in the %s is not valid.%s", status(a), where(a), a.Credential, w.said())
		d.Hints = []string{
			fmt.Sprintf("Check the token itself (issuer, audience, signing key, revocation) and that the server reads it from the %s under the configured name.", a.Credential),
		}
		if w.missing {
			d.Summary = fmt.Sprintf("The server answers %s %s and says no credential reached it, although one was sent in the %s.%s", status(a), where(a), a.Credential, w.said())
			d.Hints = []string{fmt.Sprintf("The server looks for the credential elsewhere or under another name: check where it reads it (query parameter, cookie, header, first message) against token.in and token.name (now the %s).", a.Credential)}
		}
		if jwtInQuery {
			d.Hints = append(d.Hints, "A JWT in a URL must be URL-encoded (encodeURIComponent).")
		}
		return d
	}
	if a.Status == 401 {
		d.Summary = fmt.Sprintf("The server answers 401 %s although a credential was sent in the %s: it does not recognise it (wrong place, name or encoding, or revoked).%s", where(a), a.Credential, w.said())
		d.Hints = []string{
			fmt.Sprintf("Check the server reads the credential from the %s under the configured name.", a.Credential),
			"401 means \"who are you?\": the credential is missing or unrecognisable, not forbidden.",
		}
		if jwtInQuery {
			d.Hints = append(d.Hints, "A JWT in a URL must be URL-encoded (encodeURIComponent).")
		}
		return d
	}
	d.Summary = fmt.Sprintf("The server answers 403 %s to a live credential (sent in the %s), whatever the Origin, %s: the credential is valid but not allowed.%s", where(a), a.Credential, scope, w.said())
	d.Hints = []string{
		"403 with a valid token is authorization or policy: check the account's permissions for this resource (room, channel, tenant) and any IP or origin policy tied to the token.",
		"Look for the rejection in the server's logs by the trace id: the reason (\"forbidden\", \"scope\", \"origin\") is almost always logged there.",
	}
	return d
}

// rateLimited: 429 (or a 503 that says so). atEdge: the CDN route is
// limited while the direct one upgrades.
func rateLimited(d report.Diagnosis, a report.Attempt, w words, atEdge bool) report.Diagnosis {
	d.Cause = report.CauseRateLimited
	who := answerer(d.Vendor, atEdge)
	d.Summary = fmt.Sprintf("%s answers %s %s: too many requests from this client.", who, status(a), where(a))
	if w.retryAfter != "" {
		d.Summary += fmt.Sprintf(" It asks to retry after %s.", w.retryAfter)
	}
	d.Summary += w.said()
	if atEdge {
		d.Summary += " The direct route upgrades: the limit is the edge's."
	}
	d.Hints = []string{
		"A canary that runs every few seconds from one address, or reconnecting clients behind one NAT, can trip a per-IP limit: check the limit's key and threshold for the WebSocket path.",
	}
	if e, ok := edgeByID(d.Vendor); ok && len(e.limited) > 0 {
		d.Hints = append(d.Hints, e.limited...)
	}
	return d
}

// socketIO: a Socket.IO (engine.io) server refused a plain WebSocket URL.
func socketIO(d report.Diagnosis, a report.Attempt, w words) report.Diagnosis {
	d.Cause = report.CauseUnexpectedStatus
	d.Summary = fmt.Sprintf("The server answers %s %s like a Socket.IO (engine.io) server that does not recognise the request.%s", status(a), where(a), w.said())
	d.Hints = []string{
		"A Socket.IO endpoint wants its own query: /socket.io/?EIO=4&transport=websocket (EIO=3 for Socket.IO 2 servers unless allowEIO3).",
		"\"Session ID unknown\" means a sid from an earlier session was sent: connect without sid.",
	}
	return d
}

func postHandshake(d report.Diagnosis, a report.Attempt, expect bool) report.Diagnosis {
	d.Cause = report.CausePostHandshakeRejected
	if brokenDeflate(a) {
		d.Summary = fmt.Sprintf("The upgrade succeeds %s with permessage-deflate negotiated (%s), then the compressed stream is broken: %s. "+
			"Browsers offer the extension, so their connections break the same way.", where(a), oneLine(a.ExtensionsAnswer), a.Error)
		d.Hints = []string{
			"A proxy or server between here and the application mishandles permessage-deflate (compressed frames altered, or the extension answered without compressing): fix or turn off the extension at that hop.",
			"client: wscanary offers no extension: the check passes with it if compression is the only fault.",
		}
		return d
	}
	step, stepped := a.FailedStep()
	w := readWords(a)
	switch {
	case a.Refusal != "":
		d.Summary = fmt.Sprintf("The upgrade succeeds %s, then the %s server refuses the session (%s): %q.",
			where(a), protocolName(a.Protocol), step.Name, oneLine(a.Refusal))
		d.Hints = protocolHints(a.Protocol)
		if w.expired {
			d.Cause = report.CauseTokenExpired
			d.Hints = append([]string{"The server says the token expired: refresh it before connecting."}, d.Hints...)
		}
		return d
	case a.CloseCode == 0 && (stepped && (step.Result == report.StepNoMatch || step.Result == report.StepTimeout) ||
		!stepped && strings.Contains(a.Error, "did not match")):
		d.Cause = report.CauseUnexpectedReply
		d.Summary = fmt.Sprintf("The upgrade succeeds %s and nothing refuses it, but the reply the check expects did not come: %s.", where(a), a.Error)
		d.Hints = []string{
			"The application answered something else, or nothing in time: compare the messages in the attempt with expect:, and the step's within: with how long the server takes.",
			"If the reply changed on purpose, update expect: in the check.",
		}
		return d
	case a.CloseCode == 1008 || (a.CloseCode >= 3000 && a.CloseCode <= 4999):
		d.Summary = fmt.Sprintf("The upgrade succeeds %s, then the server closes with %d: it rejects the connection after the handshake (first-message auth or policy).", where(a), a.CloseCode)
		if a.Protocol != "" && stepped {
			d.Summary = fmt.Sprintf("The upgrade succeeds %s, then the %s server closes with %d at %s: it refuses the session.",
				where(a), protocolName(a.Protocol), a.CloseCode, step.Name)
		}
	case a.CloseCode != 0:
		d.Summary = fmt.Sprintf("The upgrade succeeds %s, then the server closes with %d before the expected exchange.", where(a), a.CloseCode)
	default:
		d.Summary = fmt.Sprintf("The upgrade succeeds %s but the exchange after it fails: %s.", where(a), a.Error)
	}
	if a.CloseReason != "" {
		d.Summary += fmt.Sprintf(" Its reason: %q.", oneLine(a.CloseReason))
	}
	d.Hints = append(protocolHints(a.Protocol),
		"Check the first message the server expects (its auth message format and the token in it) and the reply it sends; close codes 3000-4999 are the application's or its library's own.")
	if w.expired {
		d.Hints = append(d.Hints, "The server says the token expired: refresh it before connecting.")
	} else if w.invalid {
		d.Hints = append(d.Hints, "The server says the token is not valid: check the token the first message (or the URL) carries.")
	}
	if expect {
		d.Hints = append(d.Hints, "If the server's reply changed on purpose, update expect: in the check.")
	}
	return d
}

// protocolName is how a summary names an application protocol.
func protocolName(p string) string {
	switch p {
	case "socket.io":
		return "Socket.IO"
	case "graphql-ws":
		return "graphql-ws"
	case "mqtt":
		return "MQTT"
	case "stomp":
		return "STOMP"
	case "actioncable":
		return "Action Cable"
	case "centrifugo":
		return "Centrifugo"
	case "phoenix":
		return "Phoenix"
	case "signalr":
		return "SignalR"
	case "":
		return "application"
	}
	return p
}

// protocolHints say where the protocol's credential goes and what its
// server's auth code sees.
func protocolHints(p string) []string {
	switch p {
	case "socket.io":
		return []string{"Socket.IO reads the credential from the namespace CONNECT packet's auth payload (socket.handshake.auth in an io.use() middleware); a middleware's next(new Error(...)) is what answers 44 CONNECT_ERROR with its message. The check sends {\"token\": ...} there with token.in: message."}
	case "graphql-ws":
		return []string{"graphql-ws hands connection_init's payload to onConnect (ctx.connectionParams): returning false closes 4403 Forbidden, a thrown error 4400; the check's payload is protocol_options.payload with {token} replaced."}
	case "centrifugo":
		return []string{"Centrifugo checks the connection JWT of the connect command against client.token (hmac_secret_key, a public key or a JWKS): error 109 means it expired (the client refreshes it), a 3500 close that it is not valid."}
	case "actioncable":
		return []string{"Action Cable's connect (reject_unauthorized_connection) reads the request's cookies and params, so the credential goes in token.in: cookie or query; a channel's subscribed calls reject for a subscription it refuses (protocol_options.channel and params)."}
	case "stomp":
		return []string{"The broker checks CONNECT's login (protocol_options.login) and passcode (the check's token, or the header protocol_options.header names) for the virtual host (protocol_options.host); its ERROR frame's message says which failed."}
	case "phoenix":
		return []string{"Phoenix hands the join payload to the channel's join/3 ({:error, %{reason: ...}} refuses it) and the URL's params to the socket's connect/3 (a refusal there is a 403 on the upgrade): put the token where your code reads it (protocol_options.payload or token.in: query)."}
	case "signalr":
		return []string{"SignalR refuses in the handshake response or a close message; authorization usually fails earlier, on the negotiate request or the upgrade (401), where the access token goes as access_token in the query."}
	case "mqtt":
		return []string{"The broker checks CONNECT's user name (protocol_options.username) and password (the check's token) against its password file or auth plugin; a CONNACK refusal names which check failed."}
	}
	return nil
}

// brokenDeflate: permessage-deflate was negotiated and what came after it
// could not be inflated (or the server said the payload was invalid).
func brokenDeflate(a report.Attempt) bool {
	if !strings.HasPrefix(strings.ToLower(a.ExtensionsAnswer), "permessage-deflate") {
		return false
	}
	e := strings.ToLower(a.Error)
	return strings.Contains(e, "flate") || strings.Contains(e, "rsv1") || a.CloseCode == 1007
}

func noAnswer(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	detail := a.Error
	switch a.ErrorClass() {
	case report.ErrDNS:
		d.Cause = report.CauseDNSError
		d.Summary = fmt.Sprintf("The host does not resolve %s: %s.", where(a), detail)
		d.Hints = []string{"Check the DNS record of the host and the resolver of this vantage."}
	case report.ErrConnect:
		d.Cause = report.CauseConnectError
		d.Summary = fmt.Sprintf("No TCP connection %s: %s.", where(a), detail)
		d.Hints = []string{"Check that the server listens on the port and that firewalls and security groups let this vantage in."}
	case report.ErrTLS:
		d.Cause = report.CauseTLSError
		d.Summary = fmt.Sprintf("TLS fails %s: %s.", where(a), detail)
		switch {
		case strings.Contains(detail, "expired"):
			d.Hints = []string{"Renew the server certificate (and check the automation that should have)."}
		case strings.Contains(detail, "name mismatch"):
			d.Hints = []string{"The certificate does not cover the URL's host: add it to the certificate's names, or set tls.server_name if the route uses another name."}
		default:
			d.Hints = []string{"Check the certificate chain the server sends, or point tls.ca_file at the CA that signed it."}
		}
	case report.ErrTimeout:
		d.Cause = report.CauseTimeout
		d.Summary = fmt.Sprintf("No answer %s within the timeout (%s).", where(a), strings.TrimPrefix(detail, "timeout: "))
		d.Hints = []string{"A silent drop often means a firewall or an overloaded server; compare with the other route and vantages."}
	default:
		d.Cause = report.CauseUnexpectedStatus
		d.Summary = fmt.Sprintf("The answer %s is not a valid WebSocket handshake: %s.", where(a), detail)
		d.Hints = []string{"Something on the way answers with something other than HTTP/1.1 (a TLS/plain mismatch, a proxy error page, a non-WebSocket server)."}
	}
	return d
}

func byStatus(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	switch s := a.Status; {
	case s == 404:
		d.Cause = report.CauseNotFound
		d.Summary = fmt.Sprintf("The server answers 404 %s: nothing serves WebSockets at this path.", where(a))
		d.Hints = []string{"Check the path and that the route to the WebSocket handler exists on the server behind this route."}
	case s >= 300 && s < 400:
		d.Cause = report.CauseRedirect
		loc := headerValue(a.Headers, "Location")
		d.Summary = fmt.Sprintf("The server answers %s %s to %s: WebSocket clients do not follow redirects.", status(a), where(a), loc)
		d.Hints = []string{"Point the client (and the check) at the final URL, or stop redirecting the WebSocket path (often http->https or a trailing slash)."}
	case s >= 500:
		d.Cause = report.CauseServerError
		d.Summary = fmt.Sprintf("The server answers %s %s.", status(a), where(a))
		d.Hints = []string{"A 5xx is the server's or gateway's own failure: check the backend's health and the proxy's error log for the request's trace id."}
	default:
		d.Cause = report.CauseUnexpectedStatus
		d.Summary = fmt.Sprintf("The server answers %s %s instead of 101.", status(a), where(a))
		if backendSawNoUpgrade(a.Status, a.Headers, a.Reason, a.Body) {
			d.Hints = []string{"This looks like a server that never saw the Upgrade header: a proxy may strip Upgrade/Connection. Configure direct: to compare with the origin."}
		} else {
			d.Hints = []string{"Read the body and headers of the answer; configure direct: to see whether the origin or something on the way answers."}
		}
	}
	return d
}

// warnings are hints that apply even to a healthy run.
func warnings(in Input) []string {
	var out []string
	if t := in.Token; t != nil && t.JWT && !t.ExpiresAt.IsZero() && t.ExpiresAt.After(in.Now) {
		start := t.IssuedAt
		if start.IsZero() {
			start = t.NotBefore
		}
		if !start.IsZero() && t.ExpiresAt.After(start) {
			life, left := t.ExpiresAt.Sub(start), t.ExpiresAt.Sub(in.Now)
			if left*10 < life {
				out = append(out, fmt.Sprintf("Warning: the token expires at %s, in %s (under 10%% of its %s lifetime): make sure it is refreshed.",
					t.ExpiresAt.UTC().Format(time.RFC3339), left.Round(time.Second), life.Round(time.Second)))
			}
		}
	}
	seen := map[report.Route]bool{}
	for _, a := range in.Attempts {
		if a.CertNotAfter.IsZero() || seen[a.Route] {
			continue
		}
		left := a.CertNotAfter.Sub(in.Now)
		if left < certWarning && left > 0 {
			seen[a.Route] = true
			out = append(out, fmt.Sprintf("Warning: the TLS certificate on the %s route expires in %d days (%s).",
				a.Route, int(left.Hours()/24), a.CertNotAfter.UTC().Format("2006-01-02")))
		}
	}
	return out
}

// vendorName is how a sentence names an edge: "Cloudflare edge", or "CDN"
// when it is unknown.
// answerer names who answered in a summary: the named edge (or "the
// CDN" when it is an edge's answer without a name), else the server.
func answerer(vendor string, atEdge bool) string {
	if atEdge || vendor != "" {
		return "The " + vendorName(vendor)
	}
	return "The server"
}

func vendorName(v string) string {
	if e, ok := edgeByID(v); ok {
		return e.name
	}
	return "CDN"
}

// popOf is the edge location of an attempt, as the prober recorded it or
// as its headers say.
func popOf(a report.Attempt) string {
	if a.Pop != "" {
		return a.Pop
	}
	return EdgePop(a.Headers)
}

// pops lists the edge locations of a route's attempts that upgraded (ok)
// or were refused, in order, once each.
func pops(as []report.Attempt, route report.Route, ok bool) []string {
	var out []string
	for _, a := range as {
		p := popOf(a)
		if a.Route != route || a.OK != ok || p == "" || slices.Contains(out, p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
