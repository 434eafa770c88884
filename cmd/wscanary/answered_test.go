package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// proxyVantageCheck runs `wscanary check` with two vantages on the same
// origin: us direct (from 127.0.0.2), eu through the proxy at px.
func proxyVantageCheck(t *testing.T, origin *testbed.Origin, px *url.URL) (report.Report, int) {
	t.Helper()
	main := fmt.Sprintf("vantage: e2e\nlisten: \"\"\nvantages:\n  - {name: us, source_address: 127.0.0.2}\n  - {name: eu, proxy: %q}\n", px.String())
	check := "checks:\n  - name: chat\n    url: ws://" + origin.Addr() + "/ws\n    schedule: \"@every 1m\"\n    timeout: 5s\n    vantages: [us, eu]\n"
	out, _, code := wscanary(t, "check", "--config", writeConfig(t, main, check), "--output", "json")
	return reports(t, out)[0], code
}

// TestVantageProxyRefused: real egress proxies refusing the tunnel
// themselves (Squid's ACLs, tinyproxy's filter, port rule and credentials)
// are vantage_proxy_refused on that vantage while the other upgrades: the
// report names the proxy as the hop that answered and says the target was
// not reached from there; the target saw no request through it.
func TestVantageProxyRefused(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t, testbed.Behavior{}, nil)
	_, port, _ := strings.Cut(origin.Addr(), ":")
	filter := filepath.Join(t.TempDir(), "filter")
	if err := os.WriteFile(filter, []byte("127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		start    func(t *testing.T) *url.URL
		status   int
		vendor   string
		summHas  string
		hintHas  string
		squidErr string
	}{
		{name: "Squid http_access deny for the target", start: func(t *testing.T) *url.URL {
			return testbed.StartSquidT(t, "acl target dst 127.0.0.1\nacl targetport port "+port+"\nhttp_access deny target targetport\n"+testbed.SquidAllowLocal).URL()
		}, status: 403, vendor: "squid", summHas: "refuses the tunnel to the target (403 Forbidden, ERR_ACCESS_DENIED)", hintHas: "http_access allow", squidErr: "ERR_ACCESS_DENIED"},
		{name: "Squid's stock CONNECT port rule", start: func(t *testing.T) *url.URL {
			return testbed.StartSquidT(t, "acl SSL_ports port 443\nhttp_access deny CONNECT !SSL_ports\n"+testbed.SquidAllowLocal).URL()
		}, status: 403, vendor: "squid", summHas: "ERR_ACCESS_DENIED", hintHas: "SSL_ports", squidErr: "ERR_ACCESS_DENIED"},
		{name: "tinyproxy filter", start: func(t *testing.T) *url.URL {
			return testbed.StartTinyproxyT(t, fmt.Sprintf("Filter %q", filter)).URL()
		}, status: 403, vendor: "tinyproxy", summHas: "403 Filtered", hintHas: "Filter"},
		{name: "tinyproxy ConnectPort", start: func(t *testing.T) *url.URL {
			return testbed.StartTinyproxyT(t, "ConnectPort 443").URL()
		}, status: 403, vendor: "tinyproxy", summHas: "403 Access violation", hintHas: "ConnectPort"},
		{name: "tinyproxy wants credentials", start: func(t *testing.T) *url.URL {
			return testbed.StartTinyproxyT(t, "BasicAuth monitor s3cret").URL()
		}, status: 407, vendor: "tinyproxy", summHas: "asks for proxy credentials (407", hintHas: "proxy: \"http://USER:${PROXY_PASSWORD}@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := tt.start(t)
			before := len(origin.Requests())
			r, code := proxyVantageCheck(t, origin, px)
			us := attempt(t, r, report.RouteCDN, report.VariantConfigured, "us")
			eu := attempt(t, r, report.RouteCDN, report.VariantConfigured, "eu")
			d := r.Diagnosis
			if code != exitFailed || !us.OK || eu.OK || eu.Status != tt.status || eu.Hop != report.HopVantageProxy ||
				d.Cause != report.CauseVantageProxyRefused || d.Vantage != "eu" || d.Hop != report.HopVantageProxy || d.Vendor != tt.vendor {
				t.Fatalf("exit %d, us %d ok=%v, eu %d hop %q (%s)\ndiagnosis %+v", code, us.Status, us.OK, eu.Status, eu.Hop, eu.Error, d)
			}
			if !strings.Contains(d.Summary, tt.summHas) || !strings.Contains(d.Summary, "the target itself was not reached from eu") ||
				!strings.Contains(d.Summary, "From us it upgrades") {
				t.Errorf("summary %q: want %q, that the target was not reached from eu, and that us upgrades", d.Summary, tt.summHas)
			}
			if !strings.Contains(strings.Join(d.Hints, "\n"), tt.hintHas) {
				t.Errorf("hints %q lack %q", d.Hints, tt.hintHas)
			}
			if tt.squidErr != "" && !strings.HasPrefix(eu.Headers["X-Squid-Error"], tt.squidErr) {
				t.Errorf("the proxy's answer is not kept as evidence: headers %v", eu.Headers)
			}
			for _, q := range origin.Requests()[before:] {
				if q.RemoteIP != "127.0.0.2" {
					t.Errorf("the origin saw a request from %s: the proxy let it through", q.RemoteIP)
				}
			}
		})
	}
	// The same Squid admitting the tunnel: both vantages upgrade, and the
	// target answered eu through it.
	t.Run("Squid admits", func(t *testing.T) {
		r, code := proxyVantageCheck(t, origin, testbed.StartSquidT(t, testbed.SquidAllowLocal).URL())
		eu := attempt(t, r, report.RouteCDN, report.VariantConfigured, "eu")
		if code != exitOK || !eu.OK || eu.Hop != report.HopTarget || r.Diagnosis.Cause != report.CauseOK {
			t.Fatalf("exit %d eu %+v diagnosis %+v", code, eu, r.Diagnosis)
		}
	})
}

// TestVantageProxyIncident: the daemon's incident for a vantage whose
// Squid refuses says so in Slack: the proxy answered, the target was not
// reached from there, and the hint is the proxy's ACL.
func TestVantageProxyIncident(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t, testbed.Behavior{}, nil)
	_, port, _ := strings.Cut(origin.Addr(), ":")
	sq := testbed.StartSquidT(t, "acl target dst 127.0.0.1\nacl targetport port "+port+"\nhttp_access deny target targetport\n"+testbed.SquidAllowLocal)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	dir := t.TempDir()
	main := fmt.Sprintf("vantage: us\nlisten: %s\nstate_dir: %s\nvantages:\n  - {name: us2, source_address: 127.0.0.2}\n  - {name: eu, proxy: %q}\nslack: {token: %q, channel: \"#c\", api_url: %q}\n",
		listen, filepath.Join(dir, "state"), sq.URL().String(), canarySlackToken, slack.APIURL())
	check := "checks:\n  - name: chat\n    url: ws://" + origin.Addr() + "/ws\n    schedule: \"@every 1s\"\n    timeout: 2s\n    vantages: [us2, eu]\n"
	p := startRun(t, writeConfig(t, main, check), daemonEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s\nslack calls:\n%s", lastLines(p.stderr.String(), 60), callList(slack))
		}
		p.stop(t)
	})
	waitFor(t, "the incident's message", time.Minute, func() bool { roots, _ := slack.Posts(); return len(roots) > 0 })
	roots, _ := slack.Posts()
	m := roots[0]
	for _, want := range []string{"vantage_proxy_refused", "egress proxy of eu", "the target was not reached from eu", "X-Squid-Error", "http_access allow"} {
		if !strings.Contains(m.Blocks, want) {
			t.Errorf("the incident message lacks %q:\n%s", want, m.Blocks)
		}
	}
	if strings.Contains(m.Blocks, "WAF") {
		t.Errorf("the incident message blames a WAF:\n%s", m.Blocks)
	}
}
