package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report/history"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestHistoryCommand: `wscanary history` reads the running daemon's store
// beside it: per series the runs, uptime and handshake times, failures by
// cause, and the incident with its start and end; as a table and as JSON.
func TestHistoryCommand(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: \"\"\nstate_dir: %s\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n",
		filepath.Join(dir, "state"), slack.APIURL()),
		fmt.Sprintf("checks:\n  - {name: chat, url: \"ws://%s/ws\", direct: {address: %q}, schedule: \"@every 1s\"}\n", origin.Addr(), origin.Addr()))
	p := startRun(t, cfg, daemonEnv...)
	defer p.stop(t)
	time.Sleep(3 * time.Second)
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	waitFor(t, "the incident", 15*time.Second, func() bool { r, _ := slack.Posts(); return len(r) == 1 })
	time.Sleep(2 * time.Second)
	origin.Set(testbed.Behavior{})
	waitFor(t, "the recovery", 15*time.Second, func() bool { _, r := slack.Posts(); return len(r) == 1 })

	t.Setenv("SLACK_BOT_TOKEN", canarySlackToken) // the configuration names it
	out, errOut, code := wscanary(t, "history", "--config", cfg, "--since", "1h")
	if code != 0 {
		t.Fatalf("history exit %d: %s", code, errOut)
	}
	t.Logf("wscanary history --since 1h\n%s", out)
	row := regexp.MustCompile(`(?m)^chat\s+us\s+cdn\s+(\d+)\s+(\d+\.\d\d)%\s+(\d+\.\dms)\s+(\d+\.\dms)\s+(\d+\.\dms)\s+-\s+auth_missing x(\d+)`).FindStringSubmatch(out)
	if row == nil || !strings.Contains(out, "Incidents (1)") || !regexp.MustCompile(`(?m)^chat\s+\S+Z\s+\S+Z\s+\d+s\s+auth_missing\s+chat-`).MatchString(out) {
		t.Fatalf("history table:\n%s", out)
	}
	out, _, code = wscanary(t, "history", "--config", cfg, "--check", "chat", "--output", "json")
	var doc history.Doc
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("history json: %v\n%s", err, out)
	}
	if len(doc.Series) != 2 || len(doc.Incidents) != 1 || doc.Incidents[0].Open || doc.Series[0].Runs < 5 ||
		doc.Series[0].Upgraded >= doc.Series[0].Runs || doc.Series[0].P95MS <= 0 || doc.Series[0].P99MS < doc.Series[0].P95MS {
		t.Fatalf("history json: %+v", doc)
	}
	if _, errOut, code := wscanary(t, "history", "--config", cfg, "--since", "soon"); code != exitUsage || !strings.Contains(errOut, "--since") {
		t.Fatalf("a bad --since: exit %d %s", code, errOut)
	}
}
