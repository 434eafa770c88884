package diagnose

import (
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/wscanary/wscanary/monitor/report"
)

// words is what an answer says in the server's own words, weighed beside
// what the variants showed: a WWW-Authenticate challenge (RFC 6750), a
// JSON error, a sentence in the body that names the Origin, CSRF, the
// token or a rate limit.
type words struct {
	// quote is the server's message, short and on one line, for the
	// summary ("" when it said nothing worth quoting).
	quote string
	// bearer is the RFC 6750 error code of a Bearer challenge
	// (invalid_token, insufficient_scope, invalid_request), description
	// its error_description.
	bearer, description                              string
	origin, csrf, expired, invalid, missing, limited bool
	// retryAfter is the Retry-After header, as sent.
	retryAfter string
	// socketIO: an engine.io refusal (a Socket.IO server asked for a
	// plain WebSocket).
	socketIO bool
}

var (
	bearerParam = regexp.MustCompile(`(?i)\b(error|error_description)\s*=\s*"([^"]*)"`)
	// Phrases, lowercased. Each list is what frameworks and gateways
	// really write (see the fixtures of diagnose_test.go).
	originWords = []string{"origin not allowed", "origin is not allowed", "request origin", "invalid origin", "origin not permitted",
		"disallowed origin", "cross-origin", "cross origin", "cors", "checkorigin", "is not authorized for host", "allowed origins", "origin mismatch"}
	expiredWords = []string{"token expired", "token has expired", "token is expired", "expired token", "jwt expired", "jwt is expired",
		"signature has expired", "session expired", "credentials have expired"}
	invalidWords = []string{"invalid token", "invalid_token", "token invalid", "token is invalid", "bad token", "malformed token",
		"invalid signature", "signature is invalid", "invalid jwt", "jwt malformed", "invalid authentication credentials", "invalid api key",
		"invalid credentials", "token revoked"}
	missingWords = []string{"no api key found", "missing token", "token missing", "no token", "token required", "missing authentication",
		"authentication required", "authorization required", "missing credentials", "not authenticated", "unauthenticated", "login required"}
	limitWords = []string{"rate limit", "ratelimit", "rate-limit", "too many requests", "throttl", "local_rate_limited", "quota exceeded",
		"you have sent too many requests", "error 1015"}
	socketIOWords = []string{"transport unknown", "session id unknown", "bad handshake method", "unsupported protocol version"}
)

// readWords reads an answer for what it says.
func readWords(a report.Attempt) words {
	var w words
	if ch := headerValue(a.Headers, "Www-Authenticate"); ch != "" {
		for _, m := range bearerParam.FindAllStringSubmatch(ch, -1) {
			if strings.EqualFold(m[1], "error") {
				w.bearer = strings.ToLower(m[2])
			} else {
				w.description = m[2]
			}
		}
	}
	w.retryAfter = headerValue(a.Headers, "Retry-After")
	msg := jsonMessage(a.Body)
	if msg == "" {
		msg = textMessage(a.Body)
	}
	if msg == "" && a.Refusal != "" {
		msg = a.Refusal
	}
	if msg == "" && a.CloseReason != "" {
		msg = a.CloseReason
	}
	text := strings.ToLower(strings.Join([]string{a.Reason, a.Body, a.Refusal, a.CloseReason, w.description, w.bearer}, " "))
	has := func(list []string) bool {
		for _, s := range list {
			if strings.Contains(text, s) {
				return true
			}
		}
		return false
	}
	w.origin = has(originWords)
	w.csrf = mentionsCSRF(a.Headers, a.Reason, a.Body)
	w.expired = has(expiredWords) || (w.bearer == "invalid_token" && strings.Contains(strings.ToLower(w.description), "expir"))
	w.invalid = has(invalidWords) || w.bearer == "invalid_token"
	w.missing = has(missingWords) || w.bearer == "invalid_request"
	w.limited = a.Status == 429 || has(limitWords)
	w.socketIO = has(socketIOWords)
	switch {
	case w.description != "":
		w.quote = oneLine(w.description)
	case msg != "":
		w.quote = msg
	}
	return w
}

// said renders the quote for a summary: ` The server says "…".` or "".
func (w words) said() string {
	if w.quote == "" {
		return ""
	}
	return " The server says \"" + w.quote + "\"."
}

// jsonMessage is the message of a JSON error body: {"message": ...},
// {"error": "..."} or {"error": {"message": ...}}, "error_description",
// "detail", "reason", "msg", "title".
func jsonMessage(body string) string {
	body = strings.TrimSpace(body)
	if !strings.HasPrefix(body, "{") {
		return ""
	}
	var doc map[string]any
	if json.Unmarshal([]byte(body), &doc) != nil {
		return ""
	}
	for _, k := range []string{"error_description", "message", "detail", "reason", "msg", "error", "title", "Message"} {
		switch v := doc[k].(type) {
		case string:
			if v != "" {
				return oneLine(v)
			}
		case map[string]any:
			if m, ok := v["message"].(string); ok && m != "" {
				return oneLine(m)
			}
		}
	}
	return ""
}

var tags = regexp.MustCompile(`<[^>]*>`)

// textMessage is a short plain-text body (not an HTML page): what a
// framework wrote with its refusal. Status words alone say nothing more
// than the status.
func textMessage(body string) string {
	if strings.Contains(body, "<") {
		return ""
	}
	s := oneLine(body)
	switch strings.ToLower(s) {
	case "", "forbidden", "unauthorized", "bad request", "not found", "page not found", "upgrade required", "method not allowed",
		"too many requests", "service unavailable", "internal server error":
		return ""
	}
	return s
}

// oneLine folds whitespace and bounds a quote.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(tags.ReplaceAllString(s, " ")), " ")
	const limit = 160
	if utf8.RuneCountInString(s) > limit {
		r := []rune(s)
		s = string(r[:limit-1]) + "…"
	}
	return s
}
