package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/report"
)

// nodeWSDeflate is node ws with permessage-deflate on (off by default on
// its server), compressing every message.
const nodeWSDeflate = `const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2]), perMessageDeflate: { threshold: 0 } });
wss.on('connection', (ws, req) => ws.send('welcome ' + (req.headers['sec-websocket-extensions'] || 'none')));
`

// TestPermessageDeflate: offered as Chrome offers it, the extension is
// negotiated by real servers that compress (python3-websockets, node ws
// with perMessageDeflate), the server's compressed message is read and
// matched; a server that negotiates it and then sends a broken compressed
// frame is rejected_after_open, and the summary says the compressed
// stream is broken.
func TestPermessageDeflate(t *testing.T) {
	needBinary(t, "/usr/bin/python3", "python3-websockets")
	needBinary(t, "/usr/share/nodejs/ws/package.json", "node-ws")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pyws.py"), []byte(pythonWebsockets), 0o600)
	os.WriteFile(filepath.Join(dir, "nodews.js"), []byte(nodeWSDeflate), 0o600)
	py := startServer(t, "python3-websockets", func(port int) *exec.Cmd {
		return exec.Command("/usr/bin/python3", filepath.Join(dir, "pyws.py"), fmt.Sprint(port))
	})
	node := startServer(t, "node-ws", func(port int) *exec.Cmd {
		c := exec.Command("node", filepath.Join(dir, "nodews.js"), fmt.Sprint(port))
		c.Env = append(os.Environ(), "NODE_PATH=/usr/share/nodejs")
		return c
	})
	for _, tt := range []struct{ name, check, reply string }{
		{"python3-websockets", fmt.Sprintf("  - {name: py, url: \"ws://%s/ws\", origin: \"https://app.example.com\", schedule: \"@every 1m\", expect: \"^welcome$\"}\n", py), "welcome"},
		{"node ws", fmt.Sprintf("  - {name: node, url: \"ws://%s/ws\", schedule: \"@every 1m\", expect: \"^welcome permessage-deflate; client_max_window_bits$\"}\n", node),
			"welcome permessage-deflate; client_max_window_bits"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := checkPasses(t, tt.check)
			a := rep.Attempts[0]
			t.Logf("offered %q, answered %q, reply %q", a.Extensions, a.ExtensionsAnswer, a.Reply)
			if !a.OK || a.Reply != tt.reply || !strings.HasPrefix(a.ExtensionsAnswer, "permessage-deflate") ||
				a.Extensions != "permessage-deflate; client_max_window_bits" {
				t.Fatalf("attempt %+v", a)
			}
		})
	}
	t.Run("a broken compressed stream", func(t *testing.T) {
		addr := brokenDeflateServer(t)
		rep := checkOnce(t, fmt.Sprintf("  - {name: broken, url: \"ws://%s/ws\", schedule: \"@every 1m\", expect: \"welcome\"}\n", addr))
		a, d := rep.Attempts[0], rep.Diagnosis
		t.Logf("%s: %s", d.Cause, d.Summary)
		if a.Outcome != report.OutcomeRejectedAfterOpen || !strings.Contains(d.Summary, "compressed stream") || !strings.Contains(d.Summary, "permessage-deflate") {
			t.Fatalf("outcome %s, summary %q (error %q)", a.Outcome, d.Summary, a.Error)
		}
	})
}

// checkPasses runs `wscanary check --output json` on a check that must
// pass.
func checkPasses(t *testing.T, check string) report.Report {
	t.Helper()
	cfg := writeConfig(t, "vantage: us\nlisten: \"\"\n", "checks:\n"+check)
	out, stderr, code := wscanary(t, "check", "--config", cfg, "--output", "json")
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, stderr)
	}
	return reports(t, out)[0]
}

// brokenDeflateServer accepts permessage-deflate and then sends a frame
// marked compressed whose payload is not a deflate stream, like a proxy
// that mangles compressed frames.
func brokenDeflateServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"+
					"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
				c.Write([]byte{0xc1, 0x06, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa}) // FIN+RSV1 text, not deflate
				buf := make([]byte, 512)
				c.Read(buf)
			}()
		}
	}()
	return ln.Addr().String()
}
