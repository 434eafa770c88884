package diagnose_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/report"
)

// A refusal as a server or edge really sends it, with where that was read.
type refusal struct {
	source  string
	status  int
	reason  string
	headers map[string]string
	body    string
}

func (r refusal) attempt() report.Attempt {
	if r.reason == "" {
		r.reason = statusText[r.status]
	}
	return report.Attempt{Status: r.status, Reason: r.reason, Headers: r.headers, Body: r.body}
}

var statusText = map[int]string{200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 406: "Not Acceptable",
	426: "Upgrade Required", 429: "Too Many Requests", 503: "Service Unavailable"}

// The WebSocket servers' own refusals, as their sources write them.
var (
	gorillaForbidden = refusal{source: "gorilla/websocket v1.5.3 server.go returnError (Upgrader.CheckOrigin)",
		status: 403, headers: map[string]string{"Sec-Websocket-Version": "13", "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"},
		body: "Forbidden\n"}
	coderOrigin = refusal{source: "coder/websocket v1.8.15 accept.go authenticateOrigin",
		status: 403, headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"},
		body: "request Origin \"evil.example\" is not authorized for Host \"chat.example.com\"\n"}
	wsUnauthorized = refusal{source: "websockets/ws lib/websocket-server.js abortHandshake (verifyClient returned false)",
		status: 401, headers: map[string]string{"Connection": "close", "Content-Type": "text/html"}, body: "Unauthorized"}
	wsTokenExpired = refusal{source: "websockets/ws verifyClient(info, cb) with cb(false, 401, message, headers): message and headers are the app's",
		status: 401, headers: map[string]string{"Connection": "close", "Content-Type": "text/html"}, body: "Token expired"}
	engineTransport = refusal{source: "socketio/socket.io packages/engine.io/lib/server.ts abortUpgrade (UNKNOWN_TRANSPORT)",
		status: 400, headers: map[string]string{"Connection": "close", "Content-type": "text/html"}, body: "Transport unknown"}
	signalrExpired = refusal{source: "dotnet/aspnetcore JwtBearerHandler.HandleChallengeAsync (IncludeErrorDetails, SecurityTokenExpiredException)",
		status: 401, headers: map[string]string{"Www-Authenticate": `Bearer error="invalid_token", error_description="The token expired at '11/30/2026 09:00:00'"`}}
	signalrSignature = refusal{source: "dotnet/aspnetcore JwtBearerHandler.HandleChallengeAsync (SecurityTokenInvalidSignatureException)",
		status: 401, headers: map[string]string{"Www-Authenticate": `Bearer error="invalid_token", error_description="The signature is invalid"`}}
	springOrigin = refusal{source: "spring-framework spring-websocket OriginHandshakeInterceptor.beforeHandshake (403, no body)",
		status: 403}
	springCORS = refusal{source: "spring-framework DefaultCorsProcessor.rejectRequest",
		status: 403, body: "Invalid CORS request"}
	springUpgrade = refusal{source: "spring-framework AbstractHandshakeHandler.handleInvalidUpgradeHeader",
		status: 400, body: `Can "Upgrade" only to "WebSocket".`}
	phoenixOrigin = refusal{source: "phoenixframework/phoenix lib/phoenix/socket/transport.ex check_origin (403, empty body)",
		status: 403}
	actionCableOrigin = refusal{source: "rails/rails actioncable/lib/action_cable/connection/base.rb respond_to_invalid_request",
		status: 404, headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, body: "Page not found"}
	daphneDenied = refusal{source: "django/daphne daphne/ws_protocol.py serverReject: ConnectionDeny(403, \"Access denied\")",
		status: 403, reason: "Access denied"}
	uwsParser = refusal{source: "uNetworking/uWebSockets src/HttpErrors.h",
		status: 400, body: "<h1>Bad Request</h1><hr><i>uWebSockets/20 Server</i>"}
	apigwDeny = refusal{source: "AWS API Gateway gateway responses (ACCESS_DENIED), docs: supported-gateway-response-types",
		status: 403, headers: map[string]string{"X-Amzn-Requestid": "5b1c3e1a-6f0d-4a3f-9f11-0c2a3b4c5d6e", "X-Amz-Apigw-Id": "UxPyCE8NoAMFxBw=",
			"X-Amzn-Errortype": "AccessDeniedException", "Content-Type": "application/json"},
		body: `{"message":"User is not authorized to access this resource with an explicit deny"}`}
	kongNoKey = refusal{source: "Kong/kong kong/plugins/key-auth/handler.lua",
		status: 401, headers: map[string]string{"Server": "kong/3.4.2", "Www-Authenticate": `Key realm="kong"`, "X-Kong-Response-Latency": "1",
			"Content-Type": "application/json; charset=utf-8"},
		body: `{"message":"No API key found in request","request_id":"4f2c6b7a1d9e0f3b5a7c9e1d3f5b7a9c"}`}
	jsonTenant = refusal{source: "an application's JSON error (the shape of RFC 7807 and most REST APIs)",
		status: 403, headers: map[string]string{"Content-Type": "application/json"},
		body: `{"error":{"code":"tenant_suspended","message":"Tenant acme is suspended"}}`}
)

// The edges' own refusals.
var (
	cf1020 = refusal{source: "Cloudflare 1xxx errors (developers.cloudflare.com ... troubleshooting-cloudflare-1xxx-errors), CF-RAY format",
		status: 403, headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8c2f1a0b3d4e5f60-FRA", "Content-Type": "text/html; charset=UTF-8"},
		body: `<title>Access denied | chat.example.com used Cloudflare to restrict access</title>... Error code: 1020 ... Cloudflare Ray ID: 8c2f1a0b3d4e5f60`}
	cf1015 = refusal{source: "Cloudflare 1015 rate limited",
		status: 429, headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8c2f1a0b3d4e5f61-AMS", "Retry-After": "60"},
		body: `<title>Access denied | chat.example.com used Cloudflare to restrict access</title>Error 1015 You are being rate limited`}
	cloudfrontGeo = refusal{source: "repost.aws cloudfront-troubleshoot-403-errors (geo restriction page)",
		status: 403, headers: map[string]string{"Server": "CloudFront", "X-Amz-Cf-Pop": "FRA56-P1", "X-Amz-Cf-Id": "Zx0abc==", "X-Cache": "Error from cloudfront"},
		body: "<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD><BODY><H1>403 ERROR</H1>The Amazon CloudFront distribution is configured to block access from your country.<HR>Generated by cloudfront (CloudFront)</BODY></HTML>"}
	albDeny = refusal{source: "AWS ALB fixed-response / WAF 403 (Server: awselb/2.0, observed)",
		status: 403, headers: map[string]string{"Server": "awselb/2.0", "Content-Type": "text/html"},
		body: "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>"}
	fastlyNGWAF = refusal{source: "docs.fastly.com ngwaf using-custom-agent-response-codes (406 default), X-Served-By format",
		status: 406, headers: map[string]string{"X-Served-By": "cache-fra-eddf8230049-FRA", "X-Cache": "MISS", "Via": "1.1 varnish"}, body: "406 Not Acceptable"}
	imperva = refusal{source: "Imperva block page (wafw00f incapsula plugin, observed), often HTTP 200",
		status: 200, headers: map[string]string{"X-Cdn": "Imperva", "X-Iinfo": "10-17146307-17146311 NNNN CT(34 109 0) RT(1700000000000 0) q(0 0 0 -1) r(0 0) U6"},
		body: `<html><head><META NAME="robots" CONTENT="noindex,nofollow"></head><body>Request unsuccessful. Incapsula incident ID: 1250000150117458661-54879512</body></html>`}
	sucuri = refusal{source: "Sucuri firewall block page (wafw00f sucuri plugin, observed)",
		status: 403, headers: map[string]string{"Server": "Sucuri/Cloudproxy", "X-Sucuri-Id": "19037", "X-Sucuri-Block": "GEO02"},
		body: "<title>Sucuri WebSite Firewall - Access Denied</title><link rel=\"stylesheet\" href=\"https://cdn.sucuri.net/sucuri-firewall-block.css\">"}
	f5ASM = refusal{source: "clouddocs.f5.com waf_response_pages (default blocking page)",
		status: 200, body: "<html><head><title>Request Rejected</title></head><body>The requested URL was rejected. Please consult with your administrator.<br><br>Your support ID is: 11436785621359098234</body></html>"}
	frontDoor = refusal{source: "learn.microsoft.com waf-front-door-configure-custom-response-code (default 403 body)",
		status: 403, headers: map[string]string{"X-Azure-Ref": "0a1b2c3d4e5f6789ABCDEFGHIJKLMNOPQRSTUVWXYZabcd"}, body: "The request is blocked."}
	appGW = refusal{source: "Azure Application Gateway v2 WAF 403 page (wafw00f applicationgateway plugin)",
		status: 403, headers: map[string]string{"Server": "Microsoft-Azure-Application-Gateway/v2"},
		body: "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>"}
	cloudArmor = refusal{source: "Cloud Armor default deny page (observed), Via: 1.1 google",
		status: 403, headers: map[string]string{"Via": "1.1 google", "Content-Type": "text/html; charset=UTF-8"},
		body: `<!doctype html><meta charset="utf-8"><meta name=viewport content="width=device-width, initial-scale=1"><title>403</title>403 Forbidden`}
	envoyRBAC = refusal{source: "envoyproxy/envoy source/extensions/filters/http/rbac/rbac_filter.cc",
		status: 403, headers: map[string]string{"Server": "istio-envoy", "Content-Type": "text/plain"}, body: "RBAC: access denied"}
	kongACL = refusal{source: "Kong acl plugin (Server: kong on Kong's own answers, Kong configuration reference)",
		status: 403, headers: map[string]string{"Server": "kong/3.4.2", "X-Kong-Response-Latency": "0"},
		body: `{"message":"You cannot consume this service"}`}
	vercelDeny = refusal{source: "vercel.com/docs/headers/request-headers (x-vercel-id), x-vercel-mitigated observed",
		status: 403, headers: map[string]string{"Server": "Vercel", "X-Vercel-Id": "fra1::9xk2z-1700000000000-2a1b3c4d5e6f", "X-Vercel-Mitigated": "deny"},
		body: "Forbidden"}
	netlify = refusal{source: "http.dev/x-nf-request-id (Server: Netlify)",
		status: 403, headers: map[string]string{"Server": "Netlify", "X-Nf-Request-Id": "01KJD9FATBP38BK9EPSN617QKP"}, body: "Forbidden"}
	haproxyDeny = refusal{source: "haproxy/haproxy src/http.c http_err_msgs (403)",
		status: 403, headers: map[string]string{"Cache-Control": "no-cache", "Connection": "close", "Content-Type": "text/html"},
		body: "<html><body><h1>403 Forbidden</h1>\nRequest forbidden by administrative rules.\n</body></html>\n"}
	haproxyLimit = refusal{source: "haproxy/haproxy src/http.c http_err_msgs (429)",
		status: 429, headers: map[string]string{"Cache-Control": "no-cache", "Connection": "close", "Content-Type": "text/html"},
		body: "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n"}
	traefikAllow = refusal{source: "traefik/traefik pkg/middlewares/ipallowlist (403, body Forbidden, no identifying header)",
		status: 403, body: "Forbidden"}
)

// products are the names hints may use, by edge id: a hint names the
// product that answered and no other.
var products = map[string][]string{
	"cloudflare": {"Cloudflare"}, "akamai": {"Akamai"}, "aws-cloudfront": {"CloudFront", "AWS WAF"}, "aws-waf": {"AWS WAF", "CloudFront"},
	"aws-alb": {"ALB", "AWS WAF"}, "aws-apigateway": {"API Gateway", "CloudWatch"}, "fastly": {"Fastly"}, "imperva": {"Imperva"},
	"sucuri": {"Sucuri"}, "f5": {"F5", "ASM"}, "azure-frontdoor": {"Azure Front Door", "Front Door"}, "azure-appgw": {"Azure Application Gateway", "Application Gateway"},
	"google-cloud-armor": {"Cloud Armor"}, "google-cloud": {"Google", "Cloud Run", "IAP"}, "envoy": {"Envoy", "Istio", "istioctl"},
	"kong": {"Kong"}, "vercel": {"Vercel"}, "netlify": {"Netlify"}, "haproxy": {"HAProxy"}, "nginx": {"nginx"},
}

var productWord = func() *regexp.Regexp {
	var names []string
	for _, ns := range products {
		for _, n := range ns {
			names = append(names, regexp.QuoteMeta(n))
		}
	}
	names = append(names, "Traefik")
	return regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b`)
}()

// foreignProducts lists the products hints name that are not vendor's.
func foreignProducts(vendor string, hints []string) []string {
	var out []string
	for _, m := range productWord.FindAllString(strings.Join(hints, "\n"), -1) {
		ok := false
		for _, n := range products[vendor] {
			if n == m {
				ok = true
			}
		}
		if !ok {
			out = append(out, m)
		}
	}
	return out
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	opaque := &diagnose.Token{In: "header"}
	type step = report.Attempt
	tests := []struct {
		name     string
		r        refusal
		attempts func(a report.Attempt) []step
		token    *diagnose.Token
		cause    report.Cause
		vendor   string
		summHas  string
		hintHas  string
		hintNot  string
	}{
		// Frameworks, alone (one route).
		{name: "gorilla CheckOrigin; without Origin it upgrades", r: gorillaForbidden,
			attempts: func(a step) []step {
				return []step{at(a, "us", cdn, cfg, withOrigin(origin)), at(ok101, "us", cdn, report.VariantNoOrigin), at(a, "us", cdn, report.VariantSameOrigin)}
			}, cause: report.CauseOriginRejected, summHas: origin},
		{name: "coder/websocket names the Origin; without Origin it upgrades", r: coderOrigin,
			attempts: func(a step) []step {
				return []step{at(a, "us", cdn, cfg, withOrigin("https://evil.example")), at(ok101, "us", cdn, report.VariantNoOrigin)}
			}, cause: report.CauseOriginRejected, summHas: `is not authorized for Host`},
		{name: "ws verifyClient false, no credential", r: wsUnauthorized,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg)} }, cause: report.CauseAuthMissing},
		{name: "ws verifyClient says the token expired (opaque token)", r: wsTokenExpired, token: opaque,
			attempts: func(a step) []step {
				return []step{at(a, "us", cdn, cfg, withCredential("header")), at(a, "us", cdn, report.VariantNoToken)}
			}, cause: report.CauseTokenExpired, summHas: `"Token expired"`, hintNot: "URL-encoded"},
		{name: "engine.io: a Socket.IO server asked for a plain WebSocket", r: engineTransport,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg)} }, cause: report.CauseUnexpectedStatus, hintHas: "EIO=4&transport=websocket"},
		{name: "ASP.NET: RFC 6750 invalid_token, expired, opaque token", r: signalrExpired, token: opaque,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg, withCredential("header"))} },
			cause:    report.CauseTokenExpired, summHas: "The token expired at", hintNot: "URL-encoded"},
		{name: "ASP.NET: RFC 6750 invalid_token, bad signature", r: signalrSignature, token: opaque,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg, withCredential("header"))} },
			cause:    report.CauseAuthRejected, summHas: "The signature is invalid", hintNot: "URL-encoded"},
		{name: "Spring OriginHandshakeInterceptor; the URL's own origin upgrades", r: springOrigin,
			attempts: sameOriginOnly, cause: report.CauseOriginRejected},
		{name: "Spring CORS: every variant refused, the body names CORS", r: springCORS,
			attempts: func(a step) []step {
				return []step{at(a, "us", cdn, cfg, withOrigin(origin)), at(a, "us", cdn, report.VariantNoOrigin), at(a, "us", cdn, report.VariantSameOrigin)}
			}, cause: report.CauseOriginRejected, summHas: `"Invalid CORS request"`},
		{name: "Spring behind a proxy that strips the upgrade", r: springUpgrade,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg), at(ok101, "us", direct, cfg)} },
			cause:    report.CauseProxyStrippedUpgrade, hintNot: "nginx"},
		{name: "Phoenix check_origin", r: phoenixOrigin,
			attempts: func(a step) []step {
				return []step{at(a, "us", cdn, cfg, withOrigin(origin)), at(ok101, "us", cdn, report.VariantSameOrigin), at(a, "us", cdn, report.VariantNoOrigin)}
			}, cause: report.CauseOriginRejected},
		{name: "Action Cable answers 404 to a foreign origin", r: actionCableOrigin,
			attempts: sameOriginOnly, cause: report.CauseOriginRejected},
		{name: "Daphne/Channels OriginValidator denies a missing Origin too", r: daphneDenied,
			attempts: sameOriginOnly, cause: report.CauseOriginRejected},
		{name: "uWebSockets parser error", r: uwsParser,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg)} }, cause: report.CauseUnexpectedStatus},
		{name: "Centrifugo: upgraded, then closed 3500 invalid token",
			r: refusal{source: "centrifugal/centrifuge disconnect.go (DisconnectInvalidToken 3500)"},
			attempts: func(step) []step {
				return []step{at(report.Attempt{Status: 101, CloseCode: 3500, CloseReason: "invalid token", Error: "expect: server closed with 3500 while reading the reply"},
					"us", cdn, cfg)}
			}, cause: report.CausePostHandshakeRejected, summHas: "invalid token", hintHas: "not valid"},
		{name: "API Gateway authorizer deny", r: apigwDeny, token: opaque,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg, withCredential("query"))} },
			cause:    report.CauseAuthRejected, vendor: "aws-apigateway", summHas: "explicit deny", hintHas: "$connect"},
		{name: "Kong key-auth without a key", r: kongNoKey,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg)} },
			cause:    report.CauseAuthMissing, vendor: "kong", summHas: "No API key found in request", hintHas: "key_in_query"},
		{name: "a JSON error is quoted", r: jsonTenant, token: opaque,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg, withCredential("header"))} },
			cause:    report.CauseAuthRejected, summHas: `"Tenant acme is suspended"`},
		{name: "a plain 429 with Retry-After",
			r: refusal{source: "RFC 6585 section 4", status: 429, headers: map[string]string{"Retry-After": "30", "Content-Type": "application/json"},
				body: `{"error":"rate limit exceeded for client"}`},
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg)} },
			cause:    report.CauseRateLimited, summHas: "retry after 30"},
		{name: "HAProxy rate limit", r: haproxyLimit,
			attempts: func(a step) []step { return []step{at(a, "us", cdn, cfg)} },
			cause:    report.CauseRateLimited, vendor: "haproxy", hintHas: "stick-table"},

		// Edges, through the CDN route while the direct one upgrades.
		{name: "Cloudflare 1020, at FRA", r: cf1020, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "cloudflare", summHas: "at FRA", hintHas: "Ray ID"},
		{name: "Cloudflare 1015 rate limit", r: cf1015, attempts: throughEdge, cause: report.CauseRateLimited, vendor: "cloudflare", summHas: "retry after 60", hintHas: "1015"},
		{name: "CloudFront geo restriction, at FRA", r: cloudfrontGeo, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "aws-cloudfront", summHas: "at FRA", hintHas: "ClientGeoBlocked"},
		{name: "ALB answers 403 itself", r: albDeny, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "aws-alb", hintHas: "HTTPCode_ELB_4XX_Count"},
		{name: "Fastly Next-Gen WAF 406", r: fastlyNGWAF, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "fastly", summHas: "at FRA", hintHas: "Next-Gen WAF"},
		{name: "Imperva block page with 200", r: imperva, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "imperva", hintHas: "incident ID"},
		{name: "Sucuri", r: sucuri, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "sucuri", hintHas: "X-Sucuri-Block"},
		{name: "F5 ASM support ID page with 200", r: f5ASM, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "f5", hintHas: "support ID"},
		{name: "Azure Front Door WAF", r: frontDoor, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "azure-frontdoor", hintHas: "X-Azure-Ref"},
		{name: "Azure Application Gateway WAF", r: appGW, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "azure-appgw", hintHas: "ApplicationGatewayFirewallLog"},
		{name: "Google Cloud Armor", r: cloudArmor, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "google-cloud-armor", hintHas: "denied_by_security_policy"},
		{name: "Istio AuthorizationPolicy", r: envoyRBAC, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "envoy", hintHas: "istioctl"},
		{name: "Kong acl", r: kongACL, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "kong", hintHas: "X-Kong-Request-Id"},
		{name: "Vercel firewall, at FRA", r: vercelDeny, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "vercel", summHas: "at FRA", hintHas: "Firewall"},
		{name: "Netlify", r: netlify, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "netlify", hintHas: "X-Nf-Request-Id"},
		{name: "HAProxy deny", r: haproxyDeny, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: "haproxy", hintHas: "http-request deny"},
		{name: "Traefik IPAllowList: unknown edge, generic hints", r: traefikAllow, attempts: throughEdge, cause: report.CauseCDNBlocked, vendor: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(diagnose.Input{Attempts: tt.attempts(tt.r.attempt()), Token: tt.token, Now: now})
			if d.Cause != tt.cause || d.Vendor != tt.vendor {
				t.Fatalf("%s: got %s vendor %q, want %s %q\nsummary: %s\nhints: %q", tt.r.source, d.Cause, d.Vendor, tt.cause, tt.vendor, d.Summary, d.Hints)
			}
			hints := strings.Join(d.Hints, "\n")
			if !strings.Contains(d.Summary, tt.summHas) {
				t.Errorf("summary %q lacks %q", d.Summary, tt.summHas)
			}
			if !strings.Contains(hints, tt.hintHas) || (tt.hintNot != "" && strings.Contains(hints, tt.hintNot)) {
				t.Errorf("hints %q: want %q, not %q", d.Hints, tt.hintHas, tt.hintNot)
			}
			if foreign := foreignProducts(d.Vendor, d.Hints); len(foreign) > 0 {
				t.Errorf("hints name %v for vendor %q: %q", foreign, d.Vendor, d.Hints)
			}
		})
	}
}

// origin is the Origin the fixtures' checks send.
const origin = "https://app.example.com"

// sameOriginOnly: refused with the configured Origin and without one,
// upgraded with the URL's own.
func sameOriginOnly(a report.Attempt) []report.Attempt {
	return []report.Attempt{at(a, "us", cdn, cfg, withOrigin(origin)), at(a, "us", cdn, report.VariantNoOrigin), at(ok101, "us", cdn, report.VariantSameOrigin)}
}

// throughEdge: the refusal on the CDN route, 101 on the direct one.
func throughEdge(a report.Attempt) []report.Attempt {
	return []report.Attempt{at(a, "us", cdn, cfg), at(ok101, "us", direct, cfg)}
}

// TestEdgePop reads the edge location from the headers edges send.
func TestEdgePop(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		headers map[string]string
		want    string
	}{
		{map[string]string{"Cf-Ray": "230b030023ae2822-SJC"}, "SJC"},
		{map[string]string{"X-Amz-Cf-Pop": "JFK52-P2"}, "JFK"},
		{map[string]string{"X-Served-By": "cache-iad-kiad7000123-IAD, cache-lcy1128-LCY"}, "LCY"},
		{map[string]string{"X-Vercel-Id": "cdg1::iad1::abcd-1700000000000-0123456789ab"}, "CDG"},
		{map[string]string{"Cf-Ray": "not-a-ray"}, ""},
		{map[string]string{"Server": "nginx"}, ""},
	} {
		if got := diagnose.EdgePop(tt.headers); got != tt.want {
			t.Errorf("EdgePop(%v) = %q, want %q", tt.headers, got, tt.want)
		}
	}
}

// TestVantageBlockedNamesEdges: one region refused at one edge location
// while another upgrades at another: the summary says where.
func TestVantageBlockedNamesEdges(t *testing.T) {
	t.Parallel()
	refused := at(cf1020.attempt(), "ap", cdn, cfg)
	refused.Headers = map[string]string{"Server": "cloudflare", "Cf-Ray": "8c2f1a0b3d4e5f60-SIN"}
	good := at(ok101, "eu", cdn, cfg)
	good.Headers = map[string]string{"Server": "cloudflare", "Cf-Ray": "8c2f1a0b3d4e5f61-FRA", "Upgrade": "websocket"}
	d := diagnose.Diagnose(diagnose.Input{Attempts: []report.Attempt{good, refused}, Now: now})
	if d.Cause != report.CauseVantageBlocked || !strings.Contains(d.Summary, "refused at SIN, upgraded at FRA") {
		t.Fatalf("%s: %s", d.Cause, d.Summary)
	}
}
