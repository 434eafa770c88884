package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestCrashSafety kills the daemon with SIGKILL during incidents: with
// their messages queued but undelivered (Slack down), after they were
// delivered, and at random moments while runs are recorded. Across all
// restarts each incident's message is posted exactly once, its recovery
// lands in its thread, and the store always opens. It runs on SQLite and
// on PostgreSQL.
func TestCrashSafety(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { crashSafety(t, "") })
	t.Run("postgres", func(t *testing.T) {
		pg := testbed.StartPostgresT(t)
		crashSafety(t, pg.NewDatabaseT(t))
	})
}

func crashSafety(t *testing.T, dsn string) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	storeLine := ""
	if dsn != "" {
		storeLine = "store: " + dsn + "\n"
	}
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(fmt.Sprintf(
		"vantage: crash\nlisten: \"\"\nstate_dir: %s\n%sslack:\n  token: ${SLACK_BOT_TOKEN}\n  channel: \"#c\"\n  api_url: %s\n",
		state, storeLine, slack.APIURL())), 0o600)
	os.WriteFile(filepath.Join(dir, "checks.d", "c.yaml"), []byte(fmt.Sprintf(
		"checks:\n  - {name: a, url: \"ws://%s/ws\", schedule: \"@every 1s\", timeout: 1s}\n  - {name: b, url: \"ws://%s/ws?b\", schedule: \"@every 1s\", timeout: 1s}\n",
		origin.Addr(), origin.Addr())), 0o600)
	cfg := filepath.Join(dir, "wscanary.yaml")
	kill := func(p *daemonProc) {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.done <- nil
	}
	pending := func() int {
		s, err := store.Open(context.Background(), store.Options{DSN: dsn, Dir: state, Beside: true})
		if err != nil {
			return -1
		}
		defer s.Close()
		n, err := s.Pending(context.Background())
		if err != nil {
			return -1
		}
		return n
	}
	var logs strings.Builder

	// 1. Slack is down when the incidents start: their messages wait.
	slack.Down(500)
	p := startRun(t, cfg, daemonEnv...)
	time.Sleep(1500 * time.Millisecond)
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	waitFor(t, "both incidents' messages in the outbox", 15*time.Second, func() bool { return pending() == 2 })
	kill(p)
	logs.WriteString(p.stderr.String())

	// 2. Slack is back: the next process delivers them, once.
	slack2 := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack2.Close)
	os.WriteFile(cfg, []byte(strings.Replace(mustRead(t, cfg), slack.APIURL(), slack2.APIURL(), 1)), 0o600)
	p = startRun(t, cfg, daemonEnv...)
	waitFor(t, "the queued messages", 15*time.Second, func() bool { r, _ := slack2.Posts(); return len(r) == 2 })
	time.Sleep(300 * time.Millisecond) // delivered and recorded
	kill(p)
	logs.WriteString(p.stderr.String())

	// 3. SIGKILL at random moments while every second records runs.
	for i := range 8 {
		p = startRun(t, cfg, daemonEnv...)
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		kill(p)
		logs.WriteString(p.stderr.String())
		if i == 4 {
			origin.Set(testbed.Behavior{}) // recover mid-way through the kills
		}
	}
	p = startRun(t, cfg, daemonEnv...)
	waitFor(t, "both recoveries", 30*time.Second, func() bool {
		_, rep := slack2.Posts()
		n := 0
		for _, r := range rep {
			if strings.Contains(r.Text, "RECOVERED") {
				n++
			}
		}
		return n >= 2
	})
	time.Sleep(1500 * time.Millisecond)
	p.stop(t)
	logs.WriteString(p.stderr.String())

	roots, replies := slack2.Posts()
	if r1, _ := slack.Posts(); len(r1) != 0 || len(roots) != 2 {
		t.Fatalf("incident messages %d (+%d while down): want exactly 2\n%s", len(roots), len(r1), callList(slack2))
	}
	// A recovery in each incident's own thread. A SIGKILL between Slack's
	// answer and the outbox's acknowledgement may repeat one (delivery is
	// at least once, as the README says), so a repeat is told, not failed.
	recovered := map[string]int{}
	for _, rep := range replies {
		if rep.ThreadTS != roots[0].Answered && rep.ThreadTS != roots[1].Answered {
			t.Errorf("a reply outside the incidents' threads: %+v", rep)
		}
		if strings.Contains(rep.Text, "RECOVERED") {
			recovered[rep.ThreadTS]++
		}
	}
	if recovered[roots[0].Answered] == 0 || recovered[roots[1].Answered] == 0 {
		t.Errorf("recoveries per thread %v: want one in each of the two threads\n%s", recovered, callList(slack2))
	} else if len(replies) != 2 {
		t.Logf("%d replies for two recoveries: a SIGKILL fell between a delivery and its acknowledgement", len(replies))
	}
	for _, bad := range lossLines {
		if strings.Contains(logs.String(), bad) {
			t.Fatalf("a SIGKILL left the store in a bad way (%q):\n%s", bad, grepLines(logs.String(), bad, 5))
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
