package diagnose

import "strings"

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
