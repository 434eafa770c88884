package notifier_test

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run when goroutines outlive the tests: an unclosed
// response body or an idle connection left behind by Notify shows up here.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines outlived the tests:\n\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// knownLeaks are goroutines that are not ours to stop: slacktest's
// chat.postMessage handler hands each message to a goroutine that blocks
// until an RTM websocket reads it, and no test connects one.
var knownLeaks = []string{"slacktest.(*Server).queueForWebsocket"}

func leakedGoroutines(wait time.Duration) string {
	deadline := time.Now().Add(wait)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for i, g := range strings.Split(string(buf), "\n\n") {
			if i == 0 || strings.TrimSpace(g) == "" {
				continue // this goroutine
			}
			known := false
			for _, k := range knownLeaks {
				known = known || strings.Contains(g, k)
			}
			if !known {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
