package diagnose_test

import (
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/report"
)

// Sign-in gateways as they answer a request without a session. oauth2-proxy
// runs for real in cmd/wscanary (TestGatewayOAuth2Proxy); these cannot run
// here, so their answers are written from their sources and documents,
// named beside each (the repository and path for source, the page for a
// document, "capture" where only third-party captures show it).
var (
	cfAccessRedirect = refusal{source: "cloudflare/cloudflared carrier/carrier.go IsAccessResponse (302, Location path /cdn-cgi/access/login); cookies: cloudflare-docs identity/authorization-cookie",
		status: 302, reason: "Found", headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8f1b2c3d4e5f6a7b-FRA",
			"Location":   "https://acme.cloudflareaccess.com/cdn-cgi/access/login/chat.example.com?kid=4a1b&redirect_url=%2Fws",
			"Set-Cookie": "CF_AppSession=REDACTED; Path=/; Secure; HttpOnly"}}
	cfAccessForbidden = refusal{source: "cloudflare-docs cloudflare-one/access-controls/authenticate-agents.mdx (403 with a Cf-Access-Error header)",
		status: 403, headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8f1b2c3d4e5f6a7b-FRA", "Cf-Access-Error": "unauthenticated"},
		body: `{"message": "Forbidden. You don't have permission to view this. Please contact your system administrator.", "status_code": 403}`}
	iapUnauthorized = refusal{source: "cloud.google.com/iap/docs/query-parameters-and-headers-howto (X-Goog-IAP-Generated-Response), body from captures",
		status: 401, headers: map[string]string{"X-Goog-Iap-Generated-Response": "true", "Content-Type": "text/html; charset=UTF-8"},
		body: "Invalid IAP credentials: empty token"}
	iapRedirect = refusal{source: "cloud.google.com/iap/docs/faq (302 when the client takes redirects); Location and cookie from captures",
		status: 302, headers: map[string]string{"X-Goog-Iap-Generated-Response": "true",
			"Location":   "https://accounts.google.com/o/oauth2/v2/auth?client_id=123-abc.apps.googleusercontent.com&response_type=code&scope=openid+email&redirect_uri=https%3A%2F%2Fiap.googleapis.com%2Fv1%2Foauth%2FclientIds%2F123-abc.apps.googleusercontent.com%3AhandleRedirect&state=REDACTED",
			"Set-Cookie": "GCP_IAP_XSRF_NONCE_Q0sxYz=REDACTED; path=/; Secure; HttpOnly"}}
	albCognito = refusal{source: "docs.aws.amazon.com elb listener-authenticate-users (authenticate-cognito, OnUnauthenticatedRequest=authenticate: 302 to the authorization endpoint, callback /oauth2/idpresponse)",
		status: 302, headers: map[string]string{"Server": "awselb/2.0",
			"Location":   "https://acme.auth.eu-west-1.amazoncognito.com/oauth2/authorize?client_id=7abc&redirect_uri=https%3A%2F%2Fchat.example.com%2Foauth2%2Fidpresponse&response_type=code&scope=openid&state=REDACTED",
			"Set-Cookie": "AWSELBAuthNonce=REDACTED; Path=/; Secure; HttpOnly; SameSite=None"}}
	albOIDC = refusal{source: "docs.aws.amazon.com elb listener-authenticate-users (authenticate-oidc with an external IdP: the redirect_uri names /oauth2/idpresponse)",
		status: 302, headers: map[string]string{"Server": "awselb/2.0",
			"Location": "https://login.example-idp.com/oauth2/v1/authorize?client_id=0oa1&redirect_uri=https%3A%2F%2Fchat.example.com%2Foauth2%2Fidpresponse&response_type=code&scope=openid&state=REDACTED"}}
	pomeriumRedirect = refusal{source: "pomerium/pomerium authorize/check_response.go requireLoginResponse (302 without Accept) and internal/httputil/errors.go (x-pomerium-intercepted-response)",
		status: 302, headers: map[string]string{"X-Pomerium-Intercepted-Response": "true",
			"Location": "https://authenticate.example.com/.pomerium/sign_in?pomerium_redirect_uri=https%3A%2F%2Fchat.example.com%2Fws&pomerium_signature=REDACTED"}}
	autheliaNginx = refusal{source: "authelia/authelia docs integration/proxies/nginx.md (error_page 401 =302) and internal/handlers/handler_authz.go getRedirectionURL (?rd=&rm=)",
		status: 302, headers: map[string]string{"Server": "nginx", "Location": "https://auth.example.com/?rd=https%3A%2F%2Fchat.example.com%2Fws&rm=GET"}}
	autheliaForward = refusal{source: "authelia/authelia internal/handlers/handler_authz_util.go (401 without Accept: text/html), internal/middlewares/authelia_context.go SpecialRedirect",
		status: 401, headers: map[string]string{"Location": "https://auth.example.com/?rd=https%3A%2F%2Fchat.example.com%2Fws&rm=GET", "Content-Type": "text/html; charset=utf-8"},
		body: `<a href="https://auth.example.com/?rd=https%3A%2F%2Fchat.example.com%2Fws&amp;rm=GET">401 Unauthorized</a>`}
	vouchNginx = refusal{source: "vouch/vouch-proxy README.md (nginx: return 302 .../login?url=...&vouch-failcount=...)",
		status: 302, headers: map[string]string{"Server": "nginx", "Location": "https://vouch.example.com/login?url=https://chat.example.com/ws&vouch-failcount=&X-Vouch-Token=&error="}}
	easyAuth = refusal{source: "MicrosoftDocs/azure-docs articles/app-service/overview-authentication-authorization.md (RedirectToLoginPage: /.auth/login/<provider>)",
		status: 302, headers: map[string]string{"Location": "https://chat.azurewebsites.net/.auth/login/aad?post_login_redirect_uri=%2Fws"}}
	ssoOnly = refusal{source: "RFC 6749 section 4.1.1 (an authorization request: response_type, client_id, redirect_uri), from a gateway that names no product",
		status: 302, headers: map[string]string{"Location": "https://sso.example.com/authorize?response_type=code&client_id=chat&redirect_uri=https%3A%2F%2Fchat.example.com%2Fcb"}}
)

func TestGateways(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		r                refusal
		attempts         func(report.Attempt) []report.Attempt
		vendor, gateway  string
		summHas, hintHas string
		cause            report.Cause
		hop              report.Hop
	}{
		{name: "Cloudflare Access redirect behind Cloudflare", r: cfAccessRedirect, attempts: throughEdge,
			vendor: "cloudflare", gateway: "cloudflare-access", summHas: "Cloudflare Access answered the upgrade through the Cloudflare edge", hintHas: "CF-Access-Client-Secret"},
		{name: "Cloudflare Access 403", r: cfAccessForbidden, attempts: throughEdge,
			vendor: "cloudflare", gateway: "cloudflare-access", summHas: "403 Forbidden through cdn", hintHas: "Service Auth"},
		{name: "IAP 401", r: iapUnauthorized, attempts: throughEdge, vendor: "google-iap", gateway: "google-iap", hintHas: "--audiences"},
		{name: "IAP redirect, both routes", r: iapRedirect, attempts: bothRoutes, vendor: "google-iap", gateway: "google-iap", summHas: "on the direct route too"},
		{name: "ALB Cognito", r: albCognito, attempts: throughEdge, vendor: "aws-alb", gateway: "aws-alb-oidc", summHas: "amazoncognito.com/oauth2/authorize", hintHas: "listener rule"},
		{name: "ALB OIDC with another IdP", r: albOIDC, attempts: throughEdge, vendor: "aws-alb", gateway: "aws-alb-oidc", hintHas: "listener rule"},
		{name: "Pomerium", r: pomeriumRedirect, attempts: throughEdge, vendor: "pomerium", gateway: "pomerium", summHas: "/.pomerium/sign_in", hintHas: `Authorization: "Pomerium`},
		{name: "Authelia behind nginx", r: autheliaNginx, attempts: throughEdge, vendor: "nginx", gateway: "authelia", summHas: "Authelia answered the upgrade through the nginx edge", hintHas: "Basic"},
		{name: "Authelia forward-auth 401 on one vantage, both routes", r: autheliaForward, attempts: bothRoutes, vendor: "authelia", gateway: "authelia"},
		{name: "Vouch behind nginx", r: vouchNginx, attempts: throughEdge, vendor: "nginx", gateway: "vouch", hintHas: "X-Vouch-Token"},
		{name: "Azure App Service authentication", r: easyAuth, attempts: throughEdge, vendor: "azure-easyauth", gateway: "azure-easyauth", hintHas: "Bearer"},
		{name: "an unnamed gateway's authorization request", r: ssoOnly, attempts: throughEdge, vendor: "sso", gateway: "sso", summHas: "sso.example.com/authorize"},
		// Signs of a gateway outrank the route: without them the same
		// answer through the edge is the CDN's.
		{name: "without a gateway's signs the edge is blamed", r: refusal{source: "the Cloudflare Access 403 without its header or page", status: 403,
			headers: map[string]string{"Server": "cloudflare", "Cf-Ray": "8f1b2c3d4e5f6a7b-FRA"}}, attempts: throughEdge,
			vendor: "cloudflare", cause: report.CauseCDNBlocked, hop: report.HopTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause, hop := cmpOr(tt.cause, report.CauseGatewayAuthRequired), tt.hop
			if hop == "" {
				hop = report.HopGateway
			}
			d := diagnose.Diagnose(diagnose.Input{Attempts: tt.attempts(tt.r.attempt()), Now: now})
			if d.Cause != cause || d.Vendor != tt.vendor || d.Gateway != tt.gateway || d.Hop != hop {
				t.Fatalf("%s:\ngot %s vendor %q gateway %q hop %q, want %s %q %q %q\nsummary: %s", tt.r.source, d.Cause, d.Vendor, d.Gateway, d.Hop,
					cause, tt.vendor, tt.gateway, hop, d.Summary)
			}
			if !strings.Contains(d.Summary, tt.summHas) {
				t.Errorf("summary %q lacks %q", d.Summary, tt.summHas)
			}
			hints := strings.Join(d.Hints, "\n")
			if !strings.Contains(hints, tt.hintHas) {
				t.Errorf("hints %q lack %q", d.Hints, tt.hintHas)
			}
			if cause != report.CauseGatewayAuthRequired {
				return
			}
			if !strings.Contains(d.Summary, "never reached the WebSocket server") {
				t.Errorf("summary does not say the application was not reached: %s", d.Summary)
			}
			// The fix is a credential for the gateway, never an edge rule.
			if strings.Contains(hints, "WAF") || strings.Contains(hints, "Custom rules") {
				t.Errorf("hints send the user to an edge rule: %q", d.Hints)
			}
		})
	}
}

// bothRoutes: the same answer on the CDN and the direct route.
func bothRoutes(a report.Attempt) []report.Attempt {
	return []report.Attempt{at(a, "us", cdn, cfg), at(a, "us", direct, cfg)}
}

func cmpOr(c, def report.Cause) report.Cause {
	if c != "" {
		return c
	}
	return def
}

// TestAnswered: who answered, attempt by attempt.
func TestAnswered(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		a       report.Attempt
		hop     report.Hop
		gateway string
	}{
		{report.Attempt{Status: 101}, report.HopTarget, ""},
		{report.Attempt{Error: "connect: refused"}, "", ""},
		{report.Attempt{Status: 403, Hop: report.HopVantageProxy, Headers: map[string]string{"Server": "squid/5.7"}}, report.HopVantageProxy, ""},
		{pomeriumRedirect.attempt(), report.HopGateway, "pomerium"},
		{cf1020.attempt(), report.HopEdge, ""},
		{gorillaForbidden.attempt(), report.HopTarget, ""},
	} {
		if hop, g := diagnose.Answered(tt.a); hop != tt.hop || g != tt.gateway {
			t.Errorf("%d %v: got %q %q, want %q %q", tt.a.Status, tt.a.Headers, hop, g, tt.hop, tt.gateway)
		}
	}
}

// TestVantageProxy: a vantage's proxy refusing the tunnel (answers as
// Squid 5.7 and tinyproxy 1.11 sent them here; cmd/wscanary runs both) is
// that vantage's cause alone; when the target fails elsewhere too, the
// target's cause leads and the proxy is named beside it.
func TestVantageProxy(t *testing.T) {
	t.Parallel()
	squid403 := report.Attempt{Status: 403, Reason: "Forbidden", Hop: report.HopVantageProxy, Peer: "127.0.0.1:3128",
		Headers: map[string]string{"Server": "squid/5.7", "X-Squid-Error": "ERR_ACCESS_DENIED 0", "Via": "1.1 vm (squid/5.7)"},
		Body:    "<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\"><title>ERROR: The requested URL could not be retrieved</title>"}
	squid503 := report.Attempt{Status: 503, Reason: "Service Unavailable", Hop: report.HopVantageProxy,
		Headers: map[string]string{"Server": "squid/5.7", "X-Squid-Error": "ERR_CONNECT_FAIL 111"}}
	tiny401 := report.Attempt{Status: 401, Reason: "Unauthorized", Hop: report.HopVantageProxy,
		Headers: map[string]string{"Server": "tinyproxy/1.11.1"}, Body: "Generated by tinyproxy version 1.11.1."}
	socks := report.Attempt{Hop: report.HopVantageProxy, Error: "connect: proxy 10.0.0.1:1080: socks connect tcp: connection not allowed by ruleset"}
	for _, tt := range []struct {
		name      string
		attempts  []report.Attempt
		cause     report.Cause
		vendor    string
		summHas   string
		hintHas   string
		vantageIs string
	}{
		{name: "Squid denies, the other vantage upgrades", attempts: []report.Attempt{at(squid403, "eu", cdn, cfg), at(ok101, "us", cdn, cfg)},
			cause: report.CauseVantageProxyRefused, vendor: "squid", vantageIs: "eu", summHas: "(403 Forbidden, ERR_ACCESS_DENIED): the target itself was not reached from eu. From us it upgrades.", hintHas: "SSL_ports"},
		{name: "Squid cannot connect", attempts: []report.Attempt{at(squid503, "eu", cdn, cfg), at(ok101, "us", cdn, cfg)},
			cause: report.CauseVantageProxyRefused, vendor: "squid", vantageIs: "eu", summHas: "could not open a tunnel to the target (503 Service Unavailable, ERR_CONNECT_FAIL)", hintHas: "DNS"},
		{name: "tinyproxy refuses wrong credentials with 401", attempts: []report.Attempt{at(tiny401, "eu", cdn, cfg), at(ok101, "us", cdn, cfg)},
			cause: report.CauseVantageProxyRefused, vendor: "tinyproxy", vantageIs: "eu", summHas: "asks for proxy credentials", hintHas: "PROXY_PASSWORD"},
		{name: "a SOCKS5 ruleset", attempts: []report.Attempt{at(socks, "eu", cdn, cfg), at(ok101, "us", cdn, cfg)},
			cause: report.CauseVantageProxyRefused, vantageIs: "eu", summHas: "not allowed by ruleset"},
		// vantage_blocked would have blamed the target's IP rules for eu.
		{name: "the proxy's refusal outranks vantage_blocked", attempts: []report.Attempt{at(squid403, "eu", cdn, cfg), at(ok101, "us", cdn, cfg), at(ok101, "ap", cdn, cfg)},
			cause: report.CauseVantageProxyRefused, vendor: "squid", vantageIs: "eu", summHas: "From us, ap it upgrades."},
		{name: "the target refuses elsewhere: its cause leads", attempts: []report.Attempt{at(squid403, "eu", cdn, cfg), at(gorillaForbidden.attempt(), "us", cdn, cfg)},
			cause: report.CauseAuthMissing, vantageIs: "us", summHas: "Also, the egress proxy of eu refused the tunnel (403 Forbidden)", hintHas: "Squid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := diagnose.Diagnose(diagnose.Input{Attempts: tt.attempts, Now: now})
			if d.Cause != tt.cause || d.Vendor != tt.vendor || d.Vantage != tt.vantageIs {
				t.Fatalf("got %s vendor %q vantage %q, want %s %q %q\nsummary: %s", d.Cause, d.Vendor, d.Vantage, tt.cause, tt.vendor, tt.vantageIs, d.Summary)
			}
			if !strings.Contains(d.Summary, tt.summHas) || !strings.Contains(strings.Join(d.Hints, "\n"), tt.hintHas) {
				t.Errorf("summary %q (want %q)\nhints %q (want %q)", d.Summary, tt.summHas, d.Hints, tt.hintHas)
			}
		})
	}
}
