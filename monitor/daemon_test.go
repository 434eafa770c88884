package monitor_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor"
	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

const slackToken = "xoxb-CANARY-daemon-test"

type rig struct {
	origin *testbed.Origin
	slack  *testbed.FakeSlack
	cfg    *config.Config
	dir    string
	stores map[*monitor.Daemon]*store.Store
}

func newRig(t *testing.T) *rig {
	t.Helper()
	o, err := testbed.NewOrigin(testbed.OriginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	s := testbed.NewFakeSlack(slackToken)
	t.Cleanup(s.Close)
	dir := t.TempDir()
	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: test\nlisten: \"\"\n"), map[string][]byte{"c.yaml": []byte(fmt.Sprintf(
		"checks:\n  - name: chat\n    url: ws://%s/ws\n    schedule: \"@every 1s\"\n    timeout: 2s\n", o.Addr()))},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = dir
	return &rig{origin: o, slack: s, cfg: cfg, dir: dir, stores: map[*monitor.Daemon]*store.Store{}}
}

func (r *rig) start(t *testing.T) *monitor.Daemon {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{Dir: r.dir})
	if err != nil {
		t.Fatal(err)
	}

	n, err := notifier.NewSlack(notifier.SlackOptions{Token: slackToken, Channel: "#alerts", APIURL: r.slack.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	d, err := monitor.NewDaemon(monitor.DaemonOptions{Config: r.cfg, Store: st, Notifier: n})
	if err != nil {
		t.Fatal(err)
	}
	d.Start()
	r.stores[d] = st
	return d
}

// stop stops d and closes its store, as `wscanary run` does at exit.
func (r *rig) stop(t *testing.T, d *monitor.Daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	r.stores[d].Close()
}

func forbid(o *testbed.Origin) {
	o.Set(testbed.Behavior{Status: http.StatusForbidden, Body: "forbidden"})
}

// TestSlackOutageLosesNothing: while Slack answers 500s and then 429s, the
// series alerts and recovers; afterwards both are delivered, in order,
// once each, the recovery in the alert's thread.
func TestSlackOutageLosesNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.slack.FailNext(500, 500, 503, 429, 429)
	d := r.start(t)
	defer r.stop(t, d)
	waitFor(t, "a healthy series", 10*time.Second, func() bool {
		st := d.Status(context.Background())
		return len(st.Series) == 1 && st.Series[0].Status == 101
	})
	forbid(r.origin)
	waitFor(t, "the alert to be queued", 10*time.Second, func() bool { return d.Status(context.Background()).Pending > 0 })
	r.origin.Set(testbed.Behavior{})
	waitFor(t, "both to be delivered", 40*time.Second, func() bool {
		roots, replies := r.slack.Posts()
		return len(roots) == 1 && len(replies) == 1
	})
	time.Sleep(1500 * time.Millisecond)
	roots, replies := r.slack.Posts()
	if len(roots) != 1 || len(replies) != 1 {
		t.Fatalf("%d alerts, %d replies", len(roots), len(replies))
	}
	if !roots[0].At.Before(replies[0].At) || replies[0].ThreadTS != roots[0].Answered {
		t.Fatalf("out of order or unthreaded: alert %+v recovery %+v", roots[0], replies[0])
	}
	if !strings.Contains(roots[0].Text, "403") || d.Status(context.Background()).Pending != 0 {
		t.Fatalf("alert %q, pending %d", roots[0].Text, d.Status(context.Background()).Pending)
	}
}

// TestRestartDeliversQueuedAlert: an alert queued while Slack is down
// survives a restart and is delivered once by the next process.
func TestRestartDeliversQueuedAlert(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	forbid(r.origin)
	r.slack.FailNext(500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500)
	d := r.start(t)
	waitFor(t, "the alert to be queued", 10*time.Second, func() bool { return d.Status(context.Background()).Pending == 1 })
	r.stop(t, d)
	if roots, _ := r.slack.Posts(); len(roots) != 0 {
		t.Fatal("delivered while Slack was down?")
	}
	// The next process finds Slack healthy again.
	r2 := *r
	r2.slack = testbed.NewFakeSlack(slackToken)
	t.Cleanup(r2.slack.Close)
	d = r2.start(t)
	defer r.stop(t, d)
	waitFor(t, "the queued alert", 10*time.Second, func() bool { roots, _ := r2.slack.Posts(); return len(roots) == 1 })
	time.Sleep(2500 * time.Millisecond) // more runs at 403: no second alert
	if roots, _ := r2.slack.Posts(); len(roots) != 1 || d.Status(context.Background()).Pending != 0 {
		t.Fatalf("%d alerts after restart, %d pending", len(roots), d.Status(context.Background()).Pending)
	}
}

// TestOverlapSkipped: a run that outlasts its interval makes the next tick
// skip rather than pile up.
func TestOverlapSkipped(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.origin.Set(testbed.Behavior{HeaderDelay: 1800 * time.Millisecond})
	d := r.start(t)
	time.Sleep(4500 * time.Millisecond)
	r.stop(t, d)
	n := 0
	for _, q := range r.origin.Requests() {
		if q.Path == "/ws" {
			n++
		}
	}
	// 1s ticks for 4.5s with 1.8s runs: at most 3 runs, not 4-5.
	if n < 1 || n > 3 {
		t.Fatalf("%d runs started", n)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testbed.WaitFor(t, what, timeout, cond)
}

// TestStopCancelsLongAttempts: a stop lets runs in flight finish for a
// short grace, then cancels them; a cancelled run is not evidence (it is
// not recorded, so it can neither open nor close anything), and Stop
// returns well inside systemd's TimeoutStopSec even when a check's timeout
// is the maximum.
func TestStopCancelsLongAttempts(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.origin.Set(testbed.Behavior{Hang: true})
	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: test\nlisten: \"\"\n"), map[string][]byte{"c.yaml": []byte(fmt.Sprintf(
		"checks:\n  - name: slow\n    url: ws://%s/ws\n    schedule: \"@every 1s\"\n    timeout: %s\n", r.origin.Addr(), config.MaxTimeout))},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = r.dir
	r.cfg = cfg
	d := r.start(t)
	waitFor(t, "an attempt in flight", 10*time.Second, func() bool { return len(r.origin.Requests()) > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	d.Stop(ctx)
	defer r.stores[d].Close()
	if took := time.Since(start); took > monitor.StopGrace+2*time.Second {
		t.Fatalf("Stop took %v with a run in flight (grace %v)", took, monitor.StopGrace)
	}
	if st := d.Status(context.Background()); len(st.Series) != 0 {
		t.Fatalf("a cancelled run was recorded: %+v", st.Series)
	}
}
