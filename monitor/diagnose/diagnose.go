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
	"fmt"
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
	failing, ok := firstFailure(configured)
	var d report.Diagnosis
	if ok {
		d = healthy(configured[0])
	} else {
		d = explain(in, configured, failing)
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
			return vantageBlocked(d, badAtt, good, bad)
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
		case isAuthStatus(cdn.Status) || isChallenge(cdn.Headers, cdn.Body):
			return cdnBlocked(d, cdn)
		case backendSawNoUpgrade(cdn.Status, cdn.Headers, cdn.Reason, cdn.Body):
			return proxyStripped(d, cdn)
		}
	}

	// 3. What: the request itself.
	switch {
	case f.Status == 0:
		return noAnswer(d, f)
	case f.Status == 101:
		return postHandshake(d, f, in.ExpectConfigured)
	}
	if isAuthStatus(f.Status) || f.Status == 400 {
		if in.Token != nil && in.Token.JWT && !in.Token.ExpiresAt.IsZero() &&
			!in.Token.ExpiresAt.After(in.Now.Add(in.Timeout)) && isAuthStatus(f.Status) {
			return tokenExpired(d, f, in)
		}
		if mentionsCSRF(f.Headers, f.Reason, f.Body) {
			return csrf(d, f)
		}
	}
	if isAuthStatus(f.Status) || f.Status == 400 {
		noOrigin, _ := findVariant(in.Attempts, f, report.VariantNoOrigin)
		sameOrigin, _ := findVariant(in.Attempts, f, report.VariantSameOrigin)
		switch {
		case f.Origin != "" && (noOrigin.OK || sameOrigin.OK):
			return originRejected(d, f, noOrigin.OK, sameOrigin.OK)
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
			return originRejected(d, o, noOrigin.OK, sameOrigin.OK)
		}
	}
	if isAuthStatus(f.Status) {
		return auth(d, f, configured)
	}
	return byStatus(d, f)
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
	name := vendorName(d.Vendor)
	d.Summary = fmt.Sprintf("The %s %s the upgrade (%s %s) while the origin accepts it directly: a CDN/WAF rule blocks WebSocket upgrades.",
		name, what, status(a), where(a))
	switch d.Vendor {
	case "cloudflare":
		d.Hints = []string{
			"Cloudflare: Security > WAF > Custom rules: add 'URI Path contains /ws AND Request Header \"Upgrade\" equals \"websocket\"' with action Skip, placed first.",
			"If Security Level is \"I'm Under Attack\", lower it for the WebSocket path (a JavaScript challenge cannot be solved by a WebSocket client); check Network > WebSockets is on.",
		}
	case "aws-waf", "aws-cloudfront":
		d.Hints = []string{
			"AWS WAF: add a rule that allows requests whose Upgrade header equals websocket and place it before the managed rule groups (AWSManagedRulesCommonRuleSet often matches the upgrade).",
			"CloudFront: forward the Sec-WebSocket-Key, Sec-WebSocket-Version, Sec-WebSocket-Protocol and Origin headers in the origin request policy of the /ws behaviour.",
		}
	case "akamai":
		d.Hints = []string{
			"Akamai: check the App & API Protector / Kona rule that matched (the Reference # in the body) and add an exception for the WebSocket path with Upgrade: websocket.",
			"Make sure WebSockets are enabled in the property's behaviour for this path.",
		}
	case "fastly":
		d.Hints = []string{
			"Fastly: WebSockets need 'return (upgrade);' in vcl_recv for the path (and the WebSockets feature on the service); check Next-Gen WAF rules for the upgrade.",
		}
	case "nginx":
		d.Hints = []string{
			"nginx at the edge answers this itself: look for 'return 403', 'deny' or a WAF module rule on the WebSocket location and exempt requests with $http_upgrade = websocket.",
		}
	default:
		d.Hints = []string{
			"Find the edge rule that matches the upgrade request (headers Upgrade: websocket, Connection: Upgrade) and add an exception for the WebSocket path, placed before managed rules.",
		}
	}
	return d
}

func proxyStripped(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	d.Cause = report.CauseProxyStrippedUpgrade
	d.Summary = fmt.Sprintf("%s the server answers %s as to a plain HTTP request, while the direct route upgrades: a proxy on the way drops the Upgrade/Connection headers.",
		capitalize(where(a)), status(a))
	d.Hints = []string{
		"nginx: in the WebSocket location set 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";' (without them nginx speaks HTTP/1.0 and drops both headers).",
		"Other proxies and load balancers: enable WebSocket/upgrade support for the path and keep hop-by-hop Upgrade and Connection headers.",
	}
	return d
}

func vantageBlocked(d report.Diagnosis, a report.Attempt, good, bad []string) report.Diagnosis {
	d.Cause = report.CauseVantageBlocked
	d.Summary = fmt.Sprintf("Through %s the upgrade gets %s from %s but 101 from %s: the rule depends on where the client is.",
		a.Route, status(a), strings.Join(bad, ", "), strings.Join(good, ", "))
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

func csrf(d report.Diagnosis, a report.Attempt) report.Diagnosis {
	d.Cause = report.CauseCSRFRejected
	d.Summary = fmt.Sprintf("The server answers %s %s and names CSRF: CSRF middleware treats the upgrade request as an unprotected form post.", status(a), where(a))
	d.Hints = []string{
		"Django: route WebSocket traffic through Channels' ProtocolTypeRouter in asgi.py ('websocket': AuthMiddlewareStack(URLRouter(...))) and run under an ASGI server, so CsrfViewMiddleware never sees it.",
		"ASP.NET: call app.UseWebSockets() before app.UseAntiforgery(); in other frameworks exempt the WebSocket path from CSRF middleware.",
	}
	return d
}

func originRejected(d report.Diagnosis, a report.Attempt, noOriginOK, sameOriginOK bool) report.Diagnosis {
	d.Cause = report.CauseOriginRejected
	which := "without an Origin"
	if sameOriginOK && !noOriginOK {
		which = "with the URL's own origin"
	} else if sameOriginOK {
		which = "without an Origin and with the URL's own origin"
	}
	d.Summary = fmt.Sprintf("The server answers %s %s to Origin %s but upgrades %s: the Origin allowlist does not include %s.",
		status(a), where(a), a.Origin, which, a.Origin)
	d.Hints = []string{
		fmt.Sprintf("Add %s (scheme, host and port must match exactly) to the WebSocket server's allowed origins: ws verifyClient, Spring setAllowedOrigins, Socket.IO cors.origin, gorilla CheckOrigin.", a.Origin),
		"Origins differ by port and scheme: https://app.example.com and https://app.example.com:8443 or http://... are different origins.",
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

func auth(d report.Diagnosis, a report.Attempt, configured []report.Attempt) report.Diagnosis {
	if a.Credential == "" {
		d.Cause = report.CauseAuthMissing
		d.Summary = fmt.Sprintf("The server answers %s %s and no credential was sent: it wants one.", status(a), where(a))
		if a.Status == 401 {
			if ch := headerValue(a.Headers, "Www-Authenticate"); ch != "" {
				d.Summary = fmt.Sprintf("The server answers %s %s (WWW-Authenticate: %s) and no credential was sent.", status(a), where(a), ch)
			}
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
	if a.Status == 401 {
		d.Summary = fmt.Sprintf("The server answers 401 %s although a credential was sent in the %s: it does not recognise it (wrong place, name or encoding, or revoked).", where(a), a.Credential)
		d.Hints = []string{
			fmt.Sprintf("Check the server reads the credential from the %s under the configured name; a JWT in a URL must be URL-encoded (encodeURIComponent).", a.Credential),
			"401 means \"who are you?\": the credential is missing or unrecognisable, not forbidden.",
		}
		return d
	}
	d.Summary = fmt.Sprintf("The server answers 403 %s to a live credential (sent in the %s), whatever the Origin, %s: the credential is valid but not allowed.", where(a), a.Credential, scope)
	d.Hints = []string{
		"403 with a valid token is authorization or policy: check the account's permissions for this resource (room, channel, tenant) and any IP or origin policy tied to the token.",
		"Look for the rejection in the server's logs by the trace id: the reason (\"forbidden\", \"scope\", \"origin\") is almost always logged there.",
	}
	return d
}

func postHandshake(d report.Diagnosis, a report.Attempt, expect bool) report.Diagnosis {
	d.Cause = report.CausePostHandshakeRejected
	switch {
	case a.CloseCode == 1008 || (a.CloseCode >= 4000 && a.CloseCode <= 4999):
		d.Summary = fmt.Sprintf("The upgrade succeeds %s, then the server closes with %d: it rejects the connection after the handshake (first-message auth or policy).", where(a), a.CloseCode)
	case a.CloseCode != 0:
		d.Summary = fmt.Sprintf("The upgrade succeeds %s, then the server closes with %d before the expected exchange.", where(a), a.CloseCode)
	default:
		d.Summary = fmt.Sprintf("The upgrade succeeds %s but the exchange after it fails: %s.", where(a), a.Error)
	}
	d.Hints = []string{
		"Check the first message the server expects (its auth message format and the token in it) and the reply it sends; close codes 4000-4999 are the application's own.",
	}
	if expect {
		d.Hints = append(d.Hints, "If the server's reply changed on purpose, update expect: in the check.")
	}
	return d
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

func vendorName(v string) string {
	switch v {
	case "cloudflare":
		return "Cloudflare edge"
	case "aws-waf":
		return "AWS WAF"
	case "aws-cloudfront":
		return "CloudFront edge"
	case "akamai":
		return "Akamai edge"
	case "fastly":
		return "Fastly edge"
	case "nginx":
		return "nginx edge"
	}
	return "CDN"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
