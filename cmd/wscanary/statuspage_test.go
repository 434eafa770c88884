package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// chromium runs headless Chromium, as Debian ships it, with what it
// needs to stay off the network and out of the user's profile.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	requireTool(t, err, "chromium")
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return out
}

// TestStatusPageInBrowser: the status page, opened in a real headless
// browser against a daemon with a failing and a healthy check, shows the
// open incident, the failing row first with its cause, and a timeline of
// the day drawn from the history (here with a failure six hours ago).
func TestStatusPageInBrowser(t *testing.T) {
	good := startOrigin(t, testbed.Behavior{}, nil)
	bad := startOrigin(t, testbed.Behavior{}, nil)
	listen, _ := testbed.FreeAddr()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := writeConfig(t, fmt.Sprintf("vantage: eu-west-1\nlisten: %s\nstate_dir: %s\n", listen, state),
		fmt.Sprintf("checks:\n  - {name: chat, url: \"ws://%s/ws\", direct: {address: %q}, schedule: \"@every 1s\", labels: {team: talk}}\n"+
			"  - {name: feed, url: \"ws://%s/ws\", schedule: \"@every 1s\", labels: {team: news}}\n", bad.Addr(), bad.Addr(), good.Addr()))

	// A day of earlier runs, every five minutes: feed always upgraded,
	// chat refused by its CDN from 6 to 5 hours ago.
	now := time.Now()
	st, err := store.Open(context.Background(), store.Options{Dir: state})
	if err != nil {
		t.Fatal(err)
	}
	var rows []store.HistoryRow
	for at := now.Add(-24 * time.Hour); at.Before(now.Add(-time.Minute)); at = at.Add(5 * time.Minute) {
		rows = append(rows, store.HistoryRow{At: at, Check: "feed", Vantage: "eu-west-1", Route: report.RouteCDN, Member: "eu-west-1",
			Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: 12})
		for _, route := range []report.Route{report.RouteCDN, report.RouteDirect} {
			r := store.HistoryRow{At: at, Check: "chat", Vantage: "eu-west-1", Route: route, Member: "eu-west-1",
				Outcome: report.OutcomeUpgraded, Status: 101, Cause: report.CauseOK, DurationMS: 20}
			if route == report.RouteCDN && at.After(now.Add(-6*time.Hour)) && at.Before(now.Add(-5*time.Hour)) {
				r.Outcome, r.Status, r.Cause = report.OutcomeRefused, 403, report.CauseCDNBlocked
			}
			rows = append(rows, r)
		}
	}
	if err := st.Update(context.Background(), func(tx *store.Tx) error { return tx.AddHistory(context.Background(), rows) }); err != nil {
		t.Fatal(err)
	}
	st.Close()

	p := startRun(t, cfg, daemonEnv...)
	defer p.stop(t)
	waitFor(t, "two healthy checks", 15*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Count(s, `"outcome": "upgraded"`) == 3
	})
	bad.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	waitFor(t, "chat's incident", 15*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Contains(s, `"headline": "chat: 403 Forbidden on 2 of 2"`)
	})

	dom := string(chromium(t, "--dump-dom", "http://"+listen+"/"))
	row := func(check, route string) string {
		m := regexp.MustCompile(`(?s)<tr class="(\w+)" data-check="` + check + `" data-vantage="eu-west-1" data-route="` + route + `">(.*?)</tr>`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("no row for %s/%s in the page:\n%s", check, route, dom)
		}
		return m[1] + " " + m[2]
	}
	chatCDN, chatDirect, feed := row("chat", "cdn"), row("chat", "direct"), row("feed", "cdn")
	for what, ok := range map[string]bool{
		"the summary says one incident is open":          strings.Contains(dom, `id="summary">1 open incident · 2 failing of 3</span>`),
		"the incident is shown with its headline":        strings.Contains(dom, `<h2>chat: 403 Forbidden on 2 of 2</h2>`),
		"chat/cdn is failing":                            strings.HasPrefix(chatCDN, "fail ") && strings.Contains(chatCDN, "FAILING"),
		"chat/cdn shows its cause":                       strings.Contains(chatCDN, `<td class="cause">auth_missing</td>`),
		"chat/cdn's timeline shows the old failure":      strings.Count(chatCDN, `class="fail"`) >= 2 && strings.Count(chatCDN, `class="fail"`)+strings.Count(chatCDN, `class="warn"`) >= 4,
		"chat/direct's day was good until now":           strings.Count(chatDirect, `class="ok"`) >= 90,
		"feed is ok and upgrades":                        strings.HasPrefix(feed, "ok ") && strings.Contains(feed, "101 upgraded"),
		"feed's timeline is all green":                   strings.Count(feed, `class="ok"`) >= 90 && !strings.Contains(feed, `class="fail"`),
		"the failing rows come before the healthy one":   strings.Index(dom, `data-check="chat"`) < strings.Index(dom, `data-check="feed"`),
		"nothing is fetched from elsewhere (no scripts)": !strings.Contains(dom, "<script") && !strings.Contains(dom, "src=\"http"),
	} {
		if !ok {
			t.Errorf("%s: no", what)
		}
	}
	// Filtered by a label: feed alone, and the page says so.
	if code, page := get(listen, "/?label=team=news"); code != 200 || strings.Contains(page, `data-check="chat"`) ||
		!strings.Contains(page, `data-check="feed"`) || !strings.Contains(page, "Showing labels team=news (1 checks)") {
		t.Errorf("the page filtered by team=news (%d) shows chat or hides feed:\n%s", code, page)
	}
	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, "--screenshot="+shot, "--window-size=1280,720", "http://"+listen+"/")
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10_000 || string(png[1:4]) != "PNG" {
		t.Fatalf("no screenshot (%d bytes): %v", len(png), err)
	}
	if to := os.Getenv("WSCANARY_SCREENSHOT"); to != "" {
		os.WriteFile(to, png, 0o644)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}
