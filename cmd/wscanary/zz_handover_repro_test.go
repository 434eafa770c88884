package main

// Repro of issue 23: incidents decided alone while the SQLite state_dir is
// full are posted again after the hand-over. Scratch test (handover repro).

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

func handoverRepro(t *testing.T, slackDownFor time.Duration, outage time.Duration) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	const n = 5
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := burstConfig(t, n, origin.Addr(), slack.APIURL(), listen, "1s")
	state := filepath.Join(filepath.Dir(cfg), "state")
	os.MkdirAll(state, 0o700)
	if out, err := run1("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", state); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { run1("umount", "-l", state) })
	p := startRun(t, cfg, daemonEnv...)
	defer func() { p.stop(t) }()
	t0 := time.Now()
	stamp := func(what string) { t.Logf("%6.1fs %s", time.Since(t0).Seconds(), what) }
	t.Cleanup(func() {
		all := p.stderr.String()
		for _, l := range strings.Split(all, "\n") {
			if strings.Contains(l, "store") || strings.Contains(l, "delivered") || strings.Contains(l, "notification") {
				t.Log(l)
			}
		}
		t.Logf("slack calls:\n%s", callList(slack))
	})
	waitFor(t, "healthy runs", 15*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Count(s, `"status": 101`) == n
	})
	filler := filepath.Join(state, "filler")
	f, _ := os.Create(filler)
	io.Copy(f, io.LimitReader(zeros{}, 8<<20))
	f.Close()
	stamp("disk full")
	if slackDownFor > 0 {
		slack.Down(http.StatusInternalServerError)
		stamp("slack down")
	}
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	stamp("origin 403")
	deadline := time.Now().Add(outage)
	if slackDownFor > 0 {
		time.Sleep(slackDownFor)
		slack.Up()
		stamp("slack up")
	}
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	roots, _ := slack.Posts()
	stamp("roots before freeing space: " + itoa(len(roots)))
	during := len(roots)
	os.Remove(filler)
	stamp("space freed")
	waitFor(t, "/healthz ok", 30*time.Second, func() bool {
		code, body := get(listen, "/healthz")
		return code == 200 && !strings.Contains(body, "degraded")
	})
	time.Sleep(5 * time.Second)
	origin.Set(testbed.Behavior{})
	stamp("origin healthy")
	time.Sleep(8 * time.Second)
	roots, replies := slack.Posts()
	stamp("roots " + itoa(len(roots)) + " replies " + itoa(len(replies)))
	if during != n {
		t.Errorf("%d incidents posted while the store was full, want %d", during, n)
	}
	if len(roots) != n {
		t.Errorf("%d top-level posts for %d incidents", len(roots), n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestHandoverReproDoublePost(t *testing.T) { handoverRepro(t, 0, 20*time.Second) }

func TestHandoverReproSlackDown(t *testing.T) { handoverRepro(t, 15*time.Second, 30*time.Second) }
