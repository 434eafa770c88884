package testbed_test

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

func TestNginxEdgeModes(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			o := testbed.NewOriginT(t, testbed.OriginOptions{})
			_, c := testbed.StartNginxEdgeT(t, testbed.EdgeConfig{Upstream: o.Addr(), Mode: mode, Deny: []string{denied}})
			checkEdge(t, c.Listen, o, mode, true)
		})
	}
}

func TestNginxReload(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	n, c := testbed.StartNginxEdgeT(t, testbed.EdgeConfig{Upstream: o.Addr(), Mode: testbed.EdgePass})
	if n.Generation() != 1 {
		t.Fatalf("generation %d", n.Generation())
	}
	// An upgraded connection opened before the reloads.
	ws, _, _, err := dialWS(t, "ws://"+c.Listen+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, mode := range []testbed.EdgeMode{testbed.EdgeWAF403CloudflareLike, testbed.EdgePass, testbed.EdgeStripUpgrade} {
		c.Mode = mode
		conf, err := c.Conf()
		if err != nil {
			t.Fatal(err)
		}
		testbed.ReloadT(t, n, conf)
		if n.Generation() != i+2 {
			t.Fatalf("after reload %d: generation %d", i+1, n.Generation())
		}
		// No polling: Reload returns once the new config answers.
		checkEdge(t, c.Listen, o, mode, true)
	}
	// nginx's old worker keeps the established tunnel through reloads.
	if got := exchangeText(t, ws, "ping"); got != "pong" {
		t.Fatalf("old tunnel: %q", got)
	}
}

func TestNginxReloadKeepsOldConfigOnError(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	n, c := testbed.StartNginxEdgeT(t, testbed.EdgeConfig{Upstream: o.Addr(), Mode: testbed.EdgePass})

	err := n.Reload(testbed.NginxMain("    no_such_directive on;\n"))
	if err == nil || !strings.Contains(err.Error(), `unknown directive "no_such_directive"`) {
		t.Fatalf("bad directive: %v", err)
	}
	// Passes `nginx -t` but fails to apply: the port is taken.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	other := c
	other.Listen = busy.Addr().String()
	conf, err := other.Conf()
	if err != nil {
		t.Fatal(err)
	}
	err = n.Reload(conf)
	if err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("busy port: %v", err)
	}
	if err := n.Reload("events {}\n"); err == nil {
		t.Fatal("config without http block accepted")
	}
	if n.Generation() != 1 || upgradeStatus(t, c.Listen) != 101 {
		t.Fatalf("old config not serving: generation %d", n.Generation())
	}
}

func TestNginxTLSEdgeKeepsSNI(t *testing.T) {
	t.Parallel()
	ca := testbed.NewCAT(t)
	valid := func(name string) tls.Certificate {
		c, err := ca.Leaf([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	o := testbed.NewOriginT(t, testbed.OriginOptions{TLS: &tls.Config{Certificates: []tls.Certificate{valid("origin.internal")}}})
	certFile, keyFile, err := testbed.WriteCertFiles(t.TempDir(), "chat", valid("chat.test"))
	if err != nil {
		t.Fatal(err)
	}
	_, c := testbed.StartNginxEdgeT(t, testbed.EdgeConfig{
		Upstream: o.Addr(), UpstreamTLS: true, Mode: testbed.EdgePass,
		ServerName: "chat.test", TLSCert: certFile, TLSKey: keyFile,
	})
	ws, status, body, err := dialWS(t, "wss://chat.test/ws", &websocket.DialOptions{
		HTTPClient: client(c.Listen, "", &tls.Config{RootCAs: ca.Pool()}),
	})
	if err != nil {
		t.Fatalf("dial: %d %q %v", status, body, err)
	}
	if got := exchangeText(t, ws, "ping"); got != "pong" {
		t.Fatalf("ping: %q", got)
	}
	if r, _ := o.Last(); r.SNI != "chat.test" || r.Host != "chat.test" {
		t.Fatalf("origin saw SNI %q Host %q", r.SNI, r.Host)
	}
}

func TestNginxStopLeavesNothing(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	n, c := testbed.StartNginxEdgeT(t, testbed.EdgeConfig{Upstream: o.Addr()})
	pgid := n.Pid()
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if left := liveInGroup(pgid); len(left) > 0 {
		t.Fatalf("process group %d after Stop: %v", pgid, left)
	}
	if conn, err := net.DialTimeout("tcp", c.Listen, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s still accepts", c.Listen)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.Dir, "access.log")); err != nil {
		t.Fatalf("access log not in the prefix: %v", err)
	}
}

// TestNginxGuardianKillsGroup checks what happens when the test binary dies
// abruptly: the guardian's pipe closes and the whole group, workers too, goes.
func TestNginxGuardianKillsGroup(t *testing.T) {
	t.Parallel()
	n := testbed.StartNginxT(t, testbed.NginxMain(""))
	pgid := n.Pid()
	if live := liveInGroup(pgid); len(live) != 2 {
		t.Fatalf("group %d: %v, want master and worker", pgid, live)
	}
	n.FireGuard()
	eventually(t, "group killed by the guardian", func() bool { return len(liveInGroup(pgid)) == 0 })
}

func TestStartNginxErrors(t *testing.T) {
	t.Parallel()
	if _, err := testbed.LookNginx(); err != nil {
		testbed.MissingTool(t, err)
	}
	if _, err := testbed.StartNginx(t.TempDir(), "events {}\n"); err == nil || !strings.Contains(err.Error(), "http {") {
		t.Errorf("no http block: %v", err)
	}
	_, err := testbed.StartNginx(t.TempDir(), testbed.NginxMain("    proxy_pass nowhere;\n"))
	if err == nil || !strings.Contains(err.Error(), `"proxy_pass" directive is not allowed here`) {
		t.Errorf("bad config: %v", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	conf, err := testbed.EdgeConfig{Listen: busy.Addr().String(), Upstream: "127.0.0.1:9"}.Conf()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testbed.StartNginx(t.TempDir(), conf); err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Errorf("busy port: %v", err)
	}
	for _, c := range []testbed.EdgeConfig{
		{Upstream: "127.0.0.1:9"},
		{Listen: "127.0.0.1:1", Upstream: "nowhere"},
		{Listen: "127.0.0.1:1", Upstream: "127.0.0.1:9", Mode: testbed.EdgeDeny, Deny: []string{"not-an-ip"}},
		{Listen: "127.0.0.1:1", Upstream: "127.0.0.1:9", TLSCert: "only.crt"},
		{Listen: "127.0.0.1:1", Upstream: "127.0.0.1:9", Mode: testbed.EdgeMode(42)},
	} {
		if _, err := c.Conf(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestHeadersMoreModule(t *testing.T) {
	t.Parallel()
	p, err := testbed.HeadersMoreModule()
	if err != nil {
		testbed.MissingTool(t, err)
	}
	if !filepath.IsAbs(p) || !strings.HasSuffix(p, "ngx_http_headers_more_filter_module.so") {
		t.Fatalf("module path %q", p)
	}
	if conf := testbed.NginxMain(""); !strings.Contains(conf, "load_module "+p+";") {
		t.Fatalf("NginxMain does not load it:\n%s", conf)
	}
}
