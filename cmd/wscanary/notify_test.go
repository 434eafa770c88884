package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

const (
	canaryRoutingKey    = "R0UT1NGKEY-canary-4242"
	canaryWebhookSecret = "whsec-canary-9f8e7d"
)

// recorder is a test receiver that fails its first answers with the given
// statuses, then takes everything, keeping what it took.
type recorder struct {
	mu       sync.Mutex
	fail     []int
	requests int
	bodies   [][]byte
	headers  []http.Header
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if len(r.fail) > 0 {
		code := r.fail[0]
		r.fail = r.fail[1:]
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(code)
		return
	}
	r.bodies = append(r.bodies, b)
	r.headers = append(r.headers, req.Header.Clone())
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"success"}`)
}

func (r *recorder) taken() ([][]byte, []http.Header, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.headers...), r.requests
}

// TestNotifiers: one incident (both routes failing) goes to Slack, to a
// real Alertmanager as one alert that resolves, to PagerDuty as triggers
// and one resolve under one dedup_key, and to a signed webhook; the
// receivers' 429 and 5xx answers are retried and nothing is delivered
// twice; the secrets appear nowhere.
func TestNotifiers(t *testing.T) {
	t.Parallel()
	am := testbed.StartAlertmanagerT(t)
	pd := &recorder{fail: []int{http.StatusTooManyRequests, http.StatusInternalServerError}}
	pdSrv := httptest.NewServer(pd)
	t.Cleanup(pdSrv.Close)
	hook := &recorder{fail: []int{http.StatusServiceUnavailable}}
	hookSrv := httptest.NewServer(hook)
	t.Cleanup(hookSrv.Close)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	origin := startOrigin(t, testbed.Behavior{}, nil)
	listen, _ := testbed.FreeAddr()
	dir := t.TempDir()
	main := fmt.Sprintf(`vantage: us
listen: %s
state_dir: %s
trace_url: "https://traces.example/trace/{trace_id}"
slack: {token: "${SLACK_BOT_TOKEN}", channel: "#c", api_url: %q}
notify:
  - name: am
    alertmanager: {url: %q}
  - name: pager
    pagerduty: {routing_key: "${PD_KEY}", api_url: %q, severity: critical, severity_by_cause: {auth_missing: warning}}
  - name: hook
    webhook: {url: %q, secret: "${HOOK_SECRET}"}
`, listen, filepath.Join(dir, "state"), slack.APIURL(), am.URL, pdSrv.URL+"/v2/enqueue", hookSrv.URL+"/wscanary")
	cfg := writeConfig(t, main, fmt.Sprintf("checks:\n  - {name: chat, url: \"ws://%s/ws\", direct: {address: %q}, schedule: \"@every 1s\", timeout: 2s, labels: {team: payments}}\n",
		origin.Addr(), origin.Addr()))
	p := startRun(t, cfg, append(daemonEnv, "PD_KEY="+canaryRoutingKey, "HOOK_SECRET="+canaryWebhookSecret)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", lastLines(p.stderr.String(), 60))
		}
	})
	waitFor(t, "the daemon", 10*time.Second, func() bool { return healthy(listen) })
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})

	var alert testbed.AMAlert
	waitFor(t, "the incident's alert in Alertmanager", 20*time.Second, func() bool {
		as, err := am.Alerts()
		if err != nil || len(as) == 0 {
			return false
		}
		alert = as[0]
		return len(as) == 1
	})
	time.Sleep(3 * time.Second) // more runs, more updates: still one alert
	if as, _ := am.Alerts(); len(as) != 1 {
		t.Fatalf("%d alerts for one incident on two routes", len(as))
	}
	l := alert.Labels
	if l["alertname"] != notifier.AlertName || l["check"] != "chat" || l["cause"] != "auth_missing" || l["route"] != "cdn,direct" || !strings.HasPrefix(l["incident"], "chat-") ||
		l["team"] != "payments" {
		t.Errorf("alert labels %v", l)
	}
	if !strings.Contains(alert.Annotations["summary"], "chat: 403 Forbidden on 2 of 2") || !strings.HasPrefix(alert.Annotations["trace_url"], "https://traces.example/trace/") {
		t.Errorf("alert annotations %v", alert.Annotations)
	}
	t.Logf("Alertmanager alert: labels %v annotations %v", alert.Labels, alert.Annotations)

	origin.Set(testbed.Behavior{})
	waitFor(t, "the alert resolved", 20*time.Second, func() bool {
		as, err := am.Alerts()
		return err == nil && len(as) == 0
	})
	waitFor(t, "PagerDuty's resolve", 20*time.Second, func() bool {
		bodies, _, _ := pd.taken()
		return len(bodies) > 0 && strings.Contains(string(bodies[len(bodies)-1]), `"event_action":"resolve"`)
	})
	waitFor(t, "the webhook's resolved update", 20*time.Second, func() bool {
		bodies, _, _ := hook.taken()
		for _, b := range bodies {
			if strings.Contains(string(b), `"state":"resolved"`) {
				return true
			}
		}
		return false
	})
	time.Sleep(2 * time.Second)
	p.stop(t)

	// PagerDuty: every event for the incident's id; the first two answers
	// (429, 500) were retried.
	bodies, _, requests := pd.taken()
	if requests < len(bodies)+2 {
		t.Errorf("PagerDuty saw %d requests for %d events: the 429 and the 500 were not retried", requests, len(bodies))
	}
	triggers, resolves := 0, 0
	for _, b := range bodies {
		var ev notifier.PDEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.DedupKey != l["incident"] || ev.RoutingKey != canaryRoutingKey {
			t.Errorf("event dedup_key %q routing key %q, want %q", ev.DedupKey, ev.RoutingKey, l["incident"])
		}
		switch ev.EventAction {
		case "trigger":
			triggers++
			if ev.Payload == nil || ev.Payload.Severity != "warning" || ev.Payload.Component != "chat" || ev.Payload.Class != "auth_missing" ||
				len(ev.Links) != 1 || !strings.HasPrefix(ev.Links[0].Href, "https://traces.example/trace/") {
				t.Errorf("trigger %s", strings.ReplaceAll(string(b), canaryRoutingKey, "<routing key>"))
			}
		case "resolve":
			resolves++
		}
	}
	if triggers == 0 || resolves != 1 {
		t.Errorf("%d triggers and %d resolves, want some and one", triggers, resolves)
	}
	// The routing key is a secret for PagerDuty, so not even the test's log shows it.
	t.Logf("PagerDuty event: %s", strings.ReplaceAll(string(bodies[0]), canaryRoutingKey, "<routing key>"))

	// Webhook: signed, ids unique, the 503 retried.
	hb, hh, hreq := hook.taken()
	if hreq < len(hb)+1 {
		t.Errorf("webhook: %d requests for %d deliveries: the 503 was not retried", hreq, len(hb))
	}
	ids := map[string]bool{}
	kinds := map[string]int{}
	for i, b := range hb {
		ts, _ := strconv.ParseInt(hh[i].Get("X-Wscanary-Timestamp"), 10, 64)
		if got, want := hh[i].Get("X-Wscanary-Signature"), notifier.Sign(canaryWebhookSecret, ts, b); got != want {
			t.Errorf("signature %q, want %q", got, want)
		}
		id := hh[i].Get("X-Wscanary-Id")
		if ids[id] {
			t.Errorf("message %s delivered twice", id)
		}
		ids[id] = true
		var body notifier.WebhookBody
		if err := json.Unmarshal(b, &body); err != nil || body.Version != notifier.WebhookVersion || body.ID != id {
			t.Errorf("webhook body %s: %v", b, err)
		}
		kinds[string(body.Kind)]++
	}
	if kinds["open"] != 1 || kinds["reply"] == 0 {
		t.Errorf("webhook kinds %v, want one open and replies", kinds)
	}
	// The secrets appear nowhere.
	everything := p.stderr.String()
	for _, c := range slack.Calls() {
		everything += c.Form
	}
	for _, b := range hb {
		everything += string(b)
	}
	// The alert as Alertmanager held it while open (it has resolved by now).
	if b, err := json.Marshal(alert); err != nil || len(alert.Labels) == 0 {
		t.Errorf("no alert to scan for secrets: %v", err)
	} else {
		everything += string(b)
	}
	for _, secret := range []string{canaryRoutingKey, canaryWebhookSecret, canarySlackToken} {
		if strings.Contains(everything, secret) {
			t.Errorf("secret %q leaked", secret)
		}
	}
	os.Stdout.Sync()
}
