package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// handOverAfterFullDisk: five checks fail while the SQLite state_dir is
// full; the daemon posts each incident from memory (retrying while Slack
// fails for slackDown), and when space comes back hands them over with
// their messages: each is posted once, and its recovery lands in its
// thread. Before the fix: ten top-level messages, the first five left
// FAILING; with Slack failing, none posted while the disk was full.
func handOverAfterFullDisk(t *testing.T, slackDown time.Duration, kill bool) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as a disk that fills up")
	}
	const n = 5
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := burstConfig(t, n, origin.Addr(), slack.APIURL(), listen, "1s")
	state := smallDisk(t, cfg)
	p := startRun(t, cfg, daemonEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s\nslack calls:\n%s", lastLines(p.stderr.String(), 60), callList(slack))
		}
		p.stop(t)
	})
	waitFor(t, "healthy runs", 30*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Count(s, `"status": 101`) == n
	})
	filler := filepath.Join(state, "filler")
	f, _ := os.Create(filler)
	io.Copy(f, io.LimitReader(zeros{}, 8<<20)) // stops when the disk is full
	f.Close()
	if slackDown > 0 {
		slack.Down(http.StatusInternalServerError)
	}
	origin.Set(testbed.Behavior{Status: http.StatusForbidden, Body: "forbidden"})
	if slackDown > 0 {
		time.Sleep(slackDown) // the shape of the outage, not a wait for work
		slack.Up()
	}
	waitFor(t, "every incident posted while the disk is full", 2*time.Minute, func() bool {
		roots, _ := slack.Posts()
		return len(roots) >= n
	})
	if code, body := get(listen, "/healthz"); code != http.StatusOK || !strings.Contains(body, "degraded") {
		t.Fatalf("with the disk full /healthz says %d %q", code, body)
	}
	os.Remove(filler)
	oldLogs := ""
	if kill {
		// In the middle of the hand-over (or just before it): what was
		// posted alone is in the journal, and the next process hands it
		// over instead of posting it again.
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.done <- nil
		oldLogs = p.stderr.String()
		p = startRun(t, cfg, daemonEnv...)
	}
	waitFor(t, "the hand-over", time.Minute, func() bool {
		code, body := get(listen, "/healthz")
		return code == http.StatusOK && strings.TrimSpace(body) == "ok"
	})
	if kill {
		// Whether the kill came before the hand-over committed (the next
		// process hands the journal over) or after (nothing is left).
		if !strings.Contains(oldLogs, "handed over to the store") &&
			!strings.Contains(p.stderr.String(), "handing over what a previous process decided without the store") {
			t.Errorf("neither process handed over what was decided alone:\nold:\n%s", lastLines(oldLogs, 20))
		}
	}
	origin.Set(testbed.Behavior{})
	waitFor(t, "every recovery", time.Minute, func() bool {
		_, replies := slack.Posts()
		return len(replies) >= n
	})
	roots, replies := slack.Posts()
	if len(roots) != n {
		t.Errorf("%d top-level messages for %d incidents", len(roots), n)
	}
	// Each check's recovery in its own incident's thread.
	thread := map[string]string{} // check -> its message's ts
	for _, r := range roots {
		for _, c := range checksIn(r.Text) {
			thread[c] = r.Answered
		}
	}
	for _, r := range replies {
		for _, c := range checksIn(r.Text) {
			if r.ThreadTS != thread[c] {
				t.Errorf("%s: a reply outside its incident's thread: %.100q", c, r.Text)
			}
		}
	}
}

func TestHandOverAfterFullDisk(t *testing.T) { handOverAfterFullDisk(t, 0, false) }

func TestHandOverAfterFullDiskSlackDown(t *testing.T) {
	handOverAfterFullDisk(t, 15*time.Second, false)
}

func TestHandOverAfterFullDiskKilled(t *testing.T) { handOverAfterFullDisk(t, 0, true) }
