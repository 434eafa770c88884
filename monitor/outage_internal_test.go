package monitor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/state"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestSlackOutageSimulatedMinutes: for five minutes of simulated time Slack
// answers 500 and then 429 (Retry-After: 30) while two series alert,
// change and recover. Afterwards every notification is delivered, in the
// order it happened, exactly once, replies in the right threads.
func TestSlackOutageSimulatedMinutes(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	outageEnd := t0.Add(5 * time.Minute)
	fake := testbed.NewFakeSlack("xoxb-test")
	defer fake.Close()
	var failures int
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := clock.Now()
		if now.Before(outageEnd) {
			failures++
			if now.Sub(t0) < 2*time.Minute {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		fake.Config.Handler.ServeHTTP(w, r)
	}))
	defer front.Close()

	cfg, err := config.LoadBytes("m.yaml", []byte("vantage: us\n"), map[string][]byte{"c.yaml": []byte(
		"checks:\n  - {name: a, url: \"ws://127.0.0.1:1/a\", schedule: \"@every 1s\"}\n  - {name: b, url: \"ws://127.0.0.1:1/b\", schedule: \"@every 1s\"}\n")},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := state.Open(t.TempDir(), state.Options{})
	n, _ := notifier.NewSlack(notifier.SlackOptions{Token: "xoxb-test", Channel: "#c", APIURL: front.URL + "/api/"})
	d, err := NewDaemon(DaemonOptions{Config: cfg, Store: st, Notifier: n, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	run := func(check int, status int) {
		c := &cfg.Checks[check]
		d.observe(c, report.Report{Check: c.Name, Diagnosis: report.Diagnosis{Cause: report.CauseAuthRejected},
			Attempts: []report.Attempt{{Vantage: "us", Route: report.RouteCDN, Variant: report.VariantConfigured, Status: status, OK: status == 101}}})
	}
	timeline := map[int][][2]int{ // second -> (check, status)
		1: {{0, 101}, {1, 101}}, 10: {{0, 403}}, 30: {{1, 401}}, 60: {{0, 101}}, 90: {{1, 403}},
		120: {{0, 403}}, 200: {{0, 101}}, 250: {{1, 101}},
	}
	for sec := 1; sec <= 900; sec++ {
		clock.Add(time.Second)
		for _, ev := range timeline[sec] {
			run(ev[0], ev[1])
		}
		d.deliverDue()
	}
	if failures < 5 {
		t.Fatalf("only %d requests met the outage", failures)
	}
	var got []string
	roots := map[string]string{} // ts -> check
	for _, c := range fake.Calls() {
		if c.Method != "chat.postMessage" {
			continue
		}
		check := "a"
		if strings.Contains(c.Text, " b: ") {
			check = "b"
		}
		word := strings.Fields(c.Text)[0]
		if c.ThreadTS == "" {
			roots[c.Answered] = check
		} else if roots[c.ThreadTS] != check {
			t.Errorf("%s %s replied in the thread of %q", word, check, roots[c.ThreadTS])
		}
		got = append(got, word+" "+check)
	}
	want := "ALERT a|ALERT b|RECOVERED a|CHANGED b|ALERT a|RECOVERED a|RECOVERED b"
	if strings.Join(got, "|") != want {
		t.Fatalf("delivered\n  %s\nwant\n  %s", strings.Join(got, "|"), want)
	}
	if len(st.Pending()) != 0 {
		t.Fatalf("%d left in the outbox", len(st.Pending()))
	}
	// The resolved update of the first alert kept the alert's facts.
	for _, c := range fake.Calls() {
		if c.Method == "chat.update" && strings.Contains(c.Text, "RESOLVED") && !strings.Contains(c.Blocks, "auth_rejected") {
			t.Errorf("resolved update lost the alert's cause: %s", c.Blocks)
		}
	}
}
