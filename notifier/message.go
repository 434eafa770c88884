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
	maxOthers     = 20  // same-run attempts listed
	maxHints      = 6
	maxFieldChars = 1000
	maxTextChars  = 3000
	maxTitleChars = 150
)

// tellingHeaders are the response headers that say who answered: the CDN, a
// WAF, a proxy, an auth layer. Listed in this order when present, then any
// X-Amzn-Waf-* header.
var tellingHeaders = []string{
	"Server", "Cf-Ray", "Cf-Mitigated", "X-Amz-Cf-Id", "X-Served-By", "Via",
	"Www-Authenticate", "Location", "X-Cache",
}

const wafPrefix = "x-amzn-waf-"

// Blocks builds the Block Kit message for ev: a header with the transition,
// the facts as fields, the cause with its hints, the telling headers, a body
// snippet, the other attempts of the same run and a footer with the redacted
// URL, the trace and the event id. It is a pure function of ev.
func Blocks(ev Event) []slack.Block {
	blocks := []slack.Block{header(title(ev, true))}
	blocks = append(blocks, facts(ev)...)
	return append(blocks, footer(ev))
}

// Resolved builds the blocks that replace the alert message once the series
// recovered (ev is the recovery): a RESOLVED header, when and after how long,
// and the alert's facts when ev.Alert carries them.
func Resolved(ev Event) []slack.Block {
	resolved := fmt.Sprintf("*Resolved* %s: back to `%s` after %s.",
		esc(stamp(ev.At)), esc(statusCode(ev.NewStatus)), esc(span(ev.Since, ev.At)))
	blocks := []slack.Block{
		header(":white_check_mark: RESOLVED — " + line(ev, transition(ev))),
		section(resolved),
	}
	if ev.Alert != nil {
		a := *ev.Alert
		a.Thread, a.Alert = nil, nil
		stale := a
		stale.At = time.Time{} // "12m ago" was true when the alert was posted
		blocks = append(blocks, facts(stale)...)
		return append(blocks, footer(a))
	}
	blocks = append(blocks, facts(ev)...)
	return append(blocks, footer(ev))
}

// Text renders ev as plain text: the first line says what happened, the
// following lines are aligned "label  value" pairs. It is the notification
// fallback of Slack messages and what Console prints. Control characters
// from the target's answer are replaced, so printing it to a terminal is
// safe.
func Text(ev Event) string {
	var b strings.Builder
	b.WriteString(title(ev, false))
	b.WriteByte('\n')
	for _, l := range textLines(ev) {
		writeField(&b, l[0], l[1])
	}
	return b.String()
}

const labelWidth = 10

func writeField(b *strings.Builder, label, value string) {
	for i, line := range strings.Split(value, "\n") {
		if i == 0 {
			fmt.Fprintf(b, "  %-*s%s\n", labelWidth, label, line)
		} else {
			fmt.Fprintf(b, "  %-*s%s\n", labelWidth, "", line)
		}
	}
}

func textLines(ev Event) [][2]string {
	a := ev.Attempt
	var ls [][2]string
	add := func(label, value string) {
		if value != "" {
			ls = append(ls, [2]string{label, value})
		}
	}
	add("check", clean(ev.Check))
	add("vantage", clean(ev.Vantage))
	add("route", clean(string(ev.Route)))
	add("status", transition(ev)+reason(a))
	add(sinceLabel(ev), since(ev))
	if a.Error != "" {
		add("error", clean(a.Error))
	}
	if a.CloseCode != 0 {
		add("close", fmt.Sprint(a.CloseCode))
	}
	add("request", clean(request(a)))
	if showCause(ev) {
		add("cause", clean(cause(ev.Diagnosis)))
		add("summary", clean(ev.Diagnosis.Summary))
		for _, h := range hints(ev.Diagnosis) {
			add("hint", clean(h))
		}
	}
	for _, h := range telling(a.Headers) {
		add("header", clean(h[0]+": "+h[1]))
	}
	add("body", clean(snippet(a.Body)))
	for _, o := range others(ev.Others) {
		add("same run", clean(o))
	}
	if a.TraceID != "" {
		add("trace", clean(a.TraceID))
	}
	add("trace url", clean(ev.TraceURL))
	add("url", clean(a.URL))
	add("event", clean(ev.ID))
	return ls
}

// title is the one-line headline; emoji selects the Slack flavour.
func title(ev Event, emoji bool) string {
	var icon, word, what string
	switch ev.Kind {
	case KindAlert:
		icon, word, what = ":rotating_light:", "ALERT", transition(ev)
	case KindChange:
		icon, word, what = ":warning:", "CHANGED", transition(ev)
	case KindReminder:
		icon, word = ":alarm_clock:", "STILL"
		what = "still " + statusCode(ev.NewStatus) + " (" + transition(ev) + ")"
	case KindRecovery:
		icon, word = ":white_check_mark:", "RECOVERED"
		what = "recovered, " + transition(ev)
	default:
		icon, word, what = ":grey_question:", strings.ToUpper(string(ev.Kind)), transition(ev)
	}
	if emoji {
		return icon + " " + line(ev, what)
	}
	return clean(word + "  " + line(ev, what))
}

func line(ev Event, what string) string {
	return fmt.Sprintf("%s: %s on %s/%s", ev.Check, what, ev.Vantage, ev.Route)
}

// facts are the blocks between the header and the footer.
func facts(ev Event) []slack.Block {
	a := ev.Attempt
	fields := []*slack.TextBlockObject{
		field("Check", esc(ev.Check)),
		field("Vantage", esc(ev.Vantage)),
		field("Route", esc(string(ev.Route))),
		field("Status", "`"+esc(transition(ev))+"`"+esc(reason(a))),
		field(titleCase(sinceLabel(ev)), esc(since(ev))),
	}
	if showCause(ev) {
		c := "`" + code(string(ev.Diagnosis.Cause)) + "`"
		if v := ev.Diagnosis.Vendor; v != "" {
			c += " (" + esc(v) + ")"
		}
		fields = append(fields, field("Cause", c))
	}
	if a.Error != "" {
		fields = append(fields, field("Error", "`"+code(a.Error)+"`"))
	}
	if a.CloseCode != 0 {
		fields = append(fields, field("Close code", fmt.Sprint(a.CloseCode)))
	}
	if r := request(a); r != "" {
		fields = append(fields, field("Request", esc(r)))
	}
	blocks := []slack.Block{slack.NewSectionBlock(nil, fields, nil)}

	if showCause(ev) {
		var b strings.Builder
		if s := ev.Diagnosis.Summary; s != "" {
			b.WriteString(esc(s))
		}
		if hs := hints(ev.Diagnosis); len(hs) > 0 {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString("*What to check*")
			for _, h := range hs {
				b.WriteString("\n• " + esc(h))
			}
		}
		if b.Len() > 0 {
			blocks = append(blocks, section(b.String()))
		}
	}

	if hs := telling(a.Headers); len(hs) > 0 {
		lines := make([]string, len(hs))
		for i, h := range hs {
			lines[i] = h[0] + ": " + h[1]
		}
		blocks = append(blocks, section("*Telling headers*\n```"+code(strings.Join(lines, "\n"))+"```"))
	}
	if s := snippet(a.Body); s != "" {
		blocks = append(blocks, section(fmt.Sprintf("*Body* (first %d characters)\n```%s```", bodySnippet, code(s))))
	}
	if os := others(ev.Others); len(os) > 0 {
		var b strings.Builder
		b.WriteString("*Same run*")
		for _, o := range os {
			b.WriteString("\n• " + esc(o))
		}
		blocks = append(blocks, section(b.String()))
	}
	return blocks
}

func footer(ev Event) slack.Block {
	a := ev.Attempt
	var parts []slack.MixedElement
	if a.URL != "" {
		parts = append(parts, mrkdwn("URL `"+code(a.URL)+"`"))
	}
	switch {
	case a.TraceID != "" && ev.TraceURL != "":
		parts = append(parts, mrkdwn("Trace <"+linkURL(ev.TraceURL)+"|"+linkText(a.TraceID)+">"))
	case ev.TraceURL != "":
		parts = append(parts, mrkdwn("<"+linkURL(ev.TraceURL)+"|Trace>"))
	case a.TraceID != "":
		parts = append(parts, mrkdwn("Trace `"+code(a.TraceID)+"`"))
	}
	ev2 := "Event `" + code(ev.ID) + "`"
	if !ev.At.IsZero() {
		ev2 += " at " + esc(stamp(ev.At))
	}
	parts = append(parts, mrkdwn(ev2))
	return slack.NewContextBlock("", parts...)
}

// ---- pieces shared by Blocks and Text ----

func showCause(ev Event) bool {
	c := ev.Diagnosis.Cause
	return c != "" && c != report.CauseOK
}

func cause(d report.Diagnosis) string {
	if d.Vendor != "" {
		return string(d.Cause) + " (" + d.Vendor + ")"
	}
	return string(d.Cause)
}

func hints(d report.Diagnosis) []string {
	var hs []string
	for _, h := range d.Hints {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, truncate(h, maxFieldChars/2))
		}
		if len(hs) == maxHints {
			break
		}
	}
	return hs
}

func statusCode(s int) string {
	if s == 0 {
		return "no answer"
	}
	return fmt.Sprint(s)
}

func transition(ev Event) string {
	return statusCode(ev.OldStatus) + " -> " + statusCode(ev.NewStatus)
}

func reason(a report.Attempt) string {
	r := strings.TrimSpace(a.Reason)
	if r == "" && a.Status != 0 {
		r = http.StatusText(a.Status)
	}
	if r == "" {
		return ""
	}
	return " " + truncate(r, 80)
}

func sinceLabel(ev Event) string {
	if ev.Kind == KindRecovery {
		return "opened"
	}
	return "since"
}

// since is "2026-11-24T10:00:00Z (12m ago)", relative to ev.At; for a
// recovery "... (open 12m)".
func since(ev Event) string {
	if ev.Since.IsZero() {
		return "unknown"
	}
	s := stamp(ev.Since)
	if ev.At.IsZero() || ev.At.Before(ev.Since) {
		return s
	}
	if ev.Kind == KindRecovery {
		return s + " (open " + span(ev.Since, ev.At) + ")"
	}
	return s + " (" + span(ev.Since, ev.At) + " ago)"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// span is the rounded duration between two instants: 45s, 12m, 3h05m, 2d04h.
func span(from, to time.Time) string {
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return "an unknown time"
	}
	d := to.Sub(from)
	switch {
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

// others describes the other attempts of the run, one line each.
func others(as []report.Attempt) []string {
	var out []string
	for i, a := range as {
		if i == maxOthers {
			out = append(out, fmt.Sprintf("… and %d more", len(as)-maxOthers))
			break
		}
		where := a.Vantage + " / " + string(a.Route)
		if a.Variant != "" && a.Variant != report.VariantConfigured {
			where += " (" + string(a.Variant) + ")"
		}
		var what string
		switch {
		case a.Status == 0 && a.Error != "":
			what = "no answer: " + truncate(a.Error, 120)
		case a.Status == 0:
			what = "no answer"
		case a.OK:
			what = fmt.Sprintf("%d ok", a.Status)
		default:
			what = fmt.Sprint(a.Status) + reason(a)
			if a.Error != "" {
				what += ", " + truncate(a.Error, 120)
			}
		}
		out = append(out, truncate(where+": "+what, 300))
	}
	return out
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

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// esc makes untrusted text inert in mrkdwn: &, < and > are escaped (no
// mentions, no links), control characters replaced.
func esc(s string) string { return mrkdwnEscaper.Replace(clean(s)) }

// code is esc for text inside a code span or block: a run of backticks
// would end it early, so each backtick is followed by a zero-width space.
func code(s string) string {
	return strings.ReplaceAll(esc(s), "`", "`\u200b")
}

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
