package notifier_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run when goroutines outlive the tests: an unclosed
// response body or an idle connection left behind by Notify shows up here.
// slacktest's chat.postMessage handler hands each message to a goroutine
// that blocks until an RTM websocket reads it, and no test connects one.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/slack-go/slack/slacktest.(*Server).queueForWebsocket"))
}
