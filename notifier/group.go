package notifier

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/wscanary/wscanary/monitor/report"
)

// GroupNames bounds the checks a group's message names before "and N
// more": the status page has them all.
const GroupNames = 20

// groupHeadline: "37 checks: cdn_blocked (nginx), 31 failing" or, closed,
// "37 checks upgrade again after 12m (cdn_blocked, nginx)".
func groupHeadline(inc Incident, g GroupView) string {
	what := string(inc.Cause)
	if inc.Vendor != "" {
		what += " (" + inc.Vendor + ")"
	}
	n, open := g.Checks, g.Failing
	if g.Emptied {
		return fmt.Sprintf("its checks (%s) moved to another group's message", what)
	}
	if inc.State == StateResolved {
		return fmt.Sprintf("%d checks upgrade again after %s (were %s)", n, span(inc.Closed.Sub(inc.Opened)), what)
	}
	if open == n {
		return fmt.Sprintf("%d checks fail together: %s", n, what)
	}
	return fmt.Sprintf("%d checks fail together: %s; %d of %d upgrade again", n, what, n-open, n)
}

// groupBlocks is a group's message: the headline, the cause and hints
// once, the checks by name (the first GroupNames, then how many more),
// and the link to the status page filtered to the group.
func groupBlocks(inc Incident) []slack.Block {
	g := *inc.Group
	icon := ":rotating_light: "
	if inc.State == StateResolved {
		icon = ":white_check_mark: RESOLVED "
	}
	blocks := []slack.Block{header(icon + Headline(inc))}
	fields := []*slack.TextBlockObject{field("Checks", fmt.Sprintf("%d, %d failing", g.Checks, g.Failing))}
	if inc.State == StateResolved {
		fields = append(fields, field("Resolved", esc(stamp(inc.Closed)+" after "+span(inc.Closed.Sub(inc.Opened)))))
	} else {
		fields = append(fields, field("Failing since", esc(since(inc))))
	}
	if inc.Cause != "" && inc.Cause != report.CauseOK {
		fields = append(fields, field("Cause", "`"+esc(string(inc.Cause))+"`"+vendorSuffix(inc.Vendor)))
	}
	if len(g.Pops) > 0 {
		fields = append(fields, field("Edge locations", esc(strings.Join(g.Pops, ", "))))
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))
	if inc.AckedBy != "" {
		blocks = append(blocks, section(":eyes: Acknowledged by "+person(inc.AckedBy)+" at "+esc(stamp(inc.AckedAt))))
	}
	for _, n := range inc.Notes {
		blocks = append(blocks, section(":information_source: "+esc(n)))
	}
	blocks = append(blocks, section(esc(groupMembersText(g))))
	if s := summaryAndHints("*Like the first:* ", inc); s != "" {
		blocks = append(blocks, section(s))
	}
	parts := []slack.MixedElement{mrkdwn("Group `" + esc(inc.ID) + "` of " + esc(g.Key))}
	if g.Link != "" {
		parts = append(parts, mrkdwn("<"+linkURL(g.Link)+"|Every check on the status page>"))
	}
	return append(blocks, slack.NewContextBlock("", parts...))
}

// groupMembersText names the failing checks, then those upgrading again:
// the first GroupNames of each, then how many more.
func groupMembersText(g GroupView) string {
	var b strings.Builder
	if g.Failing > 0 {
		b.WriteString("Failing: " + names(g.FailingNames, g.Failing))
	}
	if again := g.Checks - g.Failing; again > 0 {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString("Upgrading again: " + names(g.AgainNames, again))
	}
	return b.String()
}

func names(first []string, total int) string {
	s := strings.Join(first, ", ")
	if more := total - len(first); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// pointerLine: where a member's news now is.
func pointerLine(inc Incident) string {
	return fmt.Sprintf("%s; it is now part of group %s (%s): its news are in the group's message", Failing(inc), inc.InGroup.ID, inc.InGroup.Key)
}

// pointerBlocks is a member's own message once it joined a group: what
// failed, and where the rest is told.
func pointerBlocks(inc Incident) []slack.Block {
	icon := ":link: "
	if inc.State == StateResolved {
		icon = ":white_check_mark: "
	}
	return []slack.Block{section(icon + "*" + esc(inc.Check) + "*: " + esc(pointerLine(inc)))}
}

func groupText(b *strings.Builder, inc Incident) {
	word := "FAILING"
	if inc.State == StateResolved {
		word = "RESOLVED"
	}
	b.WriteString(clean(word+"  "+Headline(inc)) + "\n")
	writeField(b, "checks", groupMembersText(*inc.Group))
	if len(inc.Group.Pops) > 0 {
		writeField(b, "locations", strings.Join(inc.Group.Pops, ", "))
	}
	if inc.AckedBy != "" {
		writeField(b, "acked", inc.AckedBy)
	}
	for _, n := range inc.Notes {
		writeField(b, "note", n)
	}
	if inc.Summary != "" {
		writeField(b, "summary", inc.Summary)
	}
	for _, h := range hintsOf(inc.Hints) {
		writeField(b, "check", h)
	}
	writeField(b, "group", inc.ID)
}
