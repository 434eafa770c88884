package testbed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// H2Server is Go's net/http TLS server with HTTP/2, in a process of its
// own run with GODEBUG=http2xconnect=1 (so it advertises RFC 8441's
// extended CONNECT, which Go's server does not by default) and
// http2debug=2 (so it logs what clients send, in order). Its /ws handler
// speaks only HTTP/1.1 upgrades: over HTTP/2 it refuses the extended
// CONNECT it advertised, the broken h2 path of golang/go#71128. / is a
// page whose script opens wss://localhost:PORT/ws. See ./h2server.
type H2Server struct {
	Port    int
	CertPEM []byte // the CA to trust
	dir     string
	proc    *process
}

var h2Build struct {
	once sync.Once
	bin  string
	err  error
}

// StartH2Server builds (once per test binary) and starts one.
func StartH2Server(dir string) (*H2Server, error) {
	h2Build.once.Do(func() {
		bdir, err := os.MkdirTemp("", "wscanary-h2server-")
		if err != nil {
			h2Build.err = err
			return
		}
		h2Build.bin = filepath.Join(bdir, "h2server")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", h2Build.bin, "github.com/wscanary/wscanary/monitor/testbed/h2server").CombinedOutput()
		if err != nil {
			h2Build.err = fmt.Errorf("testbed: go build h2server: %v\n%s", err, out)
		}
	})
	if h2Build.err != nil {
		return nil, h2Build.err
	}
	ca, leaf, err := localhostCert()
	if err != nil {
		return nil, err
	}
	certFile, keyFile, err := WriteCertFiles(dir, "h2server", leaf)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(h2Build.bin, "-addr", fmt.Sprintf("127.0.0.1:%d", port), "-cert", certFile, "-key", keyFile)
	cmd.Env = append(os.Environ(), "GODEBUG=http2xconnect=1,http2debug=2")
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	s := &H2Server{Port: port, CertPEM: ca.PEM(), dir: dir}
	// The wait bounds a start, however busy the machine.
	if s.proc, err = startServing("h2server", s.logPath(), cmd, fmt.Sprintf("127.0.0.1:%d", port), time.Minute); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *H2Server) logPath() string { return filepath.Join(s.dir, "h2server.log") }

// Close stops it.
func (s *H2Server) Close() { s.proc.stop(syscall.SIGTERM, 5*time.Second) }

// H2Conn is what one HTTP/2 client connection sent: its SETTINGS and
// connection WINDOW_UPDATE as logged, and its requests.
type H2Conn struct {
	Settings string // "HEADER_TABLE_SIZE=65536, ENABLE_PUSH=0, ..."
	Window   string // the connection WINDOW_UPDATE's increment
	Requests []H2Request
}

// H2Request is one request's header fields, pseudo-headers included, in
// the order decoded.
type H2Request struct {
	Fields [][2]string
}

// Names are the request's field names in order.
func (r H2Request) Names() []string {
	out := make([]string, len(r.Fields))
	for i, f := range r.Fields {
		out[i] = f[0]
	}
	return out
}

// Value is the first value of name.
func (r H2Request) Value(name string) string {
	for _, f := range r.Fields {
		if f[0] == name {
			return f[1]
		}
	}
	return ""
}

// Seen is a request as the server's handlers saw it (the page at / and
// /ws), with the ClientHello of its connection.
type Seen struct {
	Conn, Method, Proto, Protocol, Path string
	Headers                             []string
	Hello                               []byte
}

var (
	framerLine = regexp.MustCompile(`http2: Framer (0x[0-9a-f]+): read (SETTINGS|WINDOW_UPDATE|HEADERS)(.*)$`)
	fieldLine  = regexp.MustCompile(`http2: decoded hpack field header field "(.*)" = "(.*)"$`)
)

// Log reads what the server recorded: the HTTP/2 connections in the
// order their first frame was read, and the requests its handlers saw.
func (s *H2Server) Log() ([]H2Conn, []Seen, error) {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return nil, nil, err
	}
	hellos := map[string][]byte{}
	var ws []Seen
	var conns []*H2Conn
	byFramer := map[string]*H2Conn{}
	var cur *H2Conn // the connection whose HEADERS are being decoded
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "{") {
			var v struct {
				Conn, Hello, Method, Proto, Protocol, Path string
				WS, Page                                   bool
				Headers                                    []string
			}
			if json.Unmarshal([]byte(line), &v) != nil {
				continue
			}
			switch {
			case v.Hello != "":
				hellos[v.Conn], _ = hex.DecodeString(v.Hello)
			case v.Page:
				ws = append(ws, Seen{Conn: v.Conn, Method: "GET", Proto: v.Proto, Path: v.Path, Hello: hellos[v.Conn]})
			case v.WS:
				ws = append(ws, Seen{Conn: v.Conn, Method: v.Method, Proto: v.Proto, Protocol: v.Protocol, Path: v.Path,
					Headers: v.Headers, Hello: hellos[v.Conn]})
			}
			continue
		}
		if m := fieldLine.FindStringSubmatch(line); m != nil && cur != nil {
			r := &cur.Requests[len(cur.Requests)-1]
			r.Fields = append(r.Fields, [2]string{m[1], m[2]})
			continue
		}
		m := framerLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		c := byFramer[m[1]]
		if c == nil {
			c = &H2Conn{}
			byFramer[m[1]] = c
			conns = append(conns, c)
		}
		cur = nil
		switch rest := m[3]; m[2] {
		case "SETTINGS":
			if _, v, ok := strings.Cut(rest, "settings: "); ok && c.Settings == "" {
				c.Settings = v
			}
		case "WINDOW_UPDATE":
			if _, v, ok := strings.Cut(rest, "(conn) incr="); ok && c.Window == "" {
				c.Window = v
			}
		case "HEADERS":
			c.Requests = append(c.Requests, H2Request{})
			cur = c
		}
	}
	out := make([]H2Conn, len(conns))
	for i, c := range conns {
		out[i] = *c
	}
	return out, ws, sc.Err()
}

// H2Connect is an extended CONNECT request and the connection it came on.
type H2Connect struct {
	Conn    H2Conn
	Request H2Request
}

// Connects are the extended CONNECT requests in the order sent.
func Connects(conns []H2Conn) []H2Connect {
	var out []H2Connect
	for _, c := range conns {
		for _, r := range c.Requests {
			if r.Value(":method") == "CONNECT" {
				out = append(out, H2Connect{c, r})
			}
		}
	}
	return out
}
