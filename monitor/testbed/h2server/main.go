// Command h2server is a test peer: Go's net/http TLS server with HTTP/2,
// run by testbed.StartH2Server with GODEBUG=http2xconnect=1 so that it
// advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), as a Go service
// does when its operator turns that on (golang/go#71128). Its /ws handler
// only speaks HTTP/1.1 upgrades (coder/websocket's Accept): over HTTP/1.1
// it echoes, over HTTP/2 it refuses the extended CONNECT it was offered.
// That is the broken h2 path a browser takes and a canary on HTTP/1.1
// never sees.
//
// With http2debug=2 in GODEBUG, net/http logs every frame it reads and
// every header field it decodes, in order, on stderr: the testbed reads
// the client's SETTINGS, WINDOW_UPDATE and request header order from
// there. Each connection's raw ClientHello and each /ws request go to
// stdout as JSON lines.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	cert := flag.String("cert", "", "certificate PEM")
	key := flag.String("key", "", "key PEM")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	out := &lines{w: os.Stdout}
	port := ln.Addr().(*net.TCPAddr).Port
	out.emit(map[string]any{"listening": ln.Addr().String()})

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		out.emit(map[string]any{"page": true, "conn": r.RemoteAddr, "path": r.URL.Path, "proto": r.Proto})
		fmt.Fprintf(w, `<!doctype html><html><body><pre id="o">start</pre><script>
var ws = new WebSocket("wss://localhost:%d/ws");
ws.onopen = function(){ document.getElementById("o").textContent += " open"; };
ws.onclose = function(e){ document.getElementById("o").textContent += " close " + e.code; };
</script></body></html>`, port)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		sort.Strings(names)
		out.emit(map[string]any{"ws": true, "conn": r.RemoteAddr, "method": r.Method, "proto": r.Proto,
			"protocol": r.Header.Get(":protocol"), "path": r.URL.Path, "headers": names})
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return // Accept answered the refusal itself
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, msg); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux, ErrorLog: log.New(os.Stderr, "", 0)}
	if err := srv.ServeTLS(&helloListener{Listener: ln, out: out}, *cert, *key); err != nil {
		log.Fatal(err)
	}
}

// lines writes one JSON object per line.
type lines struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lines) emit(v map[string]any) {
	b, _ := json.Marshal(v)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(append(b, '\n'))
}

// helloListener hands net/http connections whose ClientHello was read
// first (and is replayed to TLS), to record it as sent.
type helloListener struct {
	net.Listener
	out *lines
}

func (h *helloListener) Accept() (net.Conn, error) {
	c, err := h.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &helloConn{Conn: c, out: h.out}, nil
}

type helloConn struct {
	net.Conn
	out  *lines
	once sync.Once
	r    io.Reader
}

func (c *helloConn) Read(p []byte) (int, error) {
	c.once.Do(func() {
		hello, err := testbed.ReadClientHello(c.Conn)
		c.out.emit(map[string]any{"conn": c.RemoteAddr().String(), "hello": hex.EncodeToString(hello)})
		c.r = io.MultiReader(bytes.NewReader(hello), c.Conn)
		if err != nil {
			c.r = io.MultiReader(bytes.NewReader(hello), errReader{err})
		}
	})
	return c.r.Read(p)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
