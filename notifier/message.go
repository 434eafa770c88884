package notifier

import (
	"fmt"
	"slices"
	"strings"

	"github.com/slack-go/slack"

	"github.com/wscanary/wscanary/monitor/report"
)

// The builders below are pure functions of a Message or an Incident, tested
// apart from sending (golden files under testdata/). Blocks are for Slack;
// Text is the plain rendering of the same facts, the notification fallback
// of Slack messages and what Console prints.

// Headline is the one line that says what an incident is: the check, what
// fails, where, and for a resolved one how long it lasted.
func Headline(inc Incident) string {
	if g := inc.Group; g != nil {
		return groupHeadline(inc, *g)
	}
	total := len(inc.Cells)
	if inc.State == StateResolved {
		was := ""
		if a := inc.Attempt; a.Status != 0 || a.Error != "" {
			was = " (was " + attemptWhat(a) + ")"
		}
		return fmt.Sprintf("%s: upgraded again on all %d after %s%s", inc.Check, total, span(inc.Closed.Sub(inc.Opened)), was)
	}
	h := inc.Check + ": " + Failing(inc)
	if inc.FirstRun {
		h += " since the first run"
	}
	return h
}

// badCells are the cells that keep the incident open: failing, else any
// that did not upgrade.
func badCells(cells []Cell) []Cell {
	var failing, other []Cell
	for _, c := range cells {
		switch {
		case c.Stale, c.Muted:
		case c.Failing:
			failing = append(failing, c)
		case c.Outcome != report.OutcomeUpgraded:
			other = append(other, c)
		}
	}
	if len(failing) > 0 {
		return failing
	}
	return other
}

// whatFails names the distinct failures of cells: "403 Forbidden",
// "401, 403", "rejected after the upgrade", "no answer".
func whatFails(cells []Cell) string {
	var parts []string
	statuses := 0
	for _, c := range cells {
		var p string
		switch c.Outcome {
		case report.OutcomeRefused:
			p = fmt.Sprint(c.Status)
			statuses++
		case report.OutcomeRejectedAfterOpen:
			p = "rejected after the upgrade"
		case report.OutcomeNoAnswer:
			p = "no answer"
		default:
			continue
		}
		if !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "failing"
	}
	if len(parts) == 1 && statuses > 0 {
		for _, c := range cells {
			if c.Outcome == report.OutcomeRefused && c.Reason != "" {
				return parts[0] + " " + c.Reason
			}
		}
	}
	return strings.Join(parts, ", ")
}

// cellWhat is one cell of the matrix.
func cellWhat(c Cell) string {
	mark := "✗ "
	if !c.Failing {
		mark = "• "
	}
	var s string
	switch c.Outcome {
	case report.OutcomeUpgraded:
		mark, s = "✓ ", "101"
		if c.Transport == report.TransportHTTP2 {
			s = "200"
		}
	case report.OutcomeNotOffered:
		mark, s = "  ", "not offered"
	case report.OutcomeRefused:
		s = strings.TrimSpace(fmt.Sprintf("%d %s", c.Status, c.Reason))
	case report.OutcomeRejectedAfterOpen:
		s = strings.TrimSpace("101, then " + c.Reason)
	case report.OutcomeNoAnswer:
		s = "no answer"
		if c.Reason != "" {
			s += " (" + c.Reason + ")"
		}
	default:
		mark, s = "  ", "not run"
	}
	if c.Pop != "" && c.Outcome != report.OutcomeNoAnswer {
		s += " at " + c.Pop
	}
	switch {
	case c.Stale:
		mark, s = "? ", s+", silent"
	case c.Muted:
		mark, s = "~ ", s+", silenced"
	}
	return mark + truncate(s, 34)
}

// attemptWhat describes one attempt's result in a few words.
func attemptWhat(a report.Attempt) string {
	switch report.OutcomeOf(a) {
	case report.OutcomeRefused:
		return strings.TrimSpace(fmt.Sprintf("%d %s", a.Status, reason(a)))
	case report.OutcomeRejectedAfterOpen:
		if a.CloseCode != 0 {
			return fmt.Sprintf("101, then closed %d", a.CloseCode)
		}
		return "101, then the reply did not match"
	case report.OutcomeNoAnswer:
		return "no answer: " + truncate(a.Error, 120)
	}
	return "101"
}

// Matrix renders the cells as aligned text: a row per vantage, a column
// per route.
func Matrix(cells []Cell) string {
	// A column is a route over a transport: "cdn", "cdn h2".
	type column struct {
		route     report.Route
		transport report.Transport
	}
	colOf := func(c Cell) column {
		if c.Transport == report.TransportHTTP2 {
			return column{c.Route, report.TransportHTTP2}
		}
		return column{c.Route, ""}
	}
	var routes []column
	var vantages []string
	at := map[string]Cell{}
	key := func(v string, col column) string {
		return v + "\x00" + string(col.route) + "\x00" + string(col.transport)
	}
	for _, c := range cells {
		if col := colOf(c); !slices.Contains(routes, col) {
			routes = append(routes, col)
		}
		if !slices.Contains(vantages, c.Vantage) {
			vantages = append(vantages, c.Vantage)
		}
		at[key(c.Vantage, colOf(c))] = c
	}
	slices.SortFunc(routes, func(a, b column) int {
		switch {
		case a.route == b.route:
			return strings.Compare(string(a.transport), string(b.transport))
		case a.route == report.RouteCDN:
			return -1
		case b.route == report.RouteCDN:
			return 1
		}
		return strings.Compare(string(a.route), string(b.route))
	})
	more := 0
	if len(vantages) > maxCells {
		more, vantages = len(vantages)-maxCells, vantages[:maxCells]
	}
	head := []string{"VANTAGE"}
	for _, col := range routes {
		name := string(col.route)
		if col.transport == report.TransportHTTP2 {
			name += " h2"
		}
		head = append(head, name)
	}
	rows := [][]string{head}
	for _, v := range vantages {
		row := []string{truncate(v, 24)}
		for _, r := range routes {
			if c, ok := at[key(v, r)]; ok {
				row = append(row, cellWhat(c))
			} else {
				row = append(row, "")
			}
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, s := range row {
			widths[i] = max(widths[i], len([]rune(s)))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		for i, s := range row {
			if i == len(row)-1 {
				b.WriteString(s)
			} else {
				b.WriteString(s + strings.Repeat(" ", widths[i]-len([]rune(s))+2))
			}
		}
		b.WriteString("\n")
	}
	if more > 0 {
		fmt.Fprintf(&b, "… and %d more vantages\n", more)
	}
	return strings.TrimRight(b.String(), "\n")
}

func routeNames(rs []report.Route) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// Blocks builds the Block Kit message of an incident: the headline, when
// and why, the vantage x route matrix, what to check, the telling headers
// and body, the diagnostic attempts, and a footer with the URL, the trace
// and the incident id. A resolved incident keeps its facts under a
// RESOLVED header.
func Blocks(inc Incident) []slack.Block {
	if inc.Group != nil {
		return groupBlocks(inc)
	}
	if inc.InGroup != nil {
		return pointerBlocks(inc)
	}
	icon := ":rotating_light: "
	if inc.State == StateResolved {
		icon = ":white_check_mark: RESOLVED "
	}
	blocks := []slack.Block{header(icon + Headline(inc))}
	fields := []*slack.TextBlockObject{field("Check", esc(inc.Check))}
	if inc.State == StateResolved {
		fields = append(fields, field("Resolved", esc(stamp(inc.Closed)+" after "+span(inc.Closed.Sub(inc.Opened)))))
	} else {
		fields = append(fields, field("Failing since", esc(since(inc))))
	}
	if inc.Cause != "" && inc.Cause != report.CauseOK {
		fields = append(fields, field("Cause", "`"+esc(string(inc.Cause))+"`"+vendorSuffix(inc.Vendor)))
	}
	if where := failingWhere(inc.Cells); where != "" && inc.State != StateResolved {
		fields = append(fields, field("Where", esc(where)))
	}
	if who := answeredBy(inc); who != "" {
		fields = append(fields, field("Answered by", esc(who)))
	}
	if inc.Flips > 0 {
		fields = append(fields, field("Flipping", fmt.Sprintf("upgraded %d time(s) without staying up for alert.recover_after", inc.Flips)))
	}
	if inc.Flaps > 0 {
		fields = append(fields, field("Flapping", fmt.Sprintf("failed again %d time(s) after recovering", inc.Flaps)))
	}
	if r := request(inc.Attempt); r != "" {
		fields = append(fields, field("Request", esc(r)))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	if inc.AckedBy != "" {
		blocks = append(blocks, section(":eyes: Acknowledged by "+person(inc.AckedBy)+" at "+esc(stamp(inc.AckedAt))))
	}
	for _, n := range inc.Notes {
		blocks = append(blocks, section(":information_source: "+esc(n)))
	}
	if len(inc.Cells) > 0 {
		blocks = append(blocks, section("```"+esc(Matrix(inc.Cells))+"```"))
	}
	if s := summaryAndHints("", inc); s != "" {
		blocks = append(blocks, section(s))
	}
	a := inc.Attempt
	if hs := telling(a.Headers); len(hs) > 0 {
		lines := make([]string, len(hs))
		for i, h := range hs {
			lines[i] = h[0] + ": " + h[1]
		}
		blocks = append(blocks, section("*Telling headers* ("+esc(a.Vantage+"/"+string(a.Route))+")\n```"+esc(strings.Join(lines, "\n"))+"```"))
	}
	if s := snippet(a.Body); s != "" {
		blocks = append(blocks, section(fmt.Sprintf("*Body* (first %d characters)\n```%s```", bodySnippet, esc(s))))
	}
	if vs := variants(inc.Variants); len(vs) > 0 {
		var vb strings.Builder
		vb.WriteString("*Diagnostic attempts*")
		for _, v := range vs {
			vb.WriteString("\n• " + esc(v))
		}
		blocks = append(blocks, section(vb.String()))
	}
	return append(blocks, footer(inc))
}

func vendorSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (" + esc(v) + ")"
}

// since is "2026-11-24T10:00:00Z (12m ago)" relative to inc.At, or says
// the check has failed since its first run.
func since(inc Incident) string {
	s := stamp(inc.Opened)
	if !inc.At.IsZero() && !inc.At.Before(inc.Opened) {
		s += " (" + span(inc.At.Sub(inc.Opened)) + " ago)"
	}
	if inc.FirstRun {
		s += ", the first run"
	}
	return s
}

func failingWhere(cells []Cell) string {
	var out []string
	for _, c := range badCells(cells) {
		out = append(out, c.Vantage+"/"+string(c.Route))
	}
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("… %d more", len(out)-12))
	}
	return strings.Join(out, ", ")
}

// variants describes the diagnostic attempts, one line each.
func variants(as []report.Attempt) []string {
	var out []string
	for i, a := range as {
		if i == maxVariants {
			out = append(out, fmt.Sprintf("… and %d more", len(as)-maxVariants))
			break
		}
		out = append(out, truncate(fmt.Sprintf("%s/%s %s: %s", a.Vantage, a.Route, a.Variant, attemptWhat(a)), 300))
	}
	return out
}

func footer(inc Incident) slack.Block {
	a := inc.Attempt
	var parts []slack.MixedElement
	if a.URL != "" {
		parts = append(parts, mrkdwn("URL `"+esc(a.URL)+"`"))
	}
	switch {
	case a.TraceID != "" && inc.TraceURL != "":
		parts = append(parts, mrkdwn("Trace <"+linkURL(inc.TraceURL)+"|"+linkText(a.TraceID)+">"))
	case inc.TraceURL != "":
		parts = append(parts, mrkdwn("<"+linkURL(inc.TraceURL)+"|Trace>"))
	case a.TraceID != "":
		parts = append(parts, mrkdwn("Trace `"+esc(a.TraceID)+"`"))
	}
	id := "Incident `" + esc(inc.ID) + "`"
	if !inc.At.IsZero() {
		id += " as of " + esc(stamp(inc.At))
	}
	parts = append(parts, mrkdwn(id))
	return slack.NewContextBlock("", parts...)
}

// Failing says what fails where: "403 Forbidden on 2 of 6".
func Failing(inc Incident) string {
	bad := badCells(inc.Cells)
	return fmt.Sprintf("%s on %d of %d", whatFails(bad), len(bad), len(inc.Cells))
}

// EventLine words one event of an incident for a thread reply.
func EventLine(inc Incident, e Event) string {
	where := e.Failing
	if where == "" {
		where = Failing(inc)
	}
	if g := inc.Group; g != nil {
		switch e.Kind {
		case EventResolved:
			return fmt.Sprintf("RECOVERED  all %d checks upgrade again after %s", g.Checks, span(e.Lasted))
		case EventLeft:
			return fmt.Sprintf("LEFT THE GROUP  %s: now %s; it has its own message again", e.Member, causeText(e.ToCause, e.ToVendor))
		case EventCauseChanged:
			return fmt.Sprintf("CAUSE CHANGED  most of the group's checks: %s -> %s", causeText(e.FromCause, e.FromVendor), causeText(e.ToCause, e.ToVendor))
		}
	}
	switch e.Kind {
	case EventCauseChanged:
		return fmt.Sprintf("CAUSE CHANGED  %s: %s -> %s", inc.Check, causeText(e.FromCause, e.FromVendor), causeText(e.ToCause, e.ToVendor))
	case EventWidened:
		return fmt.Sprintf("WIDER  %s: now also %s; %s", inc.Check, strings.Join(e.Added, ", "), where)
	case EventReminder:
		return fmt.Sprintf("STILL FAILING  %s: for %s, %s", inc.Check, span(e.Lasted), where)
	case EventResolved:
		if e.Flips > 0 {
			return fmt.Sprintf("RECOVERED  %s: upgraded again on all %d after %s (it flipped back %d time(s) before that)",
				inc.Check, len(inc.Cells), span(e.Lasted), e.Flips)
		}
		return fmt.Sprintf("RECOVERED  %s: upgraded again on all %d after %s", inc.Check, len(inc.Cells), span(e.Lasted))
	case EventReopened:
		return fmt.Sprintf("FAILING AGAIN  %s: %s (reopened %d time(s))", inc.Check, where, e.Flaps)
	case EventOpened:
		return "FAILING  " + Headline(inc)
	case EventElided:
		return fmt.Sprintf("…  %s: %d earlier change(s) in this thread's wait; `wscanary history` has them all", inc.Check, e.Flaps)
	}
	return strings.ToUpper(string(e.Kind)) + "  " + inc.Check
}

// ReplyBlocks builds a thread reply: one line per event, and for a changed
// cause the new diagnosis.
func ReplyBlocks(m Message) []slack.Block {
	var inc Incident
	if m.Incident != nil {
		inc = *m.Incident
	}
	var blocks []slack.Block
	for _, e := range m.Events {
		icon := map[EventKind]string{EventResolved: ":white_check_mark: ", EventCauseChanged: ":warning: ",
			EventWidened: ":warning: ", EventReminder: ":alarm_clock: ", EventReopened: ":rotating_light: "}[e.Kind]
		text := icon + esc(EventLine(inc, e))
		if e.Kind == EventCauseChanged && inc.Summary != "" {
			text += "\n" + esc(inc.Summary)
			for _, h := range hintsOf(inc.Hints) {
				text += "\n• " + esc(h)
			}
		}
		blocks = append(blocks, section(text))
	}
	return blocks
}

// NoticeBlocks builds a notice: its title and lines.
func NoticeBlocks(n Notice) []slack.Block {
	icon := ":warning:"
	if n.Good {
		icon = ":white_check_mark:"
	}
	text := icon + " *" + esc(n.Title) + "*"
	for _, l := range n.Lines {
		text += "\n" + esc(l)
	}
	return []slack.Block{section(text)}
}

// Text renders a message as plain text: the first line says what
// happened, the following lines are aligned "label  value" pairs or the
// matrix. Control characters from the target's answer are replaced, so
// printing it to a terminal is safe.
func Text(m Message) string {
	var b strings.Builder
	switch m.Kind {
	case KindNotice:
		if m.Notice != nil {
			label := "WARNING  "
			if m.Notice.Good {
				label = "OK  "
			}
			b.WriteString(clean(label + m.Notice.Title + "\n"))
			for _, l := range m.Notice.Lines {
				writeField(&b, "", l)
			}
		}
	case KindReply:
		var inc Incident
		if m.Incident != nil {
			inc = *m.Incident
		}
		for _, e := range m.Events {
			b.WriteString(clean(EventLine(inc, e)) + "\n")
			if e.Kind == EventCauseChanged && inc.Summary != "" {
				writeField(&b, "summary", inc.Summary)
			}
		}
	case KindUpdate:
		if m.Incident != nil && m.Incident.InGroup != nil {
			b.WriteString(clean("IN GROUP  "+m.Incident.Check+": "+pointerLine(*m.Incident)) + "\n")
		} else if m.Incident != nil {
			b.WriteString(clean(updateWord(*m.Incident) + "  " + Headline(*m.Incident) + "\n"))
			writeBlock(&b, Matrix(m.Incident.Cells))
		}
	default:
		if m.Incident != nil {
			incidentText(&b, *m.Incident)
		}
	}
	return b.String()
}

func updateWord(inc Incident) string {
	if inc.State == StateResolved {
		return "RESOLVED"
	}
	return "UPDATED"
}

func incidentText(b *strings.Builder, inc Incident) {
	if inc.Group != nil {
		groupText(b, inc)
		return
	}
	if inc.InGroup != nil {
		b.WriteString(clean("IN GROUP  "+inc.Check+": "+pointerLine(inc)) + "\n")
		return
	}
	word := "FAILING"
	if inc.State == StateResolved {
		word = "RESOLVED"
	}
	b.WriteString(clean(word+"  "+Headline(inc)) + "\n")
	writeBlock(b, Matrix(inc.Cells))
	if inc.State == StateResolved {
		writeField(b, "resolved", stamp(inc.Closed)+" after "+span(inc.Closed.Sub(inc.Opened)))
	} else {
		writeField(b, "since", since(inc))
	}
	if inc.Cause != "" && inc.Cause != report.CauseOK {
		writeField(b, "cause", causeText(inc.Cause, inc.Vendor))
	}
	writeField(b, "answered by", answeredBy(inc))
	writeField(b, "summary", inc.Summary)
	for _, h := range hintsOf(inc.Hints) {
		writeField(b, "hint", h)
	}
	if inc.AckedBy != "" {
		writeField(b, "acked", inc.AckedBy+" at "+stamp(inc.AckedAt))
	}
	for _, n := range inc.Notes {
		writeField(b, "note", n)
	}
	a := inc.Attempt
	writeField(b, "request", request(a))
	for _, h := range telling(a.Headers) {
		writeField(b, "header", h[0]+": "+h[1])
	}
	writeField(b, "body", snippet(a.Body))
	for _, v := range variants(inc.Variants) {
		writeField(b, "variant", v)
	}
	writeField(b, "trace", a.TraceID)
	writeField(b, "trace url", inc.TraceURL)
	writeField(b, "url", a.URL)
	writeField(b, "incident", inc.ID)
}

const labelWidth = 10

// writeField writes "  label     value" (continuation lines aligned);
// nothing for an empty value.
func writeField(b *strings.Builder, label, value string) {
	if value == "" {
		return
	}
	for i, line := range strings.Split(clean(value), "\n") {
		if i > 0 {
			label = ""
		}
		fmt.Fprintf(b, "  %-*s%s\n", labelWidth, label, line)
	}
}

func writeBlock(b *strings.Builder, text string) {
	for _, line := range strings.Split(clean(text), "\n") {
		b.WriteString("    " + line + "\n")
	}
}

// answeredBy says which hop produced the telling answer: the application,
// an edge, a sign-in gateway or the vantage's own proxy (then the target
// was not reached from there). "" when nothing answered.
func answeredBy(inc Incident) string {
	a := inc.Attempt
	switch a.Hop {
	case report.HopVantageProxy:
		who := "the egress proxy of " + a.Vantage
		if a.Peer != "" {
			who += " (" + a.Peer + ")"
		}
		return who + ": the target was not reached from " + a.Vantage
	case report.HopGateway:
		if a.Gateway != "" {
			return "the sign-in gateway " + a.Gateway
		}
		return "a sign-in gateway"
	case report.HopEdge:
		if a.Edge != "" {
			return "the edge " + a.Edge
		}
		return "an edge"
	case report.HopTarget:
		return "the target"
	}
	return ""
}

// summaryAndHints is the diagnosis' summary (after label, when set) and
// what to check, as one mrkdwn section's text; "" when there is neither.
func summaryAndHints(label string, inc Incident) string {
	var b strings.Builder
	if inc.Summary != "" {
		b.WriteString(label + esc(inc.Summary))
	}
	if hs := hintsOf(inc.Hints); len(hs) > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("*What to check*")
		for _, h := range hs {
			b.WriteString("\n• " + esc(h))
		}
	}
	return b.String()
}
