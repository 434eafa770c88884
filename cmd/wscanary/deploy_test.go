package main

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestPrometheusRules runs promtool on the shipped rules: they parse, and
// the examples of the test file fire and do not fire as they say.
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	requireTool(t, err, "prometheus")
	dir := "../../deploy/prometheus"
	for _, args := range [][]string{{"check", "rules", "wscanary-rules.yml"}, {"test", "rules", "wscanary-rules.test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`\bwscanary_[a-z_]+\b`)

// deployedMetrics are the wscanary metric names the rules and the
// dashboard use.
func deployedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	rules, err := os.ReadFile("../../deploy/prometheus/wscanary-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		used[n] = append(used[n], "rules")
	}
	b, err := os.ReadFile("../../deploy/grafana/wscanary-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v (uid %q, %d panels)", err, dash.UID, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, n := range metricName.FindAllString(q.Expr, -1) {
				used[n] = append(used[n], "dashboard: "+p.Title)
			}
		}
	}
	return used
}

// TestDeployedMetricsExist: every metric the rules and the dashboard use
// is one a running daemon exports on /metrics. The daemon is made to
// produce them all: a TLS check whose certificate expires soon, a JWT, an
// incident, a Slack that fails and a webhook that works.
func TestDeployedMetricsExist(t *testing.T) {
	t.Parallel()
	used := deployedMetrics(t)
	ca, err := testbed.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf([]string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(5*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	origin := startOrigin(t, testbed.Behavior{Status: 403, Body: "forbidden"}, &tls.Config{Certificates: []tls.Certificate{leaf}})
	_, port, _ := strings.Cut(origin.Addr(), ":")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM(), 0o600)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	slack.Down(http.StatusInternalServerError)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	t.Cleanup(hook.Close)
	listen, _ := testbed.FreeAddr()
	cfg := writeConfig(t, fmt.Sprintf(`vantage: us
listen: %s
slack: {token: "${SLACK_BOT_TOKEN}", channel: "#c", api_url: %q}
notify:
  - name: hook
    webhook: {url: %q, secret: s3cr3t-hook}
`, listen, slack.APIURL(), hook.URL),
		fmt.Sprintf("checks:\n  - {name: tls, url: \"wss://localhost:%s/ws\", schedule: \"@every 1s\", tls: {ca_file: %q}, token: {value: %q}}\n",
			port, caFile, jwtToken(t, time.Now().Add(time.Hour))))
	p := startRun(t, cfg, daemonEnv...)
	var exported []string
	waitFor(t, "every deployed metric on /metrics", 30*time.Second, func() bool {
		exported = scrapeNames(listen)
		for n := range used {
			if !slices.Contains(exported, n) {
				return false
			}
		}
		return true
	})
	p.stop(t)
	for n, where := range used {
		if !slices.Contains(exported, n) {
			t.Errorf("%s (used by %s) is not on /metrics", n, strings.Join(where, ", "))
		}
	}
	t.Logf("%d metric names used by deploy/, all exported", len(used))
}

// scrapeNames lists the metric names on a daemon's /metrics.
func scrapeNames(listen string) []string {
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		name := l
		if i := strings.IndexAny(l, "{ "); i > 0 {
			name = l[:i]
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}
