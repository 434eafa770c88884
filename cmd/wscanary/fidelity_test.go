package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/probe"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// TestChromiumReference: the real browser is the reference. Debian's
// headless Chromium opens new WebSocket("wss://localhost:PORT/ws") against
// a TLS server that records the raw ClientHello and request head; then
// wscanary runs the same check with client: chrome. Asserted: the same
// JA4 (GREASE ignored, as JA4 does), the same header names in the same
// order (wscanary's traceparent last, the one addition), the same
// extension offer. The wscanary profile differs on all three: the test
// can fail.
func TestChromiumReference(t *testing.T) {
	t.Parallel()
	srv, err := testbed.NewHelloServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	base := fmt.Sprintf("https://localhost:%d", srv.Port())
	chromium(t, "--ignore-certificate-errors", "--host-resolver-rules=MAP localhost 127.0.0.1",
		"--virtual-time-budget=5000", "--dump-dom", base+"/")
	waitFor(t, "Chromium's WebSocket handshake", 10*time.Second, func() bool { return len(srv.WebSockets()) > 0 })
	browser := srv.WebSockets()[0]

	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	run := func(client string) (testbed.Handshake, string) {
		t.Helper()
		before := len(srv.WebSockets())
		cfg := writeConfig(t, "vantage: ref\nlisten: \"\"\n", fmt.Sprintf(
			"checks:\n  - {name: ref, url: \"wss://localhost:%d/ws\", origin: %q, tls: {ca_file: %q}, client: %s, timeout: 5s, schedule: \"@every 1m\"}\n",
			srv.Port(), base, ca, client))
		out, errOut, code := wscanary(t, "check", "--config", cfg, "--output", "json")
		if code != 0 {
			t.Fatalf("wscanary check (client %s): exit %d\n%s\n%s", client, code, out, errOut)
		}
		rep := reports(t, out)[0]
		a := rep.Attempts[0]
		if a.Client != client || a.Status != 101 {
			t.Fatalf("client %s: the attempt says client %q, status %d (%s)", client, a.Client, a.Status, a.Error)
		}
		ws := srv.WebSockets()
		if len(ws) != before+1 {
			t.Fatalf("client %s: %d WebSocket handshakes at the server, want %d", client, len(ws), before+1)
		}
		return ws[len(ws)-1], a.JA4
	}
	chrome, chromeJA4 := run("chrome")
	own, ownJA4 := run("wscanary")

	browserJA4, err := probe.JA4(browser.Hello)
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := probe.JA4(chrome.Hello); j != chromeJA4 {
		t.Errorf("the report's JA4 %s is not that of the hello the server saw (%s)", chromeJA4, j)
	}
	t.Logf("Chromium %s\n%s", browserJA4, strings.Join(browser.Head, "\n"))
	t.Logf("wscanary client: chrome %s\n%s", chromeJA4, strings.Join(chrome.Head, "\n"))
	t.Logf("wscanary client: wscanary %s\n%s", ownJA4, strings.Join(own.Head, "\n"))

	if chromeJA4 != browserJA4 {
		t.Errorf("JA4: Chromium %s, wscanary's chrome profile %s", browserJA4, chromeJA4)
	}
	names := chrome.Names()
	if len(names) == 0 || names[len(names)-1] != "traceparent" {
		t.Errorf("traceparent is not the last header: %v", names)
	} else {
		names = names[:len(names)-1]
	}
	if !slices.Equal(names, browser.Names()) {
		t.Errorf("header names in order:\nChromium %v\nwscanary %v", browser.Names(), names)
	}
	for _, h := range []string{"Sec-WebSocket-Extensions", "Accept-Encoding", "Accept-Language", "Cache-Control", "Pragma", "Connection", "Upgrade"} {
		if chrome.Value(h) != browser.Value(h) {
			t.Errorf("%s: Chromium %q, wscanary %q", h, browser.Value(h), chrome.Value(h))
		}
	}
	if ua := chrome.Value("User-Agent"); ua != strings.Replace(browser.Value("User-Agent"), "HeadlessChrome/", "Chrome/", 1) {
		t.Errorf("User-Agent: Chromium %q, wscanary %q", browser.Value("User-Agent"), ua)
	}
	// The wscanary profile is not a browser, and says so.
	if ownJA4 == browserJA4 || slices.Equal(own.Names(), browser.Names()) || own.Value("Sec-WebSocket-Extensions") != "" ||
		!strings.HasPrefix(own.Value("User-Agent"), "wscanary/") {
		t.Errorf("the wscanary profile looks like Chromium: %s %v %q", ownJA4, own.Names(), own.Value("User-Agent"))
	}
}

// TestConfiguredHeadersWin: every header the check configures is sent as
// written, User-Agent included, over any profile (before: the probe
// replaced User-Agent with "wscanary").
func TestConfiguredHeadersWin(t *testing.T) {
	t.Parallel()
	srv, err := testbed.NewHelloServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	const ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	for _, client := range probe.Clients {
		cfg := writeConfig(t, "vantage: ref\nlisten: \"\"\n", fmt.Sprintf(
			"checks:\n  - {name: ref, url: \"wss://localhost:%d/ws\", tls: {ca_file: %q}, client: %s, schedule: \"@every 1m\", trace_header: false, headers: {User-Agent: %q, X-API-KEY: k1}}\n",
			srv.Port(), ca, client, ua))
		if out, errOut, code := wscanary(t, "check", "--config", cfg, "--output", "json"); code != 0 {
			t.Fatalf("client %s: exit %d\n%s\n%s", client, code, out, errOut)
		}
		ws := srv.WebSockets()
		got := ws[len(ws)-1]
		if got.Value("User-Agent") != ua || !slices.Contains(got.Head, "X-API-KEY: k1") {
			t.Errorf("client %s: the configured headers were not sent as written:\n%s", client, strings.Join(got.Head, "\n"))
		}
		if slices.Contains(got.Names(), "traceparent") {
			t.Errorf("client %s: traceparent sent with trace_header: false", client)
		}
	}
}

// TestClientBlockedByBotRule: a real nginx edge refuses User-Agents that
// are not a browser's. client: wscanary is client_blocked (the browser
// variant upgrades), which the daemon posts as a warning and not as an
// incident; client: chrome upgrades; a check made as wscanary whose
// headers: set a browser User-Agent reaches the edge with it (its access
// log shows it). Before: every check failed as cdn_blocked, "a CDN/WAF
// rule blocks WebSocket upgrades", and a configured User-Agent was
// replaced.
func TestClientBlockedByBotRule(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t, testbed.Behavior{}, nil)
	nginx, edge := startEdge(t, origin.Addr(), testbed.EdgeBrowsersOnly)
	check := func(name, client, extra string) string {
		return fmt.Sprintf("  - {name: %s, url: \"ws://%s/ws\", direct: {address: %q}, schedule: \"@every 1s\", timeout: 2s, client: %s%s}\n",
			name, edge.Listen, origin.Addr(), client, extra)
	}
	rep := checkOnce(t, check("bot", "wscanary", ""))
	d := rep.Diagnosis
	t.Logf("client: wscanary through the bot rule: %s (%s): %s\nhints: %q", d.Cause, d.Vendor, d.Summary, d.Hints)
	if d.Cause != "client_blocked" || !strings.Contains(d.Summary, "likely fine") {
		t.Fatalf("diagnosis %+v", d)
	}
	if rep := checkPasses(t, check("browser", "chrome", "")); !rep.OK {
		t.Fatalf("client: chrome through the bot rule: %+v", rep.Diagnosis)
	}
	const ua = "Mozilla/5.0 (X11; Linux x86_64) Custom-Canary/1.0"
	if rep := checkPasses(t, check("ua", "wscanary", fmt.Sprintf(", headers: {User-Agent: %q}", ua))); !rep.OK {
		t.Fatalf("a browser User-Agent under client: wscanary: %+v", rep.Diagnosis)
	}
	// nginx logs an upgraded request when its connection ends, which a
	// busy machine may take a moment to get to.
	waitFor(t, "the configured User-Agent in the edge's access log", 30*time.Second, func() bool {
		return strings.Contains(nginx.AccessLog(), `"`+ua+`"`)
	})

	// The daemon: a warning, no incident.
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: %s\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n", listen, slack.APIURL()),
		"checks:\n"+check("bot", "wscanary", ""))
	p := startRun(t, cfg, daemonEnv...)
	t.Cleanup(func() { p.stop(t) })
	waitFor(t, "the client_blocked warning", 30*time.Second, func() bool {
		roots, _ := slack.Posts()
		return len(roots) > 0
	})
	// Three more runs reach the edge (each configured attempt and its
	// browser variant): still no incident.
	seen := strings.Count(nginx.AccessLog(), "\n")
	testbed.WaitProgress(t, "three more runs at the edge", seen+6, time.Minute, func() int { return strings.Count(nginx.AccessLog(), "\n") })
	roots, _ := slack.Posts()
	if len(roots) != 1 || !strings.Contains(roots[0].Text, "refused as client wscanary, admitted as a browser") {
		t.Fatalf("Slack got %d messages: %.200q", len(roots), roots[0].Text)
	}
	if _, st := getStatus(t, listen); !strings.Contains(st, `"incidents": []`) {
		t.Fatalf("an incident opened for client_blocked:\n%s", st)
	}
}
