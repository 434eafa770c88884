// Package redact keeps credentials out of everything wscanary emits: logs,
// spans, metrics, Slack, /status and reports all see URLs and headers only
// after they went through here.
package redact

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Placeholder replaces every redacted value.
const Placeholder = "REDACTED"

// credentialParams are query parameter names that carry secrets often enough
// that we never print them, whatever the check says.
var credentialParams = map[string]bool{
	"token": true, "access_token": true, "auth": true, "key": true, "jwt": true,
	"signature": true, "sig": true, "password": true, "secret": true,
	"api_key": true, "apikey": true, "id_token": true, "refresh_token": true,
	"x-amz-signature": true, "x-amz-security-token": true, "x-amz-credential": true,
	"code": true, "session": true,
}

// credentialParts are pieces of a name that mark it as a credential
// wherever they appear: "apitoken", "access_key", "client_secret",
// "X-Api-Key". Names are many; the words in them are few.
var credentialParts = []string{"token", "secret", "passw", "pwd", "auth", "signature", "credential", "session", "jwt", "cookie", "private"}

// IsCredentialName reports whether a query parameter or header of this name
// carries a credential by its look alone.
func IsCredentialName(name string) bool {
	n := strings.ToLower(name)
	if credentialParams[n] {
		return true
	}
	for _, p := range credentialParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	// access_key, apikey, x-api-key, secretkey; not "keyword" or "monkey".
	for _, sfx := range []string{"_key", "-key", "apikey", "accesskey", "_keys"} {
		if strings.HasSuffix(n, sfx) {
			return true
		}
	}
	return false
}

// IsCredentialParam reports whether a query parameter of this name is
// replaced by URL. extra are names a check configured (its token.name).
func IsCredentialParam(name string, extra ...string) bool {
	if IsCredentialName(name) {
		return true
	}
	for _, e := range extra {
		if e != "" && strings.EqualFold(e, name) {
			return true
		}
	}
	return false
}

// URL returns u as a string with credential-like query values and any
// userinfo password replaced. It never fails: an unparsable string is
// returned with its whole query redacted.
func URL(raw string, extra ...string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexByte(raw, '?'); i >= 0 {
			return raw[:i] + "?" + Placeholder
		}
		return raw
	}
	return URLValue(u, extra...)
}

// URLValue is URL for a parsed URL; u is not modified.
func URLValue(u *url.URL, extra ...string) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), Placeholder)
		}
	}
	if c.RawQuery != "" {
		c.RawQuery = query(c.RawQuery, extra)
	}
	return c.String()
}

// query redacts values in a raw query while keeping the order and encoding
// of everything else, so a redacted URL still reads like the one sent.
func query(raw string, extra []string) string {
	parts := strings.Split(raw, "&")
	for i, p := range parts {
		k, _, hasValue := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if hasValue && IsCredentialParam(name, extra...) {
			parts[i] = k + "=" + Placeholder
		}
	}
	return strings.Join(parts, "&")
}

// sensitiveHeaders carry credentials in requests or set them in responses.
var sensitiveHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
	"X-Api-Key":           true,
	"X-Auth-Token":        true,
	"X-Csrf-Token":        true,
	"X-Xsrf-Token":        true,
}

// challengeHeaders name credentials without carrying one: the server's
// challenge (RFC 9110 section 11.6) says why it refused, which is the
// evidence a diagnosis needs. A secret echoed in one is still replaced
// (Secrets).
var challengeHeaders = map[string]bool{
	"Www-Authenticate":   true,
	"Proxy-Authenticate": true,
}

// IsSensitiveHeader reports whether a header's value is never shown.
// extra are header names a check put its token in.
func IsSensitiveHeader(name string, extra ...string) bool {
	if challengeHeaders[http.CanonicalHeaderKey(name)] {
		return false
	}
	if sensitiveHeaders[http.CanonicalHeaderKey(name)] || IsCredentialName(name) {
		return true
	}
	for _, e := range extra {
		if e != "" && strings.EqualFold(e, name) {
			return true
		}
	}
	return false
}

// Headers flattens h into one value per name (joined by ", ") with sensitive
// values replaced. Set-Cookie keeps the cookie names, which help diagnose
// (a WAF's "__cf_bm" tells who answered), but not their values.
func Headers(h http.Header, extra ...string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string]string, len(h))
	for k, vs := range h {
		switch {
		case http.CanonicalHeaderKey(k) == "Set-Cookie":
			names := make([]string, 0, len(vs))
			for _, v := range vs {
				name, _, _ := strings.Cut(v, "=")
				names = append(names, strings.TrimSpace(name)+"="+Placeholder)
			}
			out[k] = strings.Join(names, ", ")
		case IsSensitiveHeader(k, extra...):
			out[k] = Placeholder
		default:
			out[k] = strings.Join(vs, ", ")
		}
	}
	return out
}

// Secrets replaces every occurrence of each non-empty secret in s. It is the
// last line of defence for free text (bodies, error messages) that might echo
// a credential back.
func Secrets(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Placeholder)
		}
	}
	return s
}

var (
	// jwtLike is three base64url segments, the first starting like a JSON
	// object ("eyJ"): a JWT, whoever printed it.
	jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	// schemeCred is the credential after an HTTP auth scheme.
	schemeCred = regexp.MustCompile(`(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{4,}`)
	// assignment is name=value, name: value or "name":"value".
	assignment = regexp.MustCompile(`(?i)"?([A-Za-z0-9_.-]{2,40})"?\s*[:=]\s*"?([^\s",;&]{4,})`)
	// opaque is a long run of base64 or hex: a key, a signature, a token.
	opaque = regexp.MustCompile(`[A-Za-z0-9+/_-]{32,}={0,2}`)
)

// Text scrubs free text whose secrets are not known by value, such as what
// a token command wrote to stderr: JWTs, the credential after Bearer or
// Basic, values assigned to credential-like names and long opaque strings
// are replaced. It keeps enough of the text to say what went wrong.
func Text(s string) string {
	s = jwtLike.ReplaceAllString(s, Placeholder)
	s = schemeCred.ReplaceAllStringFunc(s, func(m string) string {
		scheme, _, _ := strings.Cut(m, " ")
		return scheme + " " + Placeholder
	})
	s = assignment.ReplaceAllStringFunc(s, func(m string) string {
		sub := assignment.FindStringSubmatch(m)
		if !IsCredentialName(sub[1]) || sub[2] == Placeholder || schemeWord(sub[2]) {
			return m
		}
		return strings.Replace(m, sub[2], Placeholder, 1)
	})
	return opaque.ReplaceAllStringFunc(s, func(m string) string {
		if m == Placeholder || !strings.ContainsAny(m, "0123456789") {
			return m // a long word, a path: not a secret
		}
		return Placeholder
	})
}

// schemeWord is an HTTP auth scheme, which schemeCred already handled.
func schemeWord(s string) bool {
	return strings.EqualFold(s, "bearer") || strings.EqualFold(s, "basic") || strings.EqualFold(s, "token")
}
