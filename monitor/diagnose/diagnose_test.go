package diagnose_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/report"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Evidence as real servers produce it.
var (
	ok101 = report.Attempt{Status: 101, OK: true, Reason: "Switching Protocols",
		Headers: map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}}
	cfChallenge = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{
		"Server": "cloudflare", "Cf-Ray": "8a1b2c3d4e5f6789-IAD", "Cf-Mitigated": "challenge"},
		Body: "<!DOCTYPE html><html lang=\"en-US\"><head><title>Just a moment...</title>"}
	awsWAF = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{
		"Server": "CloudFront", "X-Amz-Cf-Id": "q1w2e3==", "X-Cache": "Error from cloudfront"},
		Body: "<H1>403 ERROR</H1><H2>The request could not be satisfied.</H2>Request blocked. We can't connect to the server"}
	akamai = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{"Server": "AkamaiGHost"},
		Body: "<HTML><HEAD><TITLE>Access Denied</TITLE></HEAD><BODY>You don't have permission... Reference&#32;#18.6f2e1002.1700000000.1a2b3c</BODY>"}
	fastly403 = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{
		"X-Served-By": "cache-iad-kiad7000123-IAD", "Via": "1.1 varnish"}, Body: "Forbidden"}
	nginx403 = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{"Server": "nginx/1.22.1"},
		Body: "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>nginx/1.22.1</center>"}
	gorillaOrigin = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		Body: "Forbidden\nwebsocket: request origin not allowed by Upgrader.CheckOrigin\n"}
	goStripped = report.Attempt{Status: 400, Reason: "Bad Request", Headers: map[string]string{"Server": "nginx/1.22.1"},
		Body: "Bad Request\nwebsocket: the client is not using the websocket protocol: 'upgrade' token not found in 'Connection' header\n"}
	coder426 = report.Attempt{Status: 426, Reason: "Upgrade Required", Headers: map[string]string{"Server": "nginx/1.22.1"},
		Body: "WebSocket protocol violation: Connection header \"close\" does not contain Upgrade\n"}
	django = report.Attempt{Status: 403, Reason: "Forbidden", Headers: map[string]string{"Content-Type": "text/html; charset=utf-8"},
		Body: "<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p>"}
	unauthorized = report.Attempt{Status: 401, Reason: "Unauthorized", Headers: map[string]string{"Www-Authenticate": `Bearer realm="ws"`}, Body: "unauthorized"}
	forbidden    = report.Attempt{Status: 403, Reason: "Forbidden", Body: "forbidden"}
)

// at places an evidence template at a vantage, route and variant.
// goH2Refused is Go's net/http with GODEBUG=http2xconnect=1 in front of
// coder/websocket's Accept, answering Chromium's extended CONNECT (seen
// here with monitor/testbed/h2server).
var goH2Refused = report.Attempt{Status: 426, Reason: "Upgrade Required",
	Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Upgrade": "websocket", "X-Content-Type-Options": "nosniff"},
	Body:    "WebSocket protocol violation: Connection header \"\" does not contain Upgrade\n"}

// sioRefused is what the probe records when a Socket.IO 4 middleware
// calls next(new Error(reason)): the server's 44{"message": reason}.
func sioRefused(reason string) report.Attempt {
	return report.Attempt{Status: 101, Protocol: "socket.io", Refusal: reason,
		Messages: []string{`0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`, `44{"message":"` + reason + `"}`},
		Steps:    []report.Step{{Name: "engine.io open", Result: report.StepOK}, {Name: "namespace connect", Result: report.StepRefused}},
		Error:    `expect: namespace connect: refused: "` + reason + `"`}
}

func overH2(a *report.Attempt) { a.Transport = report.TransportHTTP2 }

func at(a report.Attempt, vantage string, route report.Route, variant report.Variant, mods ...func(*report.Attempt)) report.Attempt {
	a.Vantage, a.Route, a.Variant = vantage, route, variant
	for _, m := range mods {
		m(&a)
	}
	return a
}

func withOrigin(o string) func(*report.Attempt) { return func(a *report.Attempt) { a.Origin = o } }
func withCredential(in string) func(*report.Attempt) {
	return func(a *report.Attempt) { a.Credential = in }
}

const (
	cdn    = report.RouteCDN
	direct = report.RouteDirect
	cfg    = report.VariantConfigured
)

func jwt(exp time.Time) *diagnose.Token {
	return &diagnose.Token{In: "query", JWT: true, IssuedAt: exp.Add(-time.Hour), ExpiresAt: exp}
}

func TestDiagnose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      diagnose.Input
		cause   report.Cause
		route   report.Route
		vantage string
		vendor  string
		hintHas string
		summHas string
	}{
		{name: "healthy", in: diagnose.Input{Attempts: []report.Attempt{at(ok101, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseOK, route: cdn, vantage: "us"},
		{name: "h2: advertised extended CONNECT refused by an HTTP/1.1-only handler, HTTP/1.1 upgrades",
			in:    diagnose.Input{Attempts: []report.Attempt{at(ok101, "us", cdn, cfg), at(goH2Refused, "us", cdn, cfg, overH2)}},
			cause: report.CauseH2PathBroken, route: cdn, vantage: "us", summHas: "426 Upgrade Required to the extended CONNECT", hintHas: "http2xconnect"},
		{name: "h2: opened, then broken",
			in: diagnose.Input{Attempts: []report.Attempt{at(ok101, "us", cdn, cfg),
				at(report.Attempt{Status: 200, CloseCode: 1011, Error: "expect: closed 1011"}, "us", cdn, cfg, overH2)}},
			cause: report.CauseH2PathBroken, route: cdn, vantage: "us", summHas: "then breaks it"},
		{name: "h2: not offered is healthy",
			in: diagnose.Input{Attempts: []report.Attempt{at(ok101, "us", cdn, cfg),
				at(report.Attempt{OK: true, NotOffered: "h2 WebSocket not offered: the server chose http/1.1 in ALPN"}, "us", cdn, cfg, overH2)}},
			cause: report.CauseOK, route: cdn, vantage: "us"},
		{name: "h2: both paths refused, the HTTP/1.1 attempts explain it",
			in: diagnose.Input{Attempts: []report.Attempt{at(cfChallenge, "us", cdn, cfg), at(cfChallenge, "us", cdn, cfg, overH2),
				at(ok101, "us", direct, cfg), at(ok101, "us", direct, cfg, overH2)}},
			cause: report.CauseCDNBlocked, route: cdn, vantage: "us", vendor: "cloudflare"},
		{name: "cloudflare challenge on cdn, direct ok",
			in:    diagnose.Input{Attempts: []report.Attempt{at(cfChallenge, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseCDNBlocked, route: cdn, vantage: "us", vendor: "cloudflare", hintHas: "WAF > Custom rules", summHas: "challenge"},
		{name: "aws waf", in: diagnose.Input{Attempts: []report.Attempt{at(awsWAF, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseCDNBlocked, route: cdn, vendor: "aws-waf", vantage: "us", hintHas: "AWSManagedRulesCommonRuleSet"},
		{name: "akamai", in: diagnose.Input{Attempts: []report.Attempt{at(akamai, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseCDNBlocked, route: cdn, vendor: "akamai", vantage: "us", hintHas: "Reference #"},
		{name: "fastly", in: diagnose.Input{Attempts: []report.Attempt{at(fastly403, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseCDNBlocked, route: cdn, vendor: "fastly", vantage: "us", hintHas: "upgrade"},
		{name: "nginx edge return 403", in: diagnose.Input{Attempts: []report.Attempt{at(nginx403, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseCDNBlocked, route: cdn, vendor: "nginx", vantage: "us", hintHas: "return 403"},
		{name: "stripped upgrade: gorilla 400 through nginx",
			in:    diagnose.Input{Attempts: []report.Attempt{at(goStripped, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseProxyStrippedUpgrade, route: cdn, vendor: "nginx", vantage: "us", hintHas: "proxy_http_version 1.1"},
		{name: "stripped upgrade: coder 426",
			in:    diagnose.Input{Attempts: []report.Attempt{at(coder426, "us", cdn, cfg), at(ok101, "us", direct, cfg)}},
			cause: report.CauseProxyStrippedUpgrade, route: cdn, vendor: "nginx", vantage: "us", hintHas: "Upgrade $http_upgrade"},
		{name: "stripped upgrade: 200 page without upgrade",
			in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 200, Reason: "OK", Body: "<html>app</html>"}, "us", cdn, cfg),
				at(ok101, "us", direct, cfg)}},
			cause: report.CauseProxyStrippedUpgrade, route: cdn, vantage: "us"},
		{name: "vantage blocked on cdn",
			in:    diagnose.Input{Attempts: []report.Attempt{at(ok101, "us", cdn, cfg), at(nginx403, "eu", cdn, cfg)}},
			cause: report.CauseVantageBlocked, route: cdn, vantage: "eu", vendor: "nginx", hintHas: "allowlists", summHas: "101 from us"},
		{name: "precedence: cdn blocked beats an origin variant that passed",
			in: diagnose.Input{Attempts: []report.Attempt{
				at(cfChallenge, "us", cdn, cfg, withOrigin("https://app.test")), at(ok101, "us", direct, cfg, withOrigin("https://app.test")),
				at(ok101, "us", cdn, report.VariantNoOrigin)}},
			cause: report.CauseCDNBlocked, route: cdn, vantage: "us", vendor: "cloudflare"},
		// Both routes refuse and the CDN's answer is its own challenge: the
		// challenge says nothing about the origin, whose refusal is the
		// verdict; the edge is named beside it (TestIncidentSixCells' story).
		{name: "both routes: cloudflare challenge on cdn, origin wants a credential",
			in:    diagnose.Input{Attempts: []report.Attempt{at(cfChallenge, "us", cdn, cfg), at(forbidden, "us", direct, cfg)}},
			cause: report.CauseAuthMissing, route: direct, vantage: "us", hintHas: "WAF > Custom rules", summHas: "Through cdn the Cloudflare edge answers with a challenge page too (403 Forbidden)"},
		{name: "both routes: akamai block page on cdn, origin rejects the Origin",
			in: diagnose.Input{Attempts: []report.Attempt{
				at(akamai, "us", cdn, cfg, withOrigin("https://evil.test")), at(gorillaOrigin, "us", direct, cfg, withOrigin("https://evil.test")),
				at(akamai, "us", cdn, report.VariantNoOrigin), at(ok101, "us", direct, report.VariantNoOrigin)}},
			cause: report.CauseOriginRejected, route: direct, vantage: "us", hintHas: "Reference #", summHas: "refuses it too"},
		{name: "both routes: the origin's 403 relayed by the cdn is not the edge's",
			in:    diagnose.Input{Attempts: []report.Attempt{at(forbidden, "us", cdn, cfg), at(forbidden, "us", direct, cfg)}},
			cause: report.CauseAuthMissing, route: cdn, vantage: "us", hintHas: "Configure token"},
		{name: "origin rejected: gorilla CheckOrigin, no-origin passes",
			in: diagnose.Input{Attempts: []report.Attempt{
				at(gorillaOrigin, "us", cdn, cfg, withOrigin("https://evil.test")), at(gorillaOrigin, "us", direct, cfg, withOrigin("https://evil.test")),
				at(ok101, "us", cdn, report.VariantNoOrigin), at(gorillaOrigin, "us", cdn, report.VariantSameOrigin)}},
			cause: report.CauseOriginRejected, route: cdn, vantage: "us", hintHas: "allowed origins", summHas: "https://evil.test"},
		{name: "origin rejected on the direct route while the CDN refuses for its own reason",
			in: diagnose.Input{Attempts: []report.Attempt{
				at(cfChallenge, "us", cdn, cfg, withOrigin("https://app.test")), at(gorillaOrigin, "us", direct, cfg, withOrigin("https://app.test")),
				at(cfChallenge, "us", cdn, report.VariantNoOrigin), at(cfChallenge, "us", cdn, report.VariantSameOrigin),
				at(ok101, "us", direct, report.VariantNoOrigin), at(gorillaOrigin, "us", direct, report.VariantSameOrigin)}},
			cause: report.CauseOriginRejected, route: direct, vantage: "us", hintHas: "allowed origins"},
		{name: "one vantage refused through the CDN while the others pass: its address, not the WAF for all",
			in: diagnose.Input{Attempts: []report.Attempt{
				at(ok101, "us", cdn, cfg), at(ok101, "us", direct, cfg),
				at(nginx403, "ap", cdn, cfg), at(ok101, "ap", direct, cfg)}},
			cause: report.CauseVantageBlocked, route: cdn, vantage: "ap", vendor: "nginx"},
		{name: "origin required: same-origin passes",
			in:    diagnose.Input{Attempts: []report.Attempt{at(forbidden, "us", cdn, cfg), at(ok101, "us", cdn, report.VariantSameOrigin)}},
			cause: report.CauseOriginRequired, route: cdn, vantage: "us", hintHas: "origin:"},
		{name: "token expired",
			in: diagnose.Input{Attempts: []report.Attempt{at(forbidden, "us", cdn, cfg, withCredential("query"))},
				Token: jwt(now.Add(-time.Minute)), Now: now, Timeout: 10 * time.Second},
			cause: report.CauseTokenExpired, route: cdn, vantage: "us", summHas: "expired at", hintHas: "Refresh"},
		{name: "token expires within the timeout",
			in: diagnose.Input{Attempts: []report.Attempt{at(unauthorized, "us", cdn, cfg, withCredential("query"))},
				Token: jwt(now.Add(5 * time.Second)), Now: now, Timeout: 10 * time.Second},
			cause: report.CauseTokenExpired, route: cdn, vantage: "us", summHas: "within the check's"},
		{name: "precedence: expired token beats CSRF page",
			in: diagnose.Input{Attempts: []report.Attempt{at(django, "us", cdn, cfg, withCredential("cookie"))},
				Token: jwt(now.Add(-time.Hour)), Now: now, Timeout: time.Second},
			cause: report.CauseTokenExpired, route: cdn, vantage: "us"},
		{name: "csrf django",
			in:    diagnose.Input{Attempts: []report.Attempt{at(django, "us", cdn, cfg, withOrigin("https://app.test")), at(django, "us", cdn, report.VariantNoOrigin)}},
			cause: report.CauseCSRFRejected, route: cdn, vantage: "us", hintHas: "Channels"},
		{name: "csrf asp.net antiforgery 400",
			in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 400, Reason: "Bad Request",
				Headers: map[string]string{"Server": "Kestrel"}, Body: "The required antiforgery cookie \".AspNetCore.Antiforgery.x\" is not present."}, "us", cdn, cfg)}},
			cause: report.CauseCSRFRejected, route: cdn, vantage: "us", hintHas: "UseWebSockets"},
		{name: "auth missing: 401 with WWW-Authenticate",
			in:    diagnose.Input{Attempts: []report.Attempt{at(unauthorized, "us", cdn, cfg), at(unauthorized, "us", cdn, report.VariantSameOrigin)}},
			cause: report.CauseAuthMissing, route: cdn, vantage: "us", summHas: "WWW-Authenticate", hintHas: "token:"},
		{name: "auth missing: 403 and no credential configured",
			in:    diagnose.Input{Attempts: []report.Attempt{at(forbidden, "us", cdn, cfg), at(forbidden, "us", cdn, report.VariantSameOrigin)}},
			cause: report.CauseAuthMissing, route: cdn, vantage: "us"},
		{name: "auth rejected: live token, 403 on every route and variant",
			in: diagnose.Input{Attempts: []report.Attempt{
				at(forbidden, "us", cdn, cfg, withCredential("header"), withOrigin("https://app.test")),
				at(forbidden, "us", direct, cfg, withCredential("header"), withOrigin("https://app.test")),
				at(forbidden, "us", cdn, report.VariantNoOrigin, withCredential("header")),
				at(forbidden, "us", cdn, report.VariantSameOrigin, withCredential("header")),
				at(unauthorized, "us", cdn, report.VariantNoToken)},
				Token: jwt(now.Add(time.Hour)), Now: now},
			cause: report.CauseAuthRejected, route: cdn, vantage: "us", summHas: "every route"},
		{name: "post handshake 4003",
			in:    diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 101, CloseCode: 4003, Error: "expect: server closed with 4003 while waiting for the first message"}, "us", cdn, cfg)}},
			cause: report.CausePostHandshakeRejected, route: cdn, vantage: "us", summHas: "4003"},
		{name: "expect not met",
			in:    diagnose.Input{ExpectConfigured: true, Attempts: []report.Attempt{at(report.Attempt{Status: 101, Error: `expect: first message did not match "pong"`}, "us", cdn, cfg)}},
			cause: report.CauseUnexpectedReply, route: cdn, vantage: "us", hintHas: "expect:"},
		{name: "steps: Socket.IO namespace refused by middleware",
			in:    diagnose.Input{Attempts: []report.Attempt{at(sioRefused("not authorized"), "us", cdn, cfg)}},
			cause: report.CausePostHandshakeRejected, route: cdn, vantage: "us", summHas: `Socket.IO server refuses the session (namespace connect): "not authorized"`, hintHas: "socket.handshake.auth"},
		{name: "steps: Socket.IO says the token expired",
			in:    diagnose.Input{Attempts: []report.Attempt{at(sioRefused("token expired"), "us", cdn, cfg)}},
			cause: report.CauseTokenExpired, route: cdn, vantage: "us", summHas: `"token expired"`},
		{name: "steps: graphql-ws onConnect false closes 4403",
			in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 101, Protocol: "graphql-ws", CloseCode: 4403, CloseReason: "Forbidden",
				Steps: []report.Step{{Name: "connection_init", Result: report.StepClosed}}, Error: `expect: connection_init: the server closed with 4403 "Forbidden"`}, "us", cdn, cfg)}},
			cause: report.CausePostHandshakeRejected, route: cdn, vantage: "us", summHas: "closes with 4403 at connection_init", hintHas: "onConnect"},
		{name: "steps: nothing came within the step's time",
			in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 101,
				Steps: []report.Step{{Name: "step 1", Result: report.StepOK}, {Name: "step 2", Result: report.StepTimeout}}, Error: `expect: step 2: no message within 5s (expecting "^ok")`}, "us", cdn, cfg)}},
			cause: report.CauseUnexpectedReply, route: cdn, vantage: "us", summHas: "step 2"},
		{name: "not found", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 404, Reason: "Not Found", Body: "404 page not found"}, "us", cdn, cfg)}},
			cause: report.CauseNotFound, route: cdn, vantage: "us"},
		{name: "redirect", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 301, Reason: "Moved Permanently",
			Headers: map[string]string{"Location": "wss://new.example.com/ws"}}, "us", cdn, cfg)}},
			cause: report.CauseRedirect, route: cdn, vantage: "us", summHas: "wss://new.example.com/ws"},
		{name: "server error", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 502, Reason: "Bad Gateway"}, "us", cdn, cfg)}},
			cause: report.CauseServerError, route: cdn, vantage: "us"},
		{name: "unexpected", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Status: 418, Reason: "I'm a teapot"}, "us", cdn, cfg)}},
			cause: report.CauseUnexpectedStatus, route: cdn, vantage: "us"},
		{name: "dns", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Error: "dns: lookup chat.example.com: no such host"}, "us", cdn, cfg)}},
			cause: report.CauseDNSError, route: cdn, vantage: "us"},
		{name: "connect", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Error: "connect: connection refused (127.0.0.1:9)"}, "us", cdn, cfg)}},
			cause: report.CauseConnectError, route: cdn, vantage: "us"},
		{name: "tls expired", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Error: "tls: certificate expired (not after 2026-01-01T00:00:00Z)"}, "us", direct, cfg)}},
			cause: report.CauseTLSError, route: direct, vantage: "us", summHas: "expired", hintHas: "Renew"},
		{name: "tls name mismatch", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Error: "tls: name mismatch: x509: certificate is valid for a.test, not b.test"}, "us", cdn, cfg)}},
			cause: report.CauseTLSError, route: cdn, vantage: "us", hintHas: "server_name"},
		{name: "timeout", in: diagnose.Input{Attempts: []report.Attempt{at(report.Attempt{Error: "timeout: waiting for the response headers"}, "us", cdn, cfg)}},
			cause: report.CauseTimeout, route: cdn, vantage: "us"},
		{name: "direct-only failure picks direct", in: diagnose.Input{Attempts: []report.Attempt{at(ok101, "us", cdn, cfg), at(report.Attempt{Error: "connect: connection refused (10.0.0.1:443)"}, "us", direct, cfg)}},
			cause: report.CauseConnectError, route: direct, vantage: "us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.Now.IsZero() {
				tt.in.Now = now
			}
			d := diagnose.Diagnose(tt.in)
			if d.Cause != tt.cause || d.Route != tt.route || d.Vantage != tt.vantage || d.Vendor != tt.vendor {
				t.Fatalf("got %s route %s vantage %s vendor %q, want %s %s %s %q\nsummary: %s",
					d.Cause, d.Route, d.Vantage, d.Vendor, tt.cause, tt.route, tt.vantage, tt.vendor, d.Summary)
			}
			if d.Summary == "" || (tt.cause != report.CauseOK && len(d.Hints) == 0) {
				t.Fatalf("no summary or hints: %+v", d)
			}
			if !strings.Contains(strings.Join(d.Hints, "\n"), tt.hintHas) {
				t.Errorf("hints %q lack %q", d.Hints, tt.hintHas)
			}
			if !strings.Contains(d.Summary, tt.summHas) {
				t.Errorf("summary %q lacks %q", d.Summary, tt.summHas)
			}
		})
	}
}

func TestWarningsOnHealthyRun(t *testing.T) {
	t.Parallel()
	a := at(ok101, "us", cdn, cfg)
	a.CertNotAfter = now.Add(5 * 24 * time.Hour)
	d := diagnose.Diagnose(diagnose.Input{Attempts: []report.Attempt{a}, Now: now,
		Token: &diagnose.Token{JWT: true, IssuedAt: now.Add(-59 * time.Minute), ExpiresAt: now.Add(time.Minute)}})
	hints := strings.Join(d.Hints, "\n")
	if d.Cause != report.CauseOK || !strings.Contains(hints, "expires in 5 days") || !strings.Contains(hints, "under 10%") {
		t.Fatalf("%+v", d)
	}
	// Far from expiry: no warnings.
	a.CertNotAfter = now.Add(90 * 24 * time.Hour)
	d = diagnose.Diagnose(diagnose.Input{Attempts: []report.Attempt{a}, Now: now,
		Token: &diagnose.Token{JWT: true, IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour)}})
	if len(d.Hints) != 0 {
		t.Fatalf("unexpected hints %q", d.Hints)
	}
}

func TestVendor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a    report.Attempt
		want string
	}{{cfChallenge, "cloudflare"}, {awsWAF, "aws-waf"}, {akamai, "akamai"}, {fastly403, "fastly"}, {nginx403, "nginx"},
		{report.Attempt{Headers: map[string]string{"X-Amzn-Waf-Action": "block"}}, "aws-waf"},
		{report.Attempt{Headers: map[string]string{"X-Amz-Cf-Id": "abc", "Via": "1.1 abc.cloudfront.net (CloudFront)"}}, "aws-cloudfront"},
		{forbidden, ""}} {
		if got := diagnose.Vendor(tt.a.Headers, tt.a.Body); got != tt.want {
			t.Errorf("Vendor(%v) = %q, want %q", tt.a.Headers, got, tt.want)
		}
	}
}

func BenchmarkDiagnose(b *testing.B) {
	in := diagnose.Input{Now: now, Attempts: []report.Attempt{
		at(cfChallenge, "us", cdn, cfg, withOrigin("https://app.test")), at(ok101, "us", direct, cfg),
		at(cfChallenge, "us", cdn, report.VariantNoOrigin), at(cfChallenge, "us", cdn, report.VariantSameOrigin)}}
	for b.Loop() {
		diagnose.Diagnose(in)
	}
}

var known = map[report.Cause]bool{}

func init() {
	for _, c := range []report.Cause{report.CauseOK, report.CauseCDNBlocked, report.CauseProxyStrippedUpgrade, report.CauseVantageBlocked,
		report.CauseOriginRejected, report.CauseOriginRequired, report.CauseTokenExpired, report.CauseAuthMissing, report.CauseAuthRejected,
		report.CauseCSRFRejected, report.CausePostHandshakeRejected, report.CauseNotFound, report.CauseRedirect, report.CauseServerError,
		report.CauseUnexpectedStatus, report.CauseDNSError, report.CauseConnectError, report.CauseTLSError, report.CauseTimeout,
		report.CauseRateLimited} {
		known[c] = true
	}
}

// FuzzDiagnose: any status, headers, body, challenge, close reason and
// variants give a known cause, a summary, and never a panic.
func FuzzDiagnose(f *testing.F) {
	f.Add(403, "Server", "cloudflare", "<title>Just a moment...</title>", "", "", true, false)
	f.Add(400, "Server", "nginx", "Bad Request", "", "", true, false)
	f.Add(401, "Content-Type", "application/json", `{"error":{"message":"token expired"}}`, `Bearer error="invalid_token", error_description="The token expired"`, "", false, true)
	f.Add(429, "Retry-After", "30", "rate limit", "", "", false, false)
	f.Add(101, "X", "", "", "", "invalid token", false, false)
	f.Add(0, "", "", "", "", "", false, false)
	f.Fuzz(func(t *testing.T, status int, hk, hv, body, challenge, closeReason string, withDirect, withCredential bool) {
		a := report.Attempt{Status: status, Headers: map[string]string{hk: hv, "Www-Authenticate": challenge}, Body: body,
			Vantage: "v", Route: cdn, Variant: cfg, Origin: "https://app.test", CloseReason: closeReason}
		a.OK = status == 101 && closeReason == ""
		if status == 101 && !a.OK {
			a.CloseCode = 3500
		}
		if status == 0 {
			a.Error = body
		}
		if withCredential {
			a.Credential = "query"
		}
		as := []report.Attempt{a}
		if withDirect {
			as = append(as, at(ok101, "v", direct, cfg))
		}
		if status != 0 && !a.OK {
			v := a
			v.Variant, v.Origin = report.VariantNoOrigin, ""
			as = append(as, v)
		}
		d := diagnose.Diagnose(diagnose.Input{Attempts: as, Now: now, Token: &diagnose.Token{In: "query"}})
		if !known[d.Cause] || d.Summary == "" {
			t.Fatalf("cause %q summary %q", d.Cause, d.Summary)
		}
	})
}
