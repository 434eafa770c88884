package diagnose

import "strings"

// Vendor names the CDN, WAF or proxy that produced an answer, from the
// headers and body it left: "cloudflare", "aws-waf", "aws-cloudfront",
// "akamai", "fastly", "nginx", or "" when nothing tells. Header names are
// canonical (as the prober records them); matching is case-insensitive.
func Vendor(headers map[string]string, body string) string {
	h := func(name string) string { return strings.ToLower(headerValue(headers, name)) }
	b := strings.ToLower(body)
	switch {
	case h("Cf-Ray") != "" || h("Cf-Mitigated") != "" || h("Server") == "cloudflare" ||
		strings.Contains(b, "cloudflare") || strings.Contains(b, "cf-chl") || strings.Contains(b, "/cdn-cgi/"):
		return "cloudflare"
	case hasPrefixHeader(headers, "X-Amzn-Waf-") || (isCloudFront(h) && strings.Contains(b, "request blocked")):
		return "aws-waf"
	case isCloudFront(h):
		return "aws-cloudfront"
	case strings.Contains(h("Server"), "akamai") || hasPrefixHeader(headers, "X-Akamai-") ||
		strings.Contains(b, "reference #18.") || strings.Contains(b, "akamai"):
		return "akamai"
	case strings.Contains(h("X-Served-By"), "cache-") || h("X-Fastly-Request-Id") != "" ||
		hasPrefixHeader(headers, "Fastly-") || strings.Contains(b, "fastly"):
		return "fastly"
	case strings.HasPrefix(h("Server"), "nginx") || strings.Contains(b, "<center>nginx"):
		return "nginx"
	}
	return ""
}

func isCloudFront(h func(string) string) bool {
	return h("X-Amz-Cf-Id") != "" || h("Server") == "cloudfront" || strings.Contains(h("X-Cache"), "cloudfront") ||
		strings.Contains(h("Via"), "cloudfront")
}

func headerValue(headers map[string]string, name string) string {
	if v, ok := headers[name]; ok {
		return v
	}
	for k, v := range headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func hasPrefixHeader(headers map[string]string, prefix string) bool {
	for k := range headers {
		if len(k) >= len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}

// isChallenge recognises an interactive challenge page, which a WebSocket
// client can never pass.
func isChallenge(headers map[string]string, body string) bool {
	if strings.EqualFold(headerValue(headers, "Cf-Mitigated"), "challenge") {
		return true
	}
	b := strings.ToLower(body)
	for _, s := range []string{"just a moment...", "checking your browser", "attention required!", "cf-chl", "captcha", "are you a robot"} {
		if strings.Contains(b, s) {
			return true
		}
	}
	return false
}

// mentionsCSRF finds CSRF middleware's fingerprints: Django's "CSRF
// verification failed", ASP.NET's antiforgery, Rails' and Spring's XSRF.
func mentionsCSRF(headers map[string]string, reason, body string) bool {
	text := strings.ToLower(reason + " " + body)
	for k, v := range headers {
		text += " " + strings.ToLower(k) + ": " + strings.ToLower(v)
	}
	for _, s := range []string{"csrf", "xsrf", "antiforgery", "anti-forgery", "invalidauthenticitytoken", "authenticity token"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// backendSawNoUpgrade reads a non-101 answer for signs that the server
// received a plain HTTP request: what a WebSocket library says when the
// Upgrade and Connection headers were stripped on the way.
func backendSawNoUpgrade(status int, headers map[string]string, reason, body string) bool {
	text := strings.ToLower(reason + " " + body)
	switch {
	case status == 426:
		return true
	case status == 400:
		for _, s := range []string{"upgrade", "websocket", "connection header", "not websocket protocol",
			"can \"upgrade\" only to \"websocket\"", "bad request"} {
			if strings.Contains(text, s) {
				return true
			}
		}
		return body == ""
	case status >= 200 && status < 300, status == 404:
		return !strings.EqualFold(headerValue(headers, "Upgrade"), "websocket")
	}
	return false
}
