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
			t.Logf("summary: %s\nhints: %q", d.Summary, d.Hints)
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

// TestGatewayOAuth2Proxy: a real oauth2-proxy (its Go module) with an OIDC
// provider of the test's in front of the WebSocket server, as its 403
// sign-in page and as a 302 to the provider, behind the nginx edge on the
// CDN route only and on both routes, is gateway_auth_required naming
// oauth2-proxy (and the edge it sits behind), never cdn_blocked; with
// --skip-jwt-bearer-tokens and the provider's ID token as the check's
// token the check upgrades on both routes.
func TestGatewayOAuth2Proxy(t *testing.T) {
	t.Parallel()
	origin := startOrigin(t, testbed.Behavior{}, nil)
	upstream := "http://" + origin.Addr() + "/"
	run := func(t *testing.T, cdn, direct, token string) (report.Report, int) {
		t.Helper()
		main := "vantage: us\nlisten: \"\"\n"
		check := fmt.Sprintf("checks:\n  - name: chat\n    url: ws://%s/ws\n    direct: {address: %q}\n    schedule: \"@every 1m\"\n    timeout: 5s\n", cdn, direct)
		if token != "" {
			check += fmt.Sprintf("    token: {value: %q, in: header}\n", token)
		}
		out, _, code := wscanary(t, "check", "--config", writeConfig(t, main, check), "--output", "json")
		return reports(t, out)[0], code
	}
	for _, tt := range []struct {
		name      string
		opts      testbed.OAuth2ProxyOptions
		both      bool
		status    int
		summHas   []string
		vendor    string
		directHas string
	}{
		{name: "sign-in page, CDN route only", opts: testbed.OAuth2ProxyOptions{}, status: 403, vendor: "nginx",
			summHas: []string{"oauth2-proxy answered the upgrade through the nginx edge: 403 Forbidden with its sign-in page through cdn from us",
				"The direct route upgrades: the gateway sits on the CDN route only."}},
		{name: "redirect to the provider, CDN route only", opts: testbed.OAuth2ProxyOptions{SkipProviderButton: true}, status: 302, vendor: "nginx",
			summHas: []string{"302 Found to http://127.0.0.1:", "/authorize through cdn from us"}},
		{name: "sign-in page on both routes", opts: testbed.OAuth2ProxyOptions{}, both: true, status: 403, vendor: "nginx",
			summHas: []string{"It answers on the direct route too."}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g, _ := testbed.StartOAuth2ProxyT(t, testbed.OAuth2ProxyOptions{Upstream: upstream, SkipProviderButton: tt.opts.SkipProviderButton})
			_, edge := startEdge(t, g.Addr, testbed.EdgePass)
			direct := origin.Addr()
			if tt.both {
				direct = g.Addr
			}
			r, code := run(t, edge.Listen, direct, "")
			a := attempt(t, r, report.RouteCDN, report.VariantConfigured, "")
			d := r.Diagnosis
			if code != exitFailed || a.Status != tt.status || a.Hop != report.HopGateway || a.Gateway != "oauth2-proxy" ||
				d.Cause != report.CauseGatewayAuthRequired || d.Gateway != "oauth2-proxy" || d.Vendor != tt.vendor || d.Hop != report.HopGateway {
				t.Fatalf("exit %d, cdn %d hop %q gateway %q\ndiagnosis %+v", code, a.Status, a.Hop, a.Gateway, d)
			}
			for _, want := range tt.summHas {
				if !strings.Contains(d.Summary, want) {
					t.Errorf("summary %q lacks %q", d.Summary, want)
				}
			}
			hints := strings.Join(d.Hints, "\n")
			if !strings.Contains(hints, "--skip-jwt-bearer-tokens") || strings.Contains(hints, "WAF") {
				t.Errorf("hints %q: want oauth2-proxy's machine credential, no WAF", d.Hints)
			}
			t.Logf("summary: %s\nhints: %q", d.Summary, d.Hints)
		})
	}
	t.Run("a service credential passes", func(t *testing.T) {
		g, idp := testbed.StartOAuth2ProxyT(t, testbed.OAuth2ProxyOptions{Upstream: upstream, SkipJWTBearer: true})
		_, edge := startEdge(t, g.Addr, testbed.EdgePass)
		r, code := run(t, edge.Listen, g.Addr, idp.Mint(g.ClientID, time.Hour))
		if code != exitOK || r.Diagnosis.Cause != report.CauseOK {
			t.Fatalf("exit %d diagnosis %+v attempts %+v", code, r.Diagnosis, r.Attempts)
		}
		for _, a := range r.Attempts {
			if !a.OK || a.Status != 101 || a.Hop != report.HopTarget {
				t.Errorf("%s: %d hop %q, want 101 from the target", a.Route, a.Status, a.Hop)
			}
		}
		// Without it, the same gateway still asks to sign in.
		if r, _ := run(t, edge.Listen, g.Addr, ""); r.Diagnosis.Cause != report.CauseGatewayAuthRequired {
			t.Errorf("without the token: %+v", r.Diagnosis)
		}
	})
}
