package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/testbed"
)

// Servers wscanary was not written against, from Debian packages: their
// refusals as they really send them, diagnosed through `wscanary check
// --output json`.

const pythonWebsockets = `import asyncio, sys, http
from urllib.parse import urlparse, parse_qs
import websockets

async def handler(ws, path=None):
    await ws.send("welcome")
    await ws.wait_closed()

async def process_request(path, headers):
    tok = parse_qs(urlparse(path).query).get("token", [""])[0]
    if tok.startswith("tok-old-"):
        return (http.HTTPStatus.UNAUTHORIZED,
                [("WWW-Authenticate", 'Bearer error="invalid_token", error_description="The access token expired"')],
                b"token has expired\n")
    return None

async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), origins=["https://app.example.com"], process_request=process_request):
        await asyncio.Future()

asyncio.run(main())
`

const nodeWS = `const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2]), verifyClient: (info, cb) => {
  const token = new URL(info.req.url, 'http://x').searchParams.get('token');
  if (!token) return cb(false);
  if (token !== 'good') return cb(false, 403, 'Invalid token');
  cb(true);
}});
wss.on('connection', (ws) => ws.send('welcome'));
`

// The ASGI app refuses, before accepting, a WebSocket whose Origin is not
// its own host's, like Channels' AllowedHostsOriginValidator: daphne
// answers that refusal itself.
const asgiApp = `async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    headers = dict(scope["headers"])
    origin = headers.get(b"origin", b"").decode()
    host = headers.get(b"host", b"").decode()
    if origin != "http://" + host:
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "welcome"})
    await receive()
`

// startServer runs a server process on a free port and waits for it.
func startServer(t *testing.T, name string, cmd func(port int) *exec.Cmd) string {
	t.Helper()
	port, err := testbed.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	c := cmd(port)
	out := &testbed.SyncBuffer{}
	c.Stdout, c.Stderr = out, out
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s said:\n%s", name, out.String())
		}
	})
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		c.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := testbed.WaitListening(addr, 15*time.Second); err != nil {
		t.Fatalf("%s did not listen on %s: %v", name, addr, err)
	}
	return addr
}

func needBinary(t *testing.T, path, pkg string) {
	t.Helper()
	_, err := os.Stat(path)
	requireTool(t, err, pkg)
}

// checkOnce runs `wscanary check --output json` on one check and returns
// its report.
func checkOnce(t *testing.T, check string, env ...string) report.Report {
	t.Helper()
	cfg := writeConfig(t, "vantage: us\nlisten: \"\"\n", "checks:\n"+check)
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	out, stderr, code := wscanary(t, "check", "--config", cfg, "--output", "json")
	if code != exitFailed {
		t.Fatalf("check: exit %d, want 1\n%s%s", code, out, stderr)
	}
	reps := reports(t, out)
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	return reps[0]
}

func TestRealServers(t *testing.T) {
	needBinary(t, "/usr/bin/python3", "python3-websockets")
	if exec.Command("/usr/bin/python3", "-c", "import websockets").Run() != nil {
		requireTool(t, os.ErrNotExist, "python3-websockets")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pyws.py"), []byte(pythonWebsockets), 0o600)
	os.WriteFile(filepath.Join(dir, "nodews.js"), []byte(nodeWS), 0o600)
	os.WriteFile(filepath.Join(dir, "asgiapp.py"), []byte(asgiApp), 0o600)
	py := startServer(t, "python3-websockets", func(port int) *exec.Cmd {
		return exec.Command("/usr/bin/python3", filepath.Join(dir, "pyws.py"), fmt.Sprint(port))
	})

	tests := []struct {
		name   string
		check  func() string
		env    []string
		cause  report.Cause
		vendor string
		says   string
	}{
		{name: "python websockets: origins= refuses every variant, and says it is the Origin",
			check: func() string {
				return fmt.Sprintf("  - {name: py-origin, url: \"ws://%s/ws\", origin: \"https://evil.example\", schedule: \"@every 1m\"}\n", py)
			}, cause: report.CauseOriginRejected, says: "invalid Origin header"},
		{name: "python websockets: RFC 6750 invalid_token, expired, opaque token",
			check: func() string {
				return fmt.Sprintf("  - {name: py-expired, url: \"ws://%s/ws\", origin: \"https://app.example.com\", schedule: \"@every 1m\", token: {value: \"${WS_TOKEN}\", in: query, name: token}}\n", py)
			}, env: []string{"WS_TOKEN=tok-old-7f3a9c1e"}, cause: report.CauseTokenExpired, says: "The access token expired"},
		{name: "node ws: verifyClient without a token",
			check: func() string {
				needBinary(t, "/usr/share/nodejs/ws/package.json", "node-ws")
				addr := startServer(t, "node-ws", func(port int) *exec.Cmd {
					c := exec.Command("node", filepath.Join(dir, "nodews.js"), fmt.Sprint(port))
					c.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
					return c
				})
				return fmt.Sprintf("  - {name: node-missing, url: \"ws://%s/ws\", schedule: \"@every 1m\"}\n", addr)
			}, cause: report.CauseAuthMissing},
		{name: "node ws: verifyClient refuses the token and says so",
			check: func() string {
				addr := startServer(t, "node-ws", func(port int) *exec.Cmd {
					c := exec.Command("node", filepath.Join(dir, "nodews.js"), fmt.Sprint(port))
					c.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
					return c
				})
				return fmt.Sprintf("  - {name: node-bad, url: \"ws://%s/ws\", schedule: \"@every 1m\", token: {value: \"${WS_TOKEN}\", in: query, name: token}}\n", addr)
			}, env: []string{"WS_TOKEN=forged"}, cause: report.CauseAuthRejected, says: "Invalid token"},
		{name: "daphne: an ASGI app that closes before accept (an origin validator)",
			check: func() string {
				needBinary(t, "/usr/bin/daphne", "daphne")
				addr := startServer(t, "daphne", func(port int) *exec.Cmd {
					c := exec.Command("/usr/bin/daphne", "-b", "127.0.0.1", "-p", fmt.Sprint(port), "asgiapp:app")
					c.Dir = dir
					c.Env = append(os.Environ(), "PYTHONPATH="+dir)
					return c
				})
				return fmt.Sprintf("  - {name: daphne-origin, url: \"ws://%s/ws\", origin: \"https://app.example.com\", schedule: \"@every 1m\"}\n", addr)
			}, cause: report.CauseOriginRejected},
		{name: "HAProxy in front: its own deny page through the CDN route",
			check: func() string {
				needBinary(t, "/usr/sbin/haproxy", "haproxy")
				edge := startHAProxy(t, py, "http-request deny if { req.hdr(upgrade) -i websocket }")
				return fmt.Sprintf("  - {name: haproxy-deny, url: \"ws://%s/ws\", origin: \"https://app.example.com\", direct: {address: %q}, schedule: \"@every 1m\"}\n", edge, py)
			}, cause: report.CauseCDNBlocked, vendor: "haproxy"},
		{name: "HAProxy in front: a rate limit (deny_status 429)",
			check: func() string {
				edge := startHAProxy(t, py, "http-request deny deny_status 429 if { req.hdr(upgrade) -i websocket }")
				return fmt.Sprintf("  - {name: haproxy-limit, url: \"ws://%s/ws\", origin: \"https://app.example.com\", direct: {address: %q}, schedule: \"@every 1m\"}\n", edge, py)
			}, cause: report.CauseRateLimited, vendor: "haproxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := checkOnce(t, tt.check(), tt.env...)
			d := rep.Diagnosis
			t.Logf("%s (%s): %s", d.Cause, d.Vendor, d.Summary)
			if d.Cause != tt.cause || d.Vendor != tt.vendor || !strings.Contains(d.Summary, tt.says) {
				t.Fatalf("got %s vendor %q: %s\nwant %s %q saying %q\nattempts: %+v", d.Cause, d.Vendor, d.Summary, tt.cause, tt.vendor, tt.says, rep.Attempts)
			}
		})
	}
}

// startHAProxy runs HAProxy in HTTP mode in front of upstream with one
// http-request rule.
func startHAProxy(t *testing.T, upstream, rule string) string {
	t.Helper()
	return startHAProxyBind(t, upstream, "", rule)
}

// startHAProxyBind is startHAProxy with options on its bind line (TLS,
// ALPN h2 for an HTTP/2 frontend).
func startHAProxyBind(t *testing.T, upstream, bind, rule string) string {
	t.Helper()
	dir := t.TempDir()
	return startServer(t, "haproxy", func(port int) *exec.Cmd {
		conf := fmt.Sprintf(`global
  log stderr format short local0 warning
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s
  timeout tunnel 30s
frontend edge
  bind 127.0.0.1:%d %s
  %s
  default_backend origin
backend origin
  server s1 %s
`, port, bind, rule, upstream)
		path := filepath.Join(dir, "haproxy.cfg")
		os.WriteFile(path, []byte(conf), 0o600)
		return exec.Command("/usr/sbin/haproxy", "-db", "-f", path)
	})
}
