package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// canaryToken must never be printed, whatever happens.
const canaryToken = "CANARY-e2e-5b1d0c9f"

// requireTool skips, or fails when the test command promised the tools
// (WSCANARY_REQUIRE_TOOLS=1), when a Debian tool is missing.
func requireTool(t *testing.T, err error, pkg string) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("WSCANARY_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%v (install the Debian package %s)", err, pkg)
	}
	t.Skipf("skipped: %v; install the Debian package %s or run scripts/test as root", err, pkg)
}

func startOrigin(t *testing.T, b testbed.Behavior, tlsConf *tls.Config) *testbed.Origin {
	t.Helper()
	o, err := testbed.NewOrigin(testbed.OriginOptions{Behavior: b, TLS: tlsConf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// startEdge runs a real nginx in front of upstream.
func startEdge(t *testing.T, upstream string, mode testbed.EdgeMode, deny ...string) (*testbed.Nginx, testbed.EdgeConfig) {
	t.Helper()
	ec := startEdgeWith(t, testbed.EdgeConfig{Upstream: upstream, Mode: mode, Deny: deny})
	return ec.nginx, ec.EdgeConfig
}

// edgeRig is a started nginx edge and its configuration.
type edgeRig struct {
	testbed.EdgeConfig
	nginx *testbed.Nginx
}

// startEdgeWith runs a real nginx edge of ec (its Listen chosen here).
func startEdgeWith(t *testing.T, ec testbed.EdgeConfig) edgeRig {
	t.Helper()
	_, err := testbed.LookNginx()
	requireTool(t, err, "nginx-light")
	if ec.Mode == testbed.EdgeWAF403CloudflareLike {
		_, err := testbed.HeadersMoreModule()
		requireTool(t, err, "libnginx-mod-http-headers-more-filter")
	}
	if ec.Listen, err = testbed.FreeAddr(); err != nil {
		t.Fatal(err)
	}
	conf, err := ec.Conf()
	if err != nil {
		t.Fatal(err)
	}
	n, err := testbed.StartNginx(t.TempDir(), conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop() })
	return edgeRig{EdgeConfig: ec, nginx: n}
}

func setMode(t *testing.T, n *testbed.Nginx, ec testbed.EdgeConfig, mode testbed.EdgeMode) {
	t.Helper()
	ec.Mode = mode
	conf, err := ec.Conf()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(conf); err != nil {
		t.Fatal(err)
	}
}

// wscanary runs the CLI in-process and returns stdout, stderr and the exit code.
func wscanary(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	for _, s := range []string{out.String(), errOut.String()} {
		if strings.Contains(s, canaryToken) {
			t.Fatalf("the canary token leaked into the output:\n%s", s)
		}
	}
	return out.String(), errOut.String(), code
}

func reports(t *testing.T, stdout string) []report.Report {
	t.Helper()
	var reps []report.Report
	if err := json.Unmarshal([]byte(stdout), &reps); err != nil {
		t.Fatalf("stdout is not a JSON array of reports: %v\n%s", err, stdout)
	}
	return reps
}

// writeConfig writes a main file and one check file and returns the main path.
func writeConfig(t *testing.T, main, checks string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	if !strings.Contains(main, "state_dir:") {
		// Never the machine's /var/lib/wscanary: a store left there by an
		// earlier run would hold its incidents open.
		main += fmt.Sprintf("state_dir: %s\n", filepath.Join(dir, "state"))
	}
	if err := os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(main), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "checks.d", "e2e.yaml"), []byte(checks), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "wscanary.yaml")
}

func attempt(t *testing.T, r report.Report, route report.Route, variant report.Variant, vantage string) report.Attempt {
	t.Helper()
	for _, a := range r.Attempts {
		if a.Route == route && a.Variant == variant && (vantage == "" || a.Vantage == vantage) {
			return a
		}
	}
	t.Fatalf("no %s/%s/%s attempt in %+v", vantage, route, variant, r.Attempts)
	return report.Attempt{}
}

func countConfigured(r report.Report) int {
	n := 0
	for _, a := range r.Attempts {
		if a.Variant == report.VariantConfigured {
			n++
		}
	}
	return n
}

// TestProbeThroughNginx is the acceptance run: `wscanary probe`
// through a real nginx edge, passing and then stripping the upgrade.
func TestProbeThroughNginx(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	n, ec := startEdge(t, origin.Addr(), testbed.EdgePass)
	url := "ws://" + ec.Listen + "/ws?room=1"

	out, _, code := wscanary(t, "probe", url, "--direct", origin.Addr(), "--token", canaryToken, "--output", "json")
	rep := reports(t, out)[0]
	if code != exitOK || !rep.OK || len(rep.Attempts) != 2 {
		t.Fatalf("pass edge: exit %d report %+v", code, rep)
	}
	for _, route := range []report.Route{report.RouteCDN, report.RouteDirect} {
		if a := attempt(t, rep, route, report.VariantConfigured, ""); a.Status != 101 || !strings.Contains(a.URL, "token=REDACTED") {
			t.Errorf("%s: %+v", route, a)
		}
	}
	passTable, _, _ := wscanary(t, "probe", url, "--direct", origin.Addr(), "--origin", "https://app.test")
	if !strings.Contains(passTable, "probe OK") {
		t.Errorf("pass table:\n%s", passTable)
	}
	t.Logf("wscanary probe %s --direct %s --origin https://app.test\n%s", url, origin.Addr(), passTable)
	// The direct route reached the origin itself with the edge's Host.
	last, _ := origin.Last()
	if last.Host != ec.Listen {
		t.Errorf("direct route sent Host %q, want %q", last.Host, ec.Listen)
	}

	setMode(t, n, ec, testbed.EdgeStripUpgrade)
	out, _, code = wscanary(t, "probe", url, "--direct", origin.Addr(), "--output", "json")
	rep = reports(t, out)[0]
	cdn := attempt(t, rep, report.RouteCDN, report.VariantConfigured, "")
	direct := attempt(t, rep, report.RouteDirect, report.VariantConfigured, "")
	if code != exitFailed || cdn.Status != 426 || direct.Status != 101 || rep.Diagnosis.Cause != report.CauseProxyStrippedUpgrade {
		t.Fatalf("strip edge: exit %d cdn %d direct %d cause %s", code, cdn.Status, direct.Status, rep.Diagnosis.Cause)
	}
	table, _, _ := wscanary(t, "probe", url, "--direct", origin.Addr())
	for _, want := range []string{"cdn", "direct", "426", "101", "proxy_stripped_upgrade", "proxy_http_version 1.1"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	t.Logf("wscanary probe %s --direct %s\n%s", url, origin.Addr(), table)
}

func jwtToken(t *testing.T, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(exp.Add(-time.Hour)),
	}).SignedString([]byte("test-key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCausesEndToEnd runs `wscanary check` against real servers, one
// scenario per cause, and asserts the diagnosis.
func TestCausesEndToEnd(t *testing.T) {
	expired := jwtToken(t, time.Now().Add(-time.Hour))
	type scenario struct {
		name     string
		behavior testbed.Behavior
		// edge mode in front of the origin; -1 for no edge (cdn = origin)
		edge    testbed.EdgeMode
		deny    []string
		check   string // extra YAML lines of the check (indented 4)
		direct  bool
		cause   report.Cause
		vendor  string
		variant report.Variant // a variant that must have been tried
		closed  bool           // dial a port nothing listens on
	}
	tests := []scenario{
		{name: "ok", edge: testbed.EdgePass, direct: true, cause: report.CauseOK},
		{name: "cdn_blocked", edge: testbed.EdgeWAF403CloudflareLike, direct: true, cause: report.CauseCDNBlocked, vendor: "cloudflare"},
		{name: "proxy_stripped_upgrade", edge: testbed.EdgeStripUpgrade, direct: true, cause: report.CauseProxyStrippedUpgrade, vendor: "nginx"},
		{name: "origin_rejected", edge: -1, behavior: testbed.Behavior{AllowedOrigins: []string{"https://app.test"}},
			check: "    origin: https://evil.test\n", cause: report.CauseOriginRejected, variant: report.VariantNoOrigin},
		{name: "origin_required", edge: -1, behavior: testbed.Behavior{RequireOrigin: true},
			cause: report.CauseOriginRequired, variant: report.VariantSameOrigin},
		{name: "token_expired", edge: -1, behavior: testbed.Behavior{Token: "the-real-one"},
			check: "    token: {value: " + expired + "}\n", cause: report.CauseTokenExpired, variant: report.VariantNoToken},
		{name: "auth_missing", edge: -1, behavior: testbed.Behavior{Token: "the-real-one"}, cause: report.CauseAuthMissing},
		{name: "auth_rejected", edge: -1, behavior: testbed.Behavior{Token: "the-real-one", TokenIn: testbed.TokenInHeader},
			check: "    origin: https://app.test\n    token: {value: " + canaryToken + ", in: header}\n", direct: true,
			cause: report.CauseAuthRejected, variant: report.VariantNoToken},
		{name: "csrf_rejected", edge: -1, behavior: testbed.Behavior{CSRF: true}, cause: report.CauseCSRFRejected},
		{name: "post_handshake_rejected", edge: -1, behavior: testbed.Behavior{Token: "the-real-one", TokenIn: testbed.TokenInMessage},
			check: "    token: {value: " + canaryToken + ", in: message}\n    send: '{\"auth\":\"{token}\"}'\n", cause: report.CausePostHandshakeRejected},
		{name: "not_found", edge: -1, behavior: testbed.Behavior{Status: 404, Body: "404 page not found"}, cause: report.CauseNotFound},
		{name: "redirect", edge: -1, behavior: testbed.Behavior{Status: 302, Headers: map[string][]string{"Location": {"/new"}}}, cause: report.CauseRedirect},
		{name: "server_error", edge: -1, behavior: testbed.Behavior{Status: 502, Body: "bad gateway"}, cause: report.CauseServerError},
		{name: "unexpected_status", edge: -1, behavior: testbed.Behavior{Status: 418}, cause: report.CauseUnexpectedStatus},
		{name: "connect_error", edge: -1, closed: true, cause: report.CauseConnectError},
		{name: "timeout", edge: -1, behavior: testbed.Behavior{Hang: true}, check: "    timeout: 300ms\n", cause: report.CauseTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin := startOrigin(t, tt.behavior, nil)
			target := origin.Addr()
			if tt.closed {
				target = closedAddr(t)
			}
			if tt.edge >= 0 {
				_, ec := startEdge(t, origin.Addr(), tt.edge, tt.deny...)
				target = ec.Listen
			}
			check := fmt.Sprintf("checks:\n  - name: %s\n    url: ws://%s/ws\n    schedule: \"@every 1m\"\n%s", tt.name, target, tt.check)
			if tt.direct {
				check += "    direct: {address: \"" + origin.Addr() + "\"}\n"
			}
			path := writeConfig(t, "vantage: e2e\nlisten: \"\"\n", check)
			out, errOut, code := wscanary(t, "check", "--config", path, "--output", "json")
			reps := reports(t, out)
			if len(reps) != 1 {
				t.Fatalf("%d reports; stderr %s", len(reps), errOut)
			}
			r := reps[0]
			wantCode := exitFailed
			if tt.cause == report.CauseOK {
				wantCode = exitOK
			}
			if r.Diagnosis.Cause != tt.cause || r.Diagnosis.Vendor != tt.vendor || code != wantCode {
				t.Fatalf("cause %s vendor %q exit %d, want %s %q %d\n%s", r.Diagnosis.Cause, r.Diagnosis.Vendor, code,
					tt.cause, tt.vendor, wantCode, out)
			}
			if (tt.cause != report.CauseOK && len(r.Diagnosis.Hints) == 0) || r.Diagnosis.Summary == "" {
				t.Errorf("no hints or summary: %+v", r.Diagnosis)
			}
			if tt.variant != "" {
				attempt(t, r, report.RouteCDN, tt.variant, "")
			}
			if testing.Verbose() {
				table, _, _ := wscanary(t, "check", "--config", path)
				t.Logf("wscanary check (%s)\n%s", tt.name, table)
			}
			if tt.cause == report.CauseOK && len(r.Attempts) != countConfigured(r) {
				t.Errorf("a healthy check made variant attempts: %+v", r.Attempts)
			}
		})
	}
}

// TestVantageBlockedByNginxDeny: two source-address vantages, nginx denies
// one of them.
func TestVantageBlockedByNginxDeny(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	_, ec := startEdge(t, origin.Addr(), testbed.EdgeDeny, "127.0.0.3")
	main := "vantage: e2e\nlisten: \"\"\nvantages:\n  - {name: addr2, source_address: 127.0.0.2}\n  - {name: addr3, source_address: 127.0.0.3}\n"
	check := "checks:\n  - name: chat\n    url: ws://" + ec.Listen + "/ws\n    schedule: \"@every 1m\"\n    vantages: [addr2, addr3]\n"
	out, _, code := wscanary(t, "check", "--config", writeConfig(t, main, check), "--output", "json")
	r := reports(t, out)[0]
	a2 := attempt(t, r, report.RouteCDN, report.VariantConfigured, "addr2")
	a3 := attempt(t, r, report.RouteCDN, report.VariantConfigured, "addr3")
	if code != exitFailed || a2.Status != 101 || a3.Status != 403 || r.Diagnosis.Cause != report.CauseVantageBlocked ||
		r.Diagnosis.Vantage != "addr3" || r.Diagnosis.Vendor != "nginx" {
		t.Fatalf("exit %d addr2 %d addr3 %d diagnosis %+v", code, a2.Status, a3.Status, r.Diagnosis)
	}
}

// TestTLSCertificates: an expired certificate is a tls_error that says so;
// a valid one soon to expire passes with a warning hint; Host and SNI on
// the direct route are the URL's.
func TestTLSCertificates(t *testing.T) {
	ca, err := testbed.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, ca.PEM(), 0o600)
	now := time.Now()
	for _, tt := range []struct {
		name      string
		notAfter  time.Time
		cause     report.Cause
		detailHas string
	}{
		{name: "expired", notAfter: now.Add(-24 * time.Hour), cause: report.CauseTLSError, detailHas: "expired"},
		{name: "valid", notAfter: now.Add(5 * 24 * time.Hour), cause: report.CauseOK, detailHas: "expires in 4 days"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leaf, err := ca.Leaf([]string{"localhost"}, now.Add(-48*time.Hour), tt.notAfter)
			if err != nil {
				t.Fatal(err)
			}
			origin := startOrigin(t, testbed.Behavior{}, &tls.Config{Certificates: []tls.Certificate{leaf}})
			_, port, _ := strings.Cut(origin.Addr(), ":")
			// localhost resolves from /etc/hosts: no DNS query leaves the machine.
			out, _, _ := wscanary(t, "probe", "wss://localhost:"+port+"/ws", "--direct", origin.Addr(), "--ca-file", caFile, "--output", "json")
			r := reports(t, out)[0]
			d := attempt(t, r, report.RouteDirect, report.VariantConfigured, "")
			if tt.cause == report.CauseOK {
				if !d.OK || !strings.Contains(strings.Join(r.Diagnosis.Hints, " "), tt.detailHas) {
					t.Fatalf("direct %+v hints %q", d, r.Diagnosis.Hints)
				}
				last, _ := origin.Last()
				if last.SNI != "localhost" || last.Host != "localhost:"+port {
					t.Errorf("origin saw SNI %q Host %q", last.SNI, last.Host)
				}
				return
			}
			if d.ErrorClass() != report.ErrTLS || !strings.Contains(d.Error, tt.detailHas) {
				t.Fatalf("direct %+v", d)
			}
		})
	}
}

func TestValidateAndUsageErrors(t *testing.T) {
	path := writeConfig(t, "vantage: e2e\n", "checks:\n  - name: a\n    url: http://x/ws\n    schedule: nope\n")
	_, errOut, code := wscanary(t, "validate", "--config", path)
	if code != exitUsage || !strings.Contains(errOut, "e2e.yaml:3: url:") || !strings.Contains(errOut, "e2e.yaml:4: schedule:") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if _, _, code := wscanary(t, "nonsense"); code != exitUsage {
		t.Fatalf("unknown command exit %d", code)
	}
	if _, _, code := wscanary(t, "probe"); code != exitUsage {
		t.Fatalf("probe without URL exit %d", code)
	}
	if out, _, code := wscanary(t, "check", "--help"); code != exitOK || out != "" {
		t.Fatalf("--help exit %d", code)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	addr, err := testbed.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestProbeThroughTinyproxy: a real HTTP proxy as the vantage; ws:// goes
// through a CONNECT tunnel, as a browser's would.
func TestProbeThroughTinyproxy(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	px := testbed.StartTinyproxyT(t)
	out, _, code := wscanary(t, "probe", origin.URL()+"?room=1", "--proxy", px.URL().String(), "--output", "json")
	r := reports(t, out)[0]
	a := attempt(t, r, report.RouteCDN, report.VariantConfigured, "proxy")
	if code != exitOK || !a.OK || a.Peer != px.Addr {
		t.Fatalf("exit %d attempt %+v (proxy %s)", code, a, px.Addr)
	}
	if !strings.Contains(px.Log(), "CONNECT") {
		t.Errorf("tinyproxy logged no CONNECT:\n%s", px.Log())
	}
}

// TestProbeThroughSOCKS5: a socks5:// vantage reaches the origin through
// the proxy, which sees the target.
func TestProbeThroughSOCKS5(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	px, err := testbed.NewSOCKS5()
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	out, _, code := wscanary(t, "probe", origin.URL(), "--proxy", "socks5://"+px.Addr(), "--output", "json")
	a := attempt(t, reports(t, out)[0], report.RouteCDN, report.VariantConfigured, "proxy")
	if code != exitOK || !a.OK || a.Peer != px.Addr() {
		t.Fatalf("exit %d attempt %+v", code, a)
	}
	if got := px.Targets(); len(got) != 1 || got[0] != origin.Addr() {
		t.Fatalf("proxy targets %v, want [%s]", got, origin.Addr())
	}
}
