package diagnose

import (
	"net/textproto"
	"regexp"
	"strings"
)

// An edge is a CDN, WAF, gateway or proxy that answers requests in front
// of the origin. Its id is part of the contract (README, "Edges"): alert
// routing and scripts match on it, so ids never change once published.
type edge struct {
	id string
	// name is how a sentence names it ("the Cloudflare edge").
	name string
	// body recognises its own error or block page: the answer came from
	// it, not merely through it. Lowercased body and reason.
	body []string
	// header recognises it from a header it sets on what passes through;
	// weaker than body (an outer layer adds its headers to an inner
	// layer's refusal).
	header func(h func(string) string, headers map[string]string) bool
	// blocked are hints for a refusal by its rules; stripped for an
	// answer that shows it dropped the Upgrade headers; limited for a
	// rate limit. Each names this product only.
	blocked, stripped, limited []string
}

// edges are checked in this order for body markers, then for headers.
// Inner layers (gateways, meshes) come before the CDNs that may sit in
// front of them, since the CDN's headers are on every answer it relays.
var edges = []edge{
	{id: "cloudflare", name: "Cloudflare edge",
		body: []string{"cloudflare ray id", "attention required! | cloudflare", "sorry, you have been blocked", "/cdn-cgi/", "cf-chl",
			"used cloudflare to restrict access", "error code: 1020", "error 1015"},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("Cf-Ray") != "" || h("Cf-Mitigated") != "" || h("Server") == "cloudflare"
		},
		blocked: []string{
			"Cloudflare: find the request by its Ray ID under Security > Events; in Security > WAF > Custom rules add a rule for 'URI Path contains /ws AND Request Header \"Upgrade\" equals \"websocket\"' with action Skip, placed first.",
			"If Security Level is \"I'm Under Attack\" or a managed challenge matches, exempt the WebSocket path (a challenge cannot be solved by a WebSocket client); check Network > WebSockets is on.",
		},
		stripped: []string{"Cloudflare: check Network > WebSockets is on for the zone, and that no Worker or Transform Rule in front of the origin drops the Upgrade header."},
		limited:  []string{"Cloudflare: a rate limiting rule matched (error 1015): find it by the Ray ID under Security > Events and exempt the WebSocket path or raise its threshold."},
	},
	{id: "akamai", name: "Akamai edge",
		body: []string{"reference #18.", "reference&#32;#18.", "akamaighost"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.Contains(h("Server"), "akamai") || h("Akamai-Grn") != "" || hasPrefixHeader(hs, "X-Akamai-")
		},
		blocked: []string{
			"Akamai: translate the Reference # of the block page (Edge Diagnostics > Error Translator) to see the App & API Protector or rate control rule that matched, and add an exception for the WebSocket path with Upgrade: websocket.",
			"Make sure the property's WebSockets behaviour is on for this path.",
		},
		stripped: []string{"Akamai: enable the WebSockets behaviour in the property for this path; without it the edge does not pass the upgrade on."},
		limited:  []string{"Akamai: a rate control matched; translate the Reference # (Edge Diagnostics) and exempt or raise the limit for the WebSocket path."},
	},
	{id: "aws-waf", name: "AWS WAF",
		body: []string{"request blocked. we can't connect to the server"},
		header: func(h func(string) string, hs map[string]string) bool {
			return hasPrefixHeader(hs, "X-Amzn-Waf-")
		},
		blocked: []string{
			"AWS WAF: find the request in the web ACL's sampled requests or logs (by time and client IP) and add a rule that allows Upgrade: websocket on the path, placed before the managed rule groups (AWSManagedRulesCommonRuleSet often matches the upgrade).",
			"A Challenge or CAPTCHA action (x-amzn-waf-action) can never be solved by a WebSocket client: use Allow or Count for the WebSocket path.",
		},
		limited: []string{"AWS WAF: a rate-based rule matched; exclude the WebSocket path or raise its limit."},
	},
	{id: "aws-apigateway", name: "AWS API Gateway",
		body: []string{"missing authentication token", "user is not authorized to access this resource with an explicit deny"},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("X-Amz-Apigw-Id") != "" || h("X-Amzn-Errortype") != ""
		},
		blocked: []string{
			"API Gateway WebSocket APIs refuse at the $connect route: check its authorizer (a Deny policy is 403, a missing identity source 401 before the authorizer runs) in CloudWatch by the x-amzn-RequestId.",
			"The authorizer's identity source must be where a WebSocket client can put it: a query string parameter (browsers cannot set headers on a WebSocket).",
		},
		limited: []string{"API Gateway: the stage or account throttling limit was hit (429); raise the route's throttling or the account quota."},
	},
	{id: "aws-alb", name: "AWS Application Load Balancer",
		body: []string{},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.HasPrefix(h("Server"), "awselb")
		},
		blocked: []string{
			"The load balancer answered itself: a listener rule with a fixed 403, an authenticate action (401), or an attached AWS WAF web ACL; compare HTTPCode_ELB_4XX_Count with HTTPCode_Target_4XX_Count and read the access log by time.",
		},
		stripped: []string{"ALB passes WebSocket upgrades on HTTP and HTTPS listeners; check that the target group speaks HTTP/1.1 (not gRPC or HTTP/2) to the backend."},
	},
	{id: "aws-cloudfront", name: "CloudFront edge",
		body: []string{"generated by cloudfront", "the amazon cloudfront distribution is configured to block access from your country"},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("X-Amz-Cf-Id") != "" || h("X-Amz-Cf-Pop") != "" || h("Server") == "cloudfront" ||
				strings.Contains(h("X-Cache"), "cloudfront") || strings.Contains(h("Via"), "cloudfront")
		},
		blocked: []string{
			"CloudFront: search the standard logs for x-edge-request-id = the X-Amz-Cf-Id; x-edge-detailed-result-type ClientGeoBlocked is a geo restriction, Error an attached AWS WAF web ACL or a function.",
			"A CloudFront Function or Lambda@Edge on viewer request may refuse the upgrade: check the behaviour of the WebSocket path.",
		},
		stripped: []string{"CloudFront: the origin request policy of the WebSocket behaviour must forward Sec-WebSocket-Key, Sec-WebSocket-Version, Sec-WebSocket-Protocol and Origin."},
	},
	{id: "fastly", name: "Fastly edge",
		body: []string{"fastly error", "guru mediation"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.Contains(h("X-Served-By"), "cache-") || h("X-Fastly-Request-Id") != "" || hasPrefixHeader(hs, "Fastly-")
		},
		blocked: []string{
			"Fastly: check Next-Gen WAF rules (a 406 is its default block) and VCL that errors on the upgrade request for the path; the X-Served-By node and time find the request in the logs.",
		},
		stripped: []string{"Fastly: WebSockets passthrough is off by default: enable it for the service and add 'if (req.http.Upgrade) { return (upgrade); }' to vcl_recv (it is not compatible with shielding or Next-Gen WAF on the same path)."},
		limited:  []string{"Fastly: an Edge Rate Limiting or Next-Gen WAF rate rule matched; exempt the WebSocket path."},
	},
	{id: "imperva", name: "Imperva (Incapsula) edge",
		body: []string{"incapsula incident id", "_incapsula_resource", "powered by incapsula"},
		header: func(h func(string) string, hs map[string]string) bool {
			x := h("X-Cdn")
			return strings.Contains(x, "imperva") || strings.Contains(x, "incapsula") || h("X-Iinfo") != ""
		},
		blocked: []string{
			"Imperva: look up the incident ID of the block page under the site's Security Events and add an exception (or a policy rule) for the WebSocket path; check WebSocket support is enabled for the site.",
		},
		limited: []string{"Imperva: a rate limiting or bot policy matched; exempt the WebSocket path."},
	},
	{id: "sucuri", name: "Sucuri firewall",
		body: []string{"sucuri website firewall", "cloudproxy@sucuri.net", "sucuri-firewall-block"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.Contains(h("Server"), "sucuri") || h("X-Sucuri-Id") != "" || h("X-Sucuri-Block") != ""
		},
		blocked: []string{
			"Sucuri: the X-Sucuri-Block code says which rule (GEO = country, TMP = temporary ban); see the dashboard's Blocked Requests and allowlist the vantage's address or the WebSocket path.",
		},
	},
	{id: "f5", name: "F5 BIG-IP (ASM / Advanced WAF)",
		body: []string{"the requested url was rejected. please consult with your administrator", "your support id is"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.HasPrefix(h("Server"), "bigip") || strings.Contains(h("Set-Cookie"), "bigipserver")
		},
		blocked: []string{
			"F5 ASM / Advanced WAF: search the support ID under Security > Event Logs > Application > Requests to see the violation, and relax it for the WebSocket URL (enable WebSocket URLs in the policy).",
		},
	},
	{id: "azure-appgw", name: "Azure Application Gateway",
		body: []string{"microsoft-azure-application-gateway"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.HasPrefix(h("Server"), "microsoft-azure-application-gateway")
		},
		blocked: []string{
			"Azure Application Gateway WAF: find the matched rule in the ApplicationGatewayFirewallLog by time and add an exclusion or a custom allow rule for Upgrade: websocket on the path.",
			"On an HTTP listener, Application Gateway v2 also answers this 403 to requests with Upgrade: h2c; make sure the check's Upgrade is websocket.",
		},
	},
	{id: "azure-frontdoor", name: "Azure Front Door",
		body: []string{"the request is blocked."},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("X-Azure-Ref") != "" || h("X-Azure-Ref-Originshield") != ""
		},
		blocked: []string{
			"Azure Front Door: look up the X-Azure-Ref value (TrackingReference in FrontDoorWebApplicationFirewallLog) to find the WAF rule, and add an exclusion for the WebSocket path.",
		},
		limited: []string{"Azure Front Door: a WAF rate limit rule matched (429); exempt the WebSocket path or raise the threshold."},
	},
	{id: "google-cloud-armor", name: "Google Cloud Armor",
		body:   []string{"<title>403</title>403 forbidden"},
		header: func(h func(string) string, hs map[string]string) bool { return false },
		blocked: []string{
			"Cloud Armor: in the load balancer's logs filter on jsonPayload.statusDetails=\"denied_by_security_policy\" and read enforcedSecurityPolicy.matchedRule; add a higher-priority allow rule for the WebSocket path (logging must be on for the backend service).",
		},
		limited: []string{"Cloud Armor: a throttle or rate-based ban rule matched; exempt the WebSocket path."},
	},
	{id: "google-cloud", name: "Google Cloud load balancer",
		body: []string{"your client does not have permission to get url"},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("Via") == "1.1 google" || h("Server") == "google frontend"
		},
		blocked: []string{
			"Google Cloud: a 403 from the Google Front End itself is IAM (Cloud Run or IAP needs an identity token), not Cloud Armor; check the service's invoker permissions.",
		},
	},
	{id: "envoy", name: "Envoy proxy",
		body: []string{"rbac: access denied", "local_rate_limited", "no healthy upstream", "upstream connect error or disconnect/reset before headers"},
		header: func(h func(string) string, hs map[string]string) bool {
			s := h("Server")
			return s == "envoy" || s == "istio-envoy" || hasPrefixHeader(hs, "X-Envoy-")
		},
		blocked: []string{
			"Envoy/Istio: \"RBAC: access denied\" is an AuthorizationPolicy or RBAC filter; run 'istioctl x authz check <pod>' and allow the WebSocket path for this client.",
		},
		stripped: []string{"Envoy: the route's HTTP connection manager needs upgrade_configs with upgrade_type: websocket (Istio enables it by default; check EnvoyFilters that replace it)."},
		limited:  []string{"Envoy: the local or global rate limit filter answered (x-envoy-ratelimited); exempt the WebSocket path."},
	},
	{id: "kong", name: "Kong gateway",
		body: []string{"no api key found in request", "no route matched with those values"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.HasPrefix(h("Server"), "kong") || strings.HasPrefix(h("Via"), "kong") || hasPrefixHeader(hs, "X-Kong-")
		},
		blocked: []string{
			"Kong answered itself (Server: kong): check the route's plugins (key-auth, acl, ip-restriction) by the X-Kong-Request-Id; a WebSocket client cannot set headers from a browser, so key-auth needs key_in_query.",
		},
		limited: []string{"Kong: the rate-limiting plugin of the route or consumer answered; raise its limits or exempt the WebSocket route."},
	},
	{id: "vercel", name: "Vercel edge",
		body: []string{},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("Server") == "vercel" || h("X-Vercel-Id") != "" || h("X-Vercel-Mitigated") != ""
		},
		blocked: []string{
			"Vercel: the Firewall (x-vercel-mitigated: deny or challenge) or Attack Challenge Mode refuses clients that cannot run a challenge; add a bypass rule for the WebSocket path in the project's Firewall.",
		},
		limited: []string{"Vercel: a Firewall rate limit rule matched; exempt the WebSocket path."},
	},
	{id: "netlify", name: "Netlify edge",
		body: []string{},
		header: func(h func(string) string, hs map[string]string) bool {
			return h("Server") == "netlify" || h("X-Nf-Request-Id") != ""
		},
		blocked: []string{
			"Netlify: give the X-Nf-Request-Id to Netlify support or check the site's firewall traffic rules; proxied WebSocket paths must be a rewrite (status 200) to the origin.",
		},
	},
	{id: "haproxy", name: "HAProxy load balancer",
		body: []string{"request forbidden by administrative rules.", "no server is available to handle this request.", "you have sent too many requests in a given amount of time."},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.HasPrefix(h("Server"), "haproxy")
		},
		blocked: []string{
			"HAProxy answered itself (its built-in page): look for an 'http-request deny' (or a tarpit, or an ACL on src/path) in the frontend that matches the upgrade and exempt the WebSocket path.",
		},
		stripped: []string{"HAProxy passes upgrades in HTTP mode; check 'timeout tunnel' and that no 'http-request del-header Connection/Upgrade' or 'option httpclose' on the backend breaks them."},
		limited:  []string{"HAProxy: an 'http-request deny deny_status 429' on a stick-table rate (sc_http_req_rate) matched; exempt the WebSocket path or raise the rate."},
	},
	{id: "nginx", name: "nginx edge",
		body: []string{"<center>nginx"},
		header: func(h func(string) string, hs map[string]string) bool {
			return strings.HasPrefix(h("Server"), "nginx")
		},
		blocked: []string{
			"nginx answers this itself: look for 'return 403', 'deny' or a WAF module rule on the WebSocket location and exempt requests with $http_upgrade = websocket.",
		},
		stripped: []string{
			"nginx: in the WebSocket location set 'proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";' (without them nginx speaks HTTP/1.0 and drops both headers).",
		},
		limited: []string{"nginx: limit_req or limit_conn matched (503 unless limit_req_status says 429); exempt the WebSocket location or raise the burst."},
	},
}

// edgeByID finds an edge by id.
func edgeByID(id string) (edge, bool) {
	for _, e := range edges {
		if e.id == id {
			return e, true
		}
	}
	return edge{}, false
}

// Vendors lists the edge ids Vendor can return, in its order.
func Vendors() []string {
	out := make([]string, len(edges))
	for i, e := range edges {
		out[i] = e.id
	}
	return out
}

// Vendor names the CDN, WAF, gateway or proxy that produced an answer:
// first by its own error page in the body (the answer came from it), then
// by the headers it sets (the answer came through it), or "" when nothing
// tells. Header names are canonical (as the prober records them);
// matching is case-insensitive.
func Vendor(headers map[string]string, body string) string {
	if id := pageOf(body); id != "" {
		return id
	}
	h := func(name string) string { return strings.ToLower(headerValue(headers, name)) }
	// The Server header names who produced the answer; other vendor
	// headers may come from an outer layer.
	server := h("Server")
	for _, e := range edges {
		if server != "" && e.header(func(n string) string {
			if strings.EqualFold(n, "Server") {
				return server
			}
			return ""
		}, nil) {
			return e.id
		}
	}
	for _, e := range edges {
		if e.header(h, headers) {
			return e.id
		}
	}
	return ""
}

// pageOf names the edge whose own error page the body is, or "".
func pageOf(body string) string {
	b := strings.ToLower(body)
	for _, e := range edges {
		for _, m := range e.body {
			if strings.Contains(b, m) {
				return e.id
			}
		}
	}
	return ""
}

var (
	cfRay       = regexp.MustCompile(`^[0-9a-fA-F]{16}-([A-Z]{3})$`)
	cfPop       = regexp.MustCompile(`^([A-Z]{3})\d+-[A-Z0-9]+$`)
	fastlyCache = regexp.MustCompile(`cache-[a-z0-9-]+-([A-Z]{3})$`)
	vercelID    = regexp.MustCompile(`^([a-z]{3})\d::`)
)

// EdgePop is the edge location that handled the request, as the edges
// say it in their headers: an IATA-style code ("FRA") from Cloudflare's
// Cf-Ray, CloudFront's X-Amz-Cf-Pop, Fastly's X-Served-By (the node
// nearest the client, last in the list) or Vercel's X-Vercel-Id; "" when
// no header tells.
func EdgePop(headers map[string]string) string {
	if m := cfRay.FindStringSubmatch(strings.TrimSpace(headerValue(headers, "Cf-Ray"))); m != nil {
		return m[1]
	}
	if m := cfPop.FindStringSubmatch(strings.TrimSpace(headerValue(headers, "X-Amz-Cf-Pop"))); m != nil {
		return m[1]
	}
	if v := headerValue(headers, "X-Served-By"); v != "" {
		parts := strings.Split(v, ",")
		if m := fastlyCache.FindStringSubmatch(strings.TrimSpace(parts[len(parts)-1])); m != nil {
			return m[1]
		}
	}
	if m := vercelID.FindStringSubmatch(headerValue(headers, "X-Vercel-Id")); m != nil {
		return strings.ToUpper(m[1])
	}
	return ""
}

// headerValue is the value of the header name, "" when absent. Names are
// canonical (the prober records them so, as net/http does), so a miss of
// the canonical name is an answer: scanning every header for another
// spelling on each miss was most of Vendor's cost on every attempt.
func headerValue(headers map[string]string, name string) string {
	return headers[textproto.CanonicalMIMEHeaderKey(name)]
}

func hasPrefixHeader(headers map[string]string, prefix string) bool {
	for k := range headers {
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}
