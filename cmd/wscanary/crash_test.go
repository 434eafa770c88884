package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestCrashSafety kills the daemon with SIGKILL during an incident: with
// the alert queued but undelivered (Slack down), after it was delivered,
// and at random moments while state is being written. Across all restarts
// the alert is delivered exactly once and the state file always loads.
func TestCrashSafety(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(fmt.Sprintf(
		"vantage: crash\nlisten: \"\"\nstate_dir: %s\nslack:\n  token: ${SLACK_BOT_TOKEN}\n  channel: \"#c\"\n  api_url: %s\n",
		filepath.Join(dir, "state"), slack.APIURL())), 0o600)
	os.WriteFile(filepath.Join(dir, "checks.d", "c.yaml"), []byte(fmt.Sprintf(
		"checks:\n  - {name: a, url: \"ws://%s/ws\", schedule: \"@every 1s\", timeout: 1s}\n  - {name: b, url: \"ws://%s/ws?b\", schedule: \"@every 1s\", timeout: 1s}\n",
		origin.Addr(), origin.Addr())), 0o600)
	cfg := filepath.Join(dir, "wscanary.yaml")
	env := []string{"SLACK_BOT_TOKEN=" + canarySlackToken, "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_ENDPOINT="}
	kill := func(p *daemonProc) {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.done <- nil
	}
	var logs strings.Builder

	// 1. Slack is down when the incident starts: the alerts wait in the outbox.
	slack.FailNext(repeat(500, 1000)...)
	p := startRun(t, cfg, env...)
	time.Sleep(1500 * time.Millisecond)
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	statePath := filepath.Join(dir, "state", "state.json")
	waitFor(t, "both alerts in the outbox on disk", 10*time.Second, func() bool {
		b, _ := os.ReadFile(statePath)
		return strings.Count(string(b), `"kind": "alert"`) == 2
	})
	kill(p)
	logs.WriteString(p.stderr.String())

	// 2. Slack is back: the next process delivers them, once.
	slack2 := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack2.Close)
	os.WriteFile(cfg, []byte(strings.Replace(mustRead(t, cfg), slack.APIURL(), slack2.APIURL(), 1)), 0o600)
	p = startRun(t, cfg, env...)
	waitFor(t, "the queued alerts", 10*time.Second, func() bool { r, _ := slack2.Posts(); return len(r) == 2 })
	time.Sleep(300 * time.Millisecond) // delivered and saved
	kill(p)
	logs.WriteString(p.stderr.String())

	// 3. SIGKILL at random moments while runs save state every second.
	for i := range 8 {
		p = startRun(t, cfg, env...)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		kill(p)
		logs.WriteString(p.stderr.String())
		if i == 4 {
			origin.Set(testbed.Behavior{}) // recover mid-way through the kills
		}
	}
	p = startRun(t, cfg, env...)
	waitFor(t, "both recoveries", 15*time.Second, func() bool { _, rep := slack2.Posts(); return len(rep) >= 2 })
	time.Sleep(1500 * time.Millisecond)
	p.stop(t)
	logs.WriteString(p.stderr.String())

	roots, replies := slack2.Posts()
	if r1, _ := slack.Posts(); len(r1) != 0 || len(roots) != 2 || len(replies) != 2 {
		t.Fatalf("alerts %d (+%d while down), recoveries %d: want exactly 2 and 2", len(roots), len(r1), len(replies))
	}
	for _, rep := range replies {
		if rep.ThreadTS != roots[0].Answered && rep.ThreadTS != roots[1].Answered {
			t.Errorf("recovery not in an alert's thread: %+v", rep)
		}
	}
	if strings.Contains(logs.String(), "moved aside") {
		t.Fatalf("a SIGKILL left a corrupt state file:\n%s", logs.String())
	}
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
