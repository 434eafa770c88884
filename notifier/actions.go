package notifier

import (
	"regexp"

	"github.com/slack-go/slack"
)

// The buttons of an incident message, when the daemon listens for clicks
// (an app-level token, Socket Mode). Their action ids are how a click is
// recognised: a click whose action id is not one of these was not ours.
const (
	ActionAck     = "wscanary_ack"
	ActionSilence = "wscanary_silence_1h"
	ActionRun     = "wscanary_run"
	// ActionBlockID names the block that holds them.
	ActionBlockID = "wscanary_actions"
)

// ActionsBlock is the row of buttons of an open incident: Acknowledge
// (until someone did), Silence 1h and Run again. Each carries the
// incident's id, which the click is checked against.
func ActionsBlock(inc Incident) slack.Block {
	var els []slack.BlockElement
	if inc.AckedBy == "" {
		b := slack.NewButtonBlockElement(ActionAck, inc.ID, plain("Acknowledge"))
		b.Style = slack.StylePrimary
		els = append(els, b)
	}
	els = append(els,
		slack.NewButtonBlockElement(ActionSilence, inc.ID, plain("Silence 1h")),
		slack.NewButtonBlockElement(ActionRun, inc.ID, plain("Run again")))
	return slack.NewActionBlock(ActionBlockID, els...)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

// person renders who acted: a mention for a Slack user id, the name
// (escaped) otherwise.
func person(who string) string {
	if slackUserID.MatchString(who) {
		return "<@" + who + ">"
	}
	return esc(who)
}
