package diagnose

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/wscanary/wscanary/monitor/report"
)

// A gateway is an identity-aware proxy in front of the application (a
// zero-trust access proxy): it answers a request without a session itself,
// with its sign-in page, a redirect to its identity provider or its own
// 401. Its refusal is not a WAF rule and not the application's: the fix is
// a credential the gateway accepts for machines. Ids are part of the
// contract (README, "Gateways"), like the edges'.
type gateway struct {
	// name starts a sentence as the product writes itself ("oauth2-proxy").
	id, name string
	// cookies are names (or name prefixes) it sets, as the prober keeps
	// them in Set-Cookie (values redacted).
	cookies []string
	// headers are header names (or prefixes) only it sets on its answers.
	headers []string
	// location are lowercased parts of the Location it redirects to.
	location []string
	// body are lowercased words of its sign-in or error page.
	body []string
	// hints say how a monitor authenticates to it, and which part of a
	// check carries that credential.
	hints []string
}

// gateways are checked in this order; the generic identity provider
// redirect comes last.
var gateways = []gateway{
	{id: "oauth2-proxy", name: "oauth2-proxy",
		cookies:  []string{"_oauth2_proxy"},
		location: []string{"/oauth2/start", "/oauth2/sign_in", "%2foauth2%2fcallback", "/oauth2/callback"},
		body:     []string{"/oauth2/static/", "oauth2 proxy", "oauth2-proxy", "oauth2_proxy", `action="/oauth2/start"`, "/oauth2/sign_in"},
		hints: []string{
			"oauth2-proxy: run it with --skip-jwt-bearer-tokens (and --extra-jwt-issuers for another issuer) and give the check an OIDC ID token of its provider for its client id: `token: {command: [...], in: header}` (sent as Authorization: Bearer) or `headers: {Authorization: \"Bearer ${ID_TOKEN}\"}`.",
			"Or exempt the WebSocket path for the monitor with --skip-auth-route (method and path regexp), if it needs no user.",
		},
	},
	{id: "pomerium", name: "Pomerium",
		cookies:  []string{"_pomerium"},
		headers:  []string{"X-Pomerium-"},
		location: []string{"/.pomerium/"},
		body:     []string{"pomerium_data", "/.pomerium/"},
		hints: []string{
			"Pomerium: get a JWT for the monitor (a service account, or the programmatic login at /.pomerium/api/v1/login) and send it as `headers: {Authorization: \"Pomerium ${POMERIUM_JWT}\"}` (or X-Pomerium-Authorization); a policy must allow that identity on the route.",
		},
	},
	{id: "authelia", name: "Authelia",
		cookies:  []string{"authelia_session"},
		location: []string{"&rm="},
		body:     []string{"authelia"},
		hints: []string{
			"Authelia: its authz endpoints accept `Authorization: Basic` by default: give the monitor a user and send `headers: {Authorization: \"Basic ${MONITOR_BASIC}\"}` (the proxy must forward the header), or add an access_control rule with policy: bypass for the WebSocket path from the monitor's networks.",
		},
	},
	{id: "vouch", name: "Vouch Proxy",
		cookies:  []string{"VouchCookie"},
		headers:  []string{"X-Vouch-"},
		location: []string{"vouch-failcount"},
		body:     []string{"vouch"},
		hints: []string{
			"Vouch Proxy: it accepts only JWTs it signed itself (no service accounts): exempt the WebSocket location from auth_request for the monitor's addresses, or send a Vouch-signed JWT as `headers: {X-Vouch-Token: \"${VOUCH_JWT}\"}`.",
		},
	},
	{id: "cloudflare-access", name: "Cloudflare Access",
		cookies:  []string{"CF_Authorization", "CF_AppSession"},
		headers:  []string{"Cf-Access-Error", "Cf-Access-Aud", "Cf-Access-Domain"},
		location: []string{"/cdn-cgi/access/login", ".cloudflareaccess.com"},
		body:     []string{"cloudflare access", "cloudflareaccess.com"},
		hints: []string{
			"Cloudflare Access: create a service token (Access > Service credentials) and a Service Auth policy on the application, then send it as `headers: {CF-Access-Client-Id: \"${CF_ACCESS_CLIENT_ID}\", CF-Access-Client-Secret: \"${CF_ACCESS_CLIENT_SECRET}\"}`.",
		},
	},
	{id: "aws-alb-oidc", name: "AWS ALB authentication",
		cookies:  []string{"AWSELBAuthNonce", "AWSELBAuthSessionCookie"},
		location: []string{".amazoncognito.com/oauth2/authorize", "%2foauth2%2fidpresponse", "/oauth2/idpresponse"},
		hints: []string{
			"AWS ALB: an authenticate-oidc/authenticate-cognito action has no machine credential: add a listener rule before it, without authentication, for the monitor (a path or a header only it sends: `headers: {X-Monitor: \"${MONITOR_SECRET}\"}`), or let the application verify a token itself.",
		},
	},
	{id: "google-iap", name: "Google Cloud IAP",
		cookies:  []string{"GCP_IAP_"},
		headers:  []string{"X-Goog-Iap-Generated-Response"},
		location: []string{"accounts.google.com"},
		body:     []string{"invalid iap credentials"},
		hints: []string{
			"Google IAP: give the monitor's service account the IAP-secured Web App User role and send a Google-signed OIDC identity token whose audience is the IAP OAuth client id: `token: {command: [gcloud, auth, print-identity-token, --audiences=CLIENT_ID], in: header}` (sent as Authorization: Bearer).",
		},
	},
	{id: "azure-easyauth", name: "Azure App Service authentication",
		cookies:  []string{"AppServiceAuthSession"},
		location: []string{"/.auth/login/", "login.microsoftonline.com", "login.windows.net"},
		hints: []string{
			"Azure App Service authentication: register the monitor as a client of the app's Entra ID application and send an access token for its audience as `headers: {Authorization: \"Bearer ...\"}` (a token: command that fetches it with client credentials), or set unauthenticated requests to 'Allow' for the WebSocket path and check the token in the app.",
		},
	},
	{id: "sso", name: "A single sign-on gateway",
		hints: []string{
			"A gateway in front of the application redirects to its identity provider: find which (the redirect's host) and give the monitor a machine credential it accepts (a service token or an OIDC token for its client, via `headers:` or `token:`), or a rule that lets the monitor's requests through.",
		},
	},
}

// authorizeRedirect is an OAuth 2.0 / OIDC authorization request: where a
// gateway sends a browser without a session.
var authorizeRedirect = regexp.MustCompile(`(?i)[?&](client_id|response_type)=.*[?&]?(redirect_uri|response_type|client_id)=`)

// signInWords are the words of a sign-in page, for a gateway recognised by
// its redirect or cookie but whose page names no product.
var signInWords = []string{"sign in", "sign-in", "log in", "login"}

// gatewayOf names the gateway that answered an attempt itself, or "".
func gatewayOf(a report.Attempt) string {
	if a.Status == 0 || a.Opened() || a.Hop == report.HopVantageProxy {
		return ""
	}
	loc := strings.ToLower(headerValue(a.Headers, "Location"))
	cookies := headerValue(a.Headers, "Set-Cookie")
	body := strings.ToLower(a.Body)
	for _, g := range gateways {
		switch {
		case slices.ContainsFunc(g.cookies, func(c string) bool { return strings.Contains(cookies, c) }),
			slices.ContainsFunc(g.headers, func(h string) bool { return hasPrefixHeader(a.Headers, h) }),
			loc != "" && slices.ContainsFunc(g.location, func(l string) bool { return strings.Contains(loc, l) }),
			slices.ContainsFunc(g.body, func(w string) bool { return strings.Contains(body, w) }) &&
				(a.Status != 404 && a.Status < 500):
			return g.id
		}
	}
	if loc != "" && authorizeRedirect.MatchString(loc) {
		return "sso"
	}
	return ""
}

func gatewayByID(id string) (gateway, bool) {
	for _, g := range gateways {
		if g.id == id {
			return g, true
		}
	}
	return gateway{}, false
}

// Gateways lists the gateway ids, in the order they are recognised.
func Gateways() []string {
	out := make([]string, len(gateways))
	for i, g := range gateways {
		out[i] = g.id
	}
	return out
}

// Answered says who produced an attempt's answer (report.Attempt.Hop) and
// names the gateway when one did: the prober's own word for its vantage's
// proxy, then a gateway's signs, an edge's own page or header, else the
// target. Nothing answered: "".
func Answered(a report.Attempt) (report.Hop, string) {
	switch {
	case a.Hop == report.HopVantageProxy:
		return report.HopVantageProxy, ""
	case a.Status == 0:
		return "", ""
	}
	if g := gatewayOf(a); g != "" {
		return report.HopGateway, g
	}
	if !a.Opened() && (answeredBy(a) != "" || isChallenge(a.Headers, a.Body) || isEdgeBlock(Vendor(a.Headers, a.Body), a)) {
		return report.HopEdge, ""
	}
	return report.HopTarget, ""
}

// gatewayAuth: the gateway id answered for the application on a (the
// chosen failing attempt); configured says where else it did.
func gatewayAuth(d report.Diagnosis, a report.Attempt, id string, configured []report.Attempt) report.Diagnosis {
	g, _ := gatewayByID(id)
	d.Cause, d.Hop, d.Gateway = report.CauseGatewayAuthRequired, report.HopGateway, id
	d.Vendor = id
	edge := Vendor(a.Headers, a.Body)
	if e, ok := edgeByID(edge); ok && edge != id {
		// Cloudflare Access behind Cloudflare: both are named, the edge as
		// the vendor, and the summary says which answered.
		d.Vendor = edge
		d.Summary = fmt.Sprintf("%s answered the upgrade through the %s: ", g.name, e.name)
	} else {
		d.Summary = g.name + " answered the upgrade: "
	}
	var what string
	switch loc := headerValue(a.Headers, "Location"); {
	case a.Status >= 300 && a.Status < 400 && loc != "":
		what = fmt.Sprintf("%s to %s", status(a), signInTarget(loc))
	case a.Status == 200 || slices.ContainsFunc(signInWords, func(w string) bool { return strings.Contains(strings.ToLower(a.Body), w) }):
		what = status(a) + " with its sign-in page"
	default:
		what = status(a)
	}
	d.Summary += fmt.Sprintf("%s %s. The request never reached the WebSocket server: the gateway wants a signed-in user, and the monitor has no session.",
		what, where(a))
	var other []string
	for _, o := range configured {
		if o.Route != a.Route && !slices.Contains(other, string(o.Route)) && gatewayOf(o) == id {
			other = append(other, string(o.Route))
		}
	}
	if direct, ok := find(configured, a.Vantage, report.RouteDirect); ok && a.Route == report.RouteCDN && direct.OK {
		d.Summary += " The direct route upgrades: the gateway sits on the CDN route only."
	} else if len(other) > 0 {
		d.Summary += fmt.Sprintf(" It answers on the %s route too.", strings.Join(other, " and "))
	}
	d.Hints = append(slices.Clone(g.hints),
		"Neither a firewall rule nor the application refuses: users with a session pass; only clients without one (the monitor, scripts, native apps) are sent to sign in.")
	return d
}

// signInTarget is where a redirect sends the client, shortened to its
// host and path (the query of an authorization request is long).
func signInTarget(loc string) string {
	if i := strings.IndexByte(loc, '?'); i >= 0 {
		loc = loc[:i]
	}
	return loc
}

// proxyProduct names a vantage's egress proxy from its own answer: squid,
// tinyproxy, privoxy, or "" when it does not say.
func proxyProduct(a report.Attempt) string {
	server := strings.ToLower(headerValue(a.Headers, "Server"))
	body := strings.ToLower(a.Body)
	for _, p := range []string{"squid", "tinyproxy", "privoxy", "3proxy", "ziproxy"} {
		if strings.HasPrefix(server, p) || strings.Contains(body, "generated by "+p) || strings.Contains(body, "("+p+"/") {
			return p
		}
	}
	if headerValue(a.Headers, "X-Squid-Error") != "" {
		return "squid"
	}
	return ""
}

var proxyNames = map[string]string{"squid": "Squid", "tinyproxy": "tinyproxy", "privoxy": "Privoxy", "3proxy": "3proxy", "ziproxy": "Ziproxy"}

// vantageProxyRefused: the vantage's own egress proxy refused the tunnel
// (a is its answer). Blamed on that vantage only: the target was not
// reached from there, and may be perfectly healthy.
func vantageProxyRefused(d report.Diagnosis, a report.Attempt, configured []report.Attempt) report.Diagnosis {
	product := proxyProduct(a)
	d.Cause, d.Hop, d.Vantage, d.Route, d.Vendor = report.CauseVantageProxyRefused, report.HopVantageProxy, a.Vantage, a.Route, product
	who := "The egress proxy of vantage " + a.Vantage
	if n := proxyNames[product]; n != "" {
		who += " (" + n
		if a.Peer != "" {
			who += " at " + a.Peer
		}
		who += ")"
	} else if a.Peer != "" {
		who += " (" + a.Peer + ")"
	}
	code := headerValue(a.Headers, "X-Squid-Error")
	if i := strings.IndexByte(code, ' '); i > 0 {
		code = code[:i]
	}
	said := status(a)
	if code != "" {
		said += ", " + code
	}
	switch s := a.Status; {
	case s == 407 || s == 401:
		// tinyproxy 1.11 answers wrong credentials with 401.
		d.Summary = fmt.Sprintf("%s asks for proxy credentials (%s) before it opens a tunnel to the target", who, said)
	case s >= 500:
		d.Summary = fmt.Sprintf("%s could not open a tunnel to the target (%s)", who, said)
	case s == 0:
		d.Summary = fmt.Sprintf("%s refuses the connection to the target (%s)", who, a.Error)
	default:
		d.Summary = fmt.Sprintf("%s refuses the tunnel to the target (%s)", who, said)
	}
	d.Summary += fmt.Sprintf(": the target itself was not reached from %s.", a.Vantage)
	var good []string
	for _, o := range configured {
		if o.OK && o.Vantage != a.Vantage && !slices.Contains(good, o.Vantage) {
			good = append(good, o.Vantage)
		}
	}
	if len(good) > 0 {
		d.Summary += fmt.Sprintf(" From %s it upgrades.", strings.Join(good, ", "))
	}
	d.Hints = []string{proxyFix(a, product),
		"This says nothing about the target: fix the vantage's proxy (or give the vantage another way out); other vantages show how the target is."}
	return d
}

// proxyFix is what to change at a vantage's proxy that answered a (product
// when it said who it is): its credentials, its own way out, or its ACL.
func proxyFix(a report.Attempt, product string) string {
	switch s := a.Status; {
	case s == 407 || s == 401:
		return "Give the vantage the proxy's credentials in its proxy URL (`vantages: [{name: " + a.Vantage + ", proxy: \"http://USER:${PROXY_PASSWORD}@host:port\"}]`), or allow the monitor's address without authentication in the proxy's ACL."
	case s >= 500:
		return "The proxy's own way to the target fails (its error page says why: DNS, a refused or timed-out connection): check the proxy host's DNS, routes and firewall toward the target."
	case product == "squid":
		return "Squid: allow the target before the deny lines (`acl ws dstdomain HOST` and `http_access allow ws` above `http_access deny all`); a CONNECT to a port other than 443 is refused by the stock `http_access deny CONNECT !SSL_ports`: add the port to `acl SSL_ports port ...`."
	case product == "tinyproxy":
		return "tinyproxy: a Filter rule matches the target's host, or its port is not among the ConnectPort lines (with none, every port is allowed): change the filter file or add `ConnectPort PORT`."
	}
	return "Allow the target's host and port for CONNECT in the proxy's ACL (corporate proxies often allow CONNECT to 443 only)."
}

// proxyNote is said beside another verdict when a vantage's proxy refused
// too.
func proxyNote(a report.Attempt) string {
	return fmt.Sprintf(" Also, the egress proxy of %s refused the tunnel (%s): that vantage did not reach the target.", a.Vantage, status(a))
}
