package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/probe"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// attemptOver is the configured attempt of a report over transport t.
func attemptOver(t *testing.T, rep report.Report, tr report.Transport) report.Attempt {
	t.Helper()
	for _, a := range rep.Attempts {
		if a.Variant == report.VariantConfigured && a.Transport == tr {
			return a
		}
	}
	t.Fatalf("no configured %s attempt in %+v", tr, rep.Attempts)
	return report.Attempt{}
}

// TestChromiumH2Reference: Chromium loads a page over HTTP/2 from a Go
// server that advertises extended CONNECT (GODEBUG=http2xconnect=1) and
// opens its WebSocket on that same connection with RFC 8441; wscanary's
// http2 transport, as client chrome, then sends the same connection
// preface (SETTINGS, WINDOW_UPDATE), the same ClientHello (JA4) and the
// same request fields in the same order. The server's handler speaks only
// HTTP/1.1 upgrades (golang/go#71128): the run is h2_path_broken, while
// the HTTP/1.1 attempt upgrades.
func TestChromiumH2Reference(t *testing.T) {
	t.Parallel()
	srv, err := testbed.StartH2Server(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	base := fmt.Sprintf("https://localhost:%d", srv.Port)
	chromium(t, "--ignore-certificate-errors", "--host-resolver-rules=MAP localhost 127.0.0.1",
		"--virtual-time-budget=5000", "--dump-dom", base+"/")
	conns, seen, err := srv.Log()
	if err != nil {
		t.Fatal(err)
	}
	connects := testbed.Connects(conns)
	if len(connects) != 1 {
		t.Fatalf("Chromium sent %d extended CONNECTs over HTTP/2, want 1 (it did not take the h2 path)\nseen: %+v", len(connects), seen)
	}
	browser := connects[0]
	// The WebSocket went on the connection that carried the page.
	var page, ws *testbed.Seen
	for i := range seen {
		switch {
		case seen[i].Path == "/" && seen[i].Proto == "HTTP/2.0" && page == nil:
			page = &seen[i]
		case seen[i].Path == "/ws" && seen[i].Method == "CONNECT" && ws == nil:
			ws = &seen[i]
		}
	}
	if page == nil || ws == nil || page.Conn != ws.Conn || ws.Protocol != "websocket" {
		t.Fatalf("the page and the WebSocket did not share an HTTP/2 connection: page %+v ws %+v", page, ws)
	}
	browserJA4, err := probe.JA4(ws.Hello)
	if err != nil {
		t.Fatal(err)
	}

	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	run := func(client string) (report.Report, testbed.H2Connect) {
		t.Helper()
		cfg := writeConfig(t, "vantage: ref\nlisten: \"\"\n", fmt.Sprintf(
			"checks:\n  - {name: ref, url: \"wss://localhost:%d/ws\", origin: %q, tls: {ca_file: %q}, client: %s, timeout: 5s, schedule: \"@every 1m\"}\n",
			srv.Port, base, ca, client))
		out, errOut, _ := wscanary(t, "check", "--config", cfg, "--output", "json")
		reps := reports(t, out)
		if len(reps) != 1 {
			t.Fatalf("client %s: %d reports\n%s\n%s", client, len(reps), out, errOut)
		}
		conns, _, err := srv.Log()
		if err != nil {
			t.Fatal(err)
		}
		cs := testbed.Connects(conns)
		return reps[0], cs[len(cs)-1]
	}
	rep, chrome := run("chrome")
	_, own := run("wscanary")

	h2 := attemptOver(t, rep, report.TransportHTTP2)
	if h1 := attemptOver(t, rep, report.TransportHTTP1); !h1.OK {
		t.Errorf("the HTTP/1.1 attempt did not upgrade: %+v", h1)
	}
	if h2.Status != http.StatusUpgradeRequired || h2.OK {
		t.Errorf("the h2 attempt: status %d ok %v (%s), want the handler's 426", h2.Status, h2.OK, h2.Error)
	}
	if d := rep.Diagnosis; d.Cause != report.CauseH2PathBroken || d.Transport != report.TransportHTTP2 || !strings.Contains(d.Summary, "426") {
		t.Errorf("diagnosis %+v, want h2_path_broken naming the 426", d)
	}
	t.Logf("Chromium %s\n  SETTINGS %s\n  WINDOW_UPDATE %s\n  %s", browserJA4, browser.Conn.Settings, browser.Conn.Window, strings.Join(fields(browser.Request), "\n  "))
	t.Logf("wscanary client: chrome %s\n  SETTINGS %s\n  WINDOW_UPDATE %s\n  %s", h2.JA4, chrome.Conn.Settings, chrome.Conn.Window, strings.Join(fields(chrome.Request), "\n  "))
	t.Logf("wscanary client: wscanary\n  SETTINGS %s\n  WINDOW_UPDATE %s\n  %s", own.Conn.Settings, own.Conn.Window, strings.Join(fields(own.Request), "\n  "))
	t.Logf("diagnosis: %s: %s\n  hint: %s", rep.Diagnosis.Cause, rep.Diagnosis.Summary, rep.Diagnosis.Hints[0])

	if h2.JA4 != browserJA4 {
		t.Errorf("JA4 over h2: Chromium %s, wscanary's chrome profile %s", browserJA4, h2.JA4)
	}
	if chrome.Conn.Settings != browser.Conn.Settings || chrome.Conn.Window != browser.Conn.Window {
		t.Errorf("connection preface: Chromium SETTINGS %q WINDOW_UPDATE %s, wscanary %q %s",
			browser.Conn.Settings, browser.Conn.Window, chrome.Conn.Settings, chrome.Conn.Window)
	}
	names := chrome.Request.Names()
	if len(names) == 0 || names[len(names)-1] != "traceparent" {
		t.Errorf("traceparent is not the last field: %v", names)
	} else {
		names = names[:len(names)-1]
	}
	if !slices.Equal(names, browser.Request.Names()) {
		t.Errorf("request fields in order:\nChromium %v\nwscanary %v", browser.Request.Names(), names)
	}
	for _, n := range []string{":method", ":scheme", ":path", ":protocol", "sec-websocket-version", "sec-websocket-extensions", "accept-encoding", "accept-language"} {
		if b, w := browser.Request.Value(n), chrome.Request.Value(n); b != w {
			t.Errorf("%s: Chromium %q, wscanary %q", n, b, w)
		}
	}
	// The test can fail: wscanary's own profile is not the browser's.
	if own.Conn.Settings == browser.Conn.Settings || slices.Equal(own.Request.Names(), browser.Request.Names()) {
		t.Errorf("the wscanary profile looks like Chromium over h2: %q %v", own.Conn.Settings, own.Request.Names())
	}
}

func fields(r testbed.H2Request) []string {
	out := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		v := f[1]
		if f[0] == "user-agent" || f[0] == "traceparent" {
			v = v[:min(len(v), 40)] + "…"
		}
		out[i] = f[0] + ": " + v
	}
	return out
}

// TestH2ThroughHAProxy: HAProxy 2.6 with an h2 TLS frontend carries
// WebSockets over HTTP/2 (RFC 8441) to an HTTP/1.1 backend: both
// transports upgrade and the send/expect exchange passes over each.
func TestH2ThroughHAProxy(t *testing.T) {
	t.Parallel()
	needBinary(t, "/usr/sbin/haproxy", "haproxy")
	origin := startOrigin(t, testbed.Behavior{}, nil)
	ca := testbed.NewCAT(t)
	leaf, err := ca.Leaf([]string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := testbed.EncodePEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pem := filepath.Join(dir, "edge.pem")
	os.WriteFile(pem, append(certPEM, keyPEM...), 0o600)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM(), 0o600)
	edge := startHAProxyBind(t, origin.Addr(), "ssl crt "+pem+" alpn h2,http/1.1", "")
	_, port, _ := strings.Cut(edge, ":")
	cfg := writeConfig(t, "vantage: ref\nlisten: \"\"\n", fmt.Sprintf(
		"checks:\n  - {name: h2edge, url: \"wss://localhost:%s/ws\", direct: {address: %q}, tls: {ca_file: %q}, send: ping, expect: pong, timeout: 5s, schedule: \"@every 1m\"}\n",
		port, edge, caFile))
	out, errOut, code := wscanary(t, "check", "--config", cfg, "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := reports(t, out)[0]
	h1, h2 := attemptOver(t, rep, report.TransportHTTP1), attemptOver(t, rep, report.TransportHTTP2)
	if !h1.OK || !h2.OK || h2.Status != http.StatusOK || h2.Reply != "pong" || rep.Diagnosis.Cause != report.CauseOK {
		t.Fatalf("h1 %+v\nh2 %+v\ndiagnosis %+v", h1, h2, rep.Diagnosis)
	}
	if !strings.HasSuffix(strings.Split(h2.JA4, "_")[0], "h2") {
		t.Errorf("the h2 attempt's hello did not negotiate h2: JA4 %s", h2.JA4)
	}
	table, _, _ := wscanary(t, "check", "--config", cfg)
	t.Logf("through HAProxy's h2 frontend:\n%s", table)
	if !strings.Contains(table, "upgraded (h2 extended CONNECT)") {
		t.Errorf("the table does not show the h2 upgrade:\n%s", table)
	}
}

// TestH2NotOffered: an HTTP/2 server that does not advertise extended
// CONNECT (Go's default), and a server that only speaks HTTP/1.1, are
// healthy: browsers fall back to HTTP/1.1. The evidence says why.
func TestH2NotOffered(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCAT(t)
	leaf, err := ca.Leaf([]string{"localhost"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM(), 0o600)
	for _, tt := range []struct {
		name, says string
		protos     []string
	}{
		// Go's server speaks h2 and, without GODEBUG=http2xconnect=1,
		// does not advertise extended CONNECT.
		{"h2 without extended CONNECT", "do not enable the CONNECT protocol", []string{"h2", "http/1.1"}},
		{"HTTP/1.1 only", "chose http/1.1 in ALPN", []string{"http/1.1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			origin := startOrigin(t, testbed.Behavior{}, &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: tt.protos})
			_, port, _ := strings.Cut(origin.Addr(), ":")
			cfg := writeConfig(t, "vantage: ref\nlisten: \"\"\n", fmt.Sprintf(
				"checks:\n  - {name: plain, url: \"wss://localhost:%s/ws\", direct: {address: %q}, tls: {ca_file: %q}, timeout: 5s, schedule: \"@every 1m\"}\n",
				port, origin.Addr(), caFile))
			out, errOut, code := wscanary(t, "check", "--config", cfg, "--output", "json")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			rep := reports(t, out)[0]
			h2 := attemptOver(t, rep, report.TransportHTTP2)
			if !rep.OK || h2.Outcome != report.OutcomeNotOffered || !strings.Contains(h2.NotOffered, tt.says) {
				t.Fatalf("report ok %v, h2 attempt %+v, want not_offered saying %q", rep.OK, h2, tt.says)
			}
			t.Logf("%s: %s", tt.name, h2.NotOffered)
		})
	}
}

// TestH2PathBrokenIncident: the daemon opens an incident for a broken
// HTTP/2 path whose HTTP/1.1 upgrade works (with the default alert.on,
// which does not name 426): its message says h2_path_broken and its
// matrix has the h2 column failing beside a healthy HTTP/1.1 one.
func TestH2PathBrokenIncident(t *testing.T) {
	t.Parallel()
	srv, err := testbed.StartH2Server(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := writeConfig(t, fmt.Sprintf("vantage: us\nlisten: %s\nstate_dir: %s\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\", api_url: %q}\n",
		listen, filepath.Join(dir, "state"), slack.APIURL()),
		fmt.Sprintf("checks:\n  - {name: chat, url: \"wss://localhost:%d/ws\", origin: \"https://localhost:%d\", tls: {ca_file: %q}, schedule: \"@every 1s\", timeout: 5s}\n",
			srv.Port, srv.Port, ca))
	p := startRun(t, cfg, daemonEnv...)
	t.Cleanup(func() { p.stop(t) })
	waitFor(t, "the incident's message", time.Minute, func() bool {
		roots, _ := slack.Posts()
		return len(incidentRootsOf(roots)) > 0
	})
	roots, _ := slack.Posts()
	msg := incidentRootsOf(roots)[0]
	t.Logf("incident message:\n%s", msg.Text)
	for _, want := range []string{"h2_path_broken", "cdn h2", "426", "101"} {
		if !strings.Contains(msg.Text+msg.Blocks, want) {
			t.Errorf("the message lacks %q:\n%s\n%s", want, msg.Text, msg.Blocks)
		}
	}
	_, doc := getStatus(t, listen)
	if !strings.Contains(doc, `"transport": "http2"`) {
		t.Errorf("/status has no http2 series:\n%s", doc)
	}
}
