package notifier

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/wscanary/wscanary/monitor/report"
)

// Bounds of what a message shows. Block Kit's own limits (150 characters in a
// header, 3000 in a text object, 10 fields in a section, 50 blocks) are far
// above them, so a message is never refused for its size.
const (
	bodySnippet   = 300 // characters of the response body
	headerValue   = 200 // characters of one telling header's value
	maxHeaders    = 12  // telling headers listed
	maxCells      = 40  // matrix rows shown (vantages)
	maxVariants   = 10  // diagnostic attempts listed
	maxHints      = 6
	maxFieldChars = 1000
	maxTextChars  = 3000
	maxTitleChars = 150
)

// tellingHeaders are the response headers that say who answered: the CDN, a
// WAF, a proxy, an auth layer. Listed in this order when present, then any
// X-Amzn-Waf-* header.
var tellingHeaders = []string{
	"Server", "X-Squid-Error", "Proxy-Authenticate", "Cf-Ray", "Cf-Mitigated", "X-Amz-Cf-Id", "X-Served-By", "Via",
	"Www-Authenticate", "Location", "X-Cache",
	// A sign-in gateway's own signs (values of cookies are redacted).
	"Cf-Access-Error", "X-Goog-Iap-Generated-Response", "X-Pomerium-Intercepted-Response", "Set-Cookie",
}

const wafPrefix = "x-amzn-waf-"

func causeText(c report.Cause, vendor string) string {
	if vendor != "" {
		return string(c) + " (" + vendor + ")"
	}
	return string(c)
}

func hintsOf(hs []string) []string {
	var out []string
	for _, h := range hs {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, truncate(h, maxFieldChars/2))
		}
		if len(out) == maxHints {
			break
		}
	}
	return out
}

func reason(a report.Attempt) string {
	r := strings.TrimSpace(a.Reason)
	if r == "" && a.Status != 0 {
		r = http.StatusText(a.Status)
	}
	return truncate(r, 80)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// span is a rounded duration: 45s, 12m, 3h05m, 2d04h.
func span(d time.Duration) string {
	switch {
	case d < 0:
		return "an unknown time"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// request says how the attempt was shaped: the Origin sent and where a
// credential went (never the credential).
func request(a report.Attempt) string {
	var ps []string
	if a.Origin != "" {
		ps = append(ps, "Origin "+truncate(a.Origin, 200))
	}
	if a.Credential != "" {
		ps = append(ps, "credential in "+a.Credential)
	}
	return strings.Join(ps, ", ")
}

// telling returns the telling headers present in hs, in a fixed order.
func telling(hs map[string]string) [][2]string {
	if len(hs) == 0 {
		return nil
	}
	keys := make([]string, 0, len(hs))
	for k := range hs {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic when two spellings of one name exist
	var out [][2]string
	for _, want := range tellingHeaders {
		for _, k := range keys {
			if strings.EqualFold(k, want) {
				out = append(out, [2]string{k, truncate(hs[k], headerValue)})
				break
			}
		}
	}
	for _, k := range keys {
		if strings.HasPrefix(strings.ToLower(k), wafPrefix) {
			out = append(out, [2]string{k, truncate(hs[k], headerValue)})
		}
	}
	if len(out) > maxHeaders {
		out = out[:maxHeaders]
	}
	return out
}

func snippet(body string) string {
	body = strings.TrimSpace(strings.ToValidUTF8(body, "\uFFFD"))
	return truncate(body, bodySnippet)
}

// ---- Block Kit and mrkdwn helpers ----

func header(text string) slack.Block {
	return slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, truncate(clean(text), maxTitleChars), true, false))
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(mrkdwn(truncate(text, maxTextChars)), nil, nil)
}

func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, false)
}

func field(label, value string) *slack.TextBlockObject {
	return mrkdwn(truncate("*"+label+"*\n"+value, maxFieldChars))
}

// mrkdwnEscaper makes text inert in mrkdwn. A backtick becomes U+02CB, a
// look-alike that mrkdwn does not read: three of them from a target would
// open a code block that swallows the rest of the message, and a zero-width
// space between them is not enough outside a block.
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "`", "\u02cb")

// fallbackEscaper is mrkdwnEscaper for the plain-text fallback of a
// message, which slack-go escapes for &, < and > itself.
var fallbackEscaper = strings.NewReplacer("`", "\u02cb")

// esc makes untrusted text inert in mrkdwn, inside a code block or out of
// one: &, < and > are escaped (no mentions, no links), backticks defused
// (no code block opened or ended early), control characters replaced.
func esc(s string) string { return mrkdwnEscaper.Replace(clean(s)) }

// linkURL escapes a URL for <url|text>; '|' would end the URL.
func linkURL(u string) string {
	return strings.ReplaceAll(esc(u), "|", "%7C")
}

func linkText(s string) string {
	return strings.ReplaceAll(esc(s), "|", "¦")
}

// clean replaces control characters other than newline and tab, so text from
// a hostile server can neither drive a terminal nor break a message.
func clean(s string) string {
	if !strings.ContainsFunc(s, isBadRune) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isBadRune(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func isBadRune(r rune) bool {
	return r == utf8.RuneError || (unicode.IsControl(r) && r != '\n' && r != '\t') ||
		r == '\u2028' || r == '\u2029' || (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// truncate keeps the first n characters of s, marking a cut with "…".
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + "…"
}

// maxShrink is the shortest rendering Shrink knows.
const maxShrink = 2

// Shrink is m said in fewer words, for a destination that refused it for
// its size: level 1 keeps the first rows of everything and no quotes of
// the body or headers; level 2 keeps the headline, the matrix (bounded
// already), the cause and the footer. The cells stay whole: the headline
// counts them. Notices and replies lose lines the same way.
func Shrink(m Message, level int) Message {
	if level <= 0 {
		return m
	}
	if m.Incident != nil {
		inc := *m.Incident
		inc.Variants = inc.Variants[:min(len(inc.Variants), 3)]
		inc.Hints = inc.Hints[:min(len(inc.Hints), 3)]
		inc.Notes = inc.Notes[:min(len(inc.Notes), 3)]
		inc.Summary = truncate(inc.Summary, 300)
		inc.Attempt.Body, inc.Attempt.Headers = "", nil
		if level >= 2 {
			inc.Variants, inc.Hints, inc.Notes, inc.Summary = nil, nil, nil, truncate(inc.Summary, 120)
		}
		m.Incident = &inc
	}
	if m.Notice != nil {
		n := *m.Notice
		n.Lines = n.Lines[:min(len(n.Lines), 8/level)]
		m.Notice = &n
	}
	if len(m.Events) > 8/level {
		m.Events = m.Events[len(m.Events)-8/level:]
	}
	return m
}
