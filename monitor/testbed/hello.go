package testbed

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Handshake is what one client connection to a HelloServer sent: its raw
// TLS ClientHello record and its request head, line by line as on the
// wire.
type Handshake struct {
	Hello []byte
	// Head is the request line and header lines, verbatim, in order.
	Head []string
}

// Header names in the order sent, without the request line.
func (h Handshake) Names() []string {
	var out []string
	for _, l := range h.Head[min(1, len(h.Head)):] {
		name, _, _ := strings.Cut(l, ":")
		out = append(out, name)
	}
	return out
}

// Value is the first value of the header name (case-insensitive).
func (h Handshake) Value(name string) string {
	for _, l := range h.Head[min(1, len(h.Head)):] {
		n, v, _ := strings.Cut(l, ":")
		if strings.EqualFold(n, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// HelloServer is a TLS server on 127.0.0.1 for "localhost" that records
// what each client sends before crypto/tls and net/http could reorder or
// normalise it: the raw ClientHello, and the request head read off the
// connection. It serves a page at / whose script opens a WebSocket to
// /ws, and answers /ws with a 101 (no extension). It offers ALPN http/1.1
// only and issues no session tickets, so every connection is a fresh
// handshake, as wscanary's always are.
type HelloServer struct {
	ln      net.Listener
	CertPEM []byte
	mu      sync.Mutex
	shakes  []Handshake
}

// NewHelloServer starts one. CertPEM is the CA to trust.
func NewHelloServer() (*HelloServer, error) {
	ca, leaf, err := localhostCert()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &HelloServer{ln: ln, CertPEM: ca.PEM()}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf}, NextProtos: []string{"http/1.1"}, SessionTicketsDisabled: true}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s, nil
}

// Port is the port it listens on.
func (s *HelloServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops it.
func (s *HelloServer) Close() error { return s.ln.Close() }

// WebSockets are the handshakes of the connections that asked for /ws.
func (s *HelloServer) WebSockets() []Handshake {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Handshake
	for _, h := range s.shakes {
		if len(h.Head) > 0 && strings.HasPrefix(h.Head[0], "GET /ws") {
			out = append(out, h)
		}
	}
	return out
}

type replay struct {
	net.Conn
	r io.Reader
}

func (c *replay) Read(p []byte) (int, error) { return c.r.Read(p) }

func (s *HelloServer) serve(c net.Conn, cfg *tls.Config) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	hello, err := ReadClientHello(c)
	if err != nil {
		return
	}
	tc := tls.Server(&replay{Conn: c, r: io.MultiReader(bytes.NewReader(hello), c)}, cfg)
	if err := tc.Handshake(); err != nil {
		return
	}
	br := bufio.NewReader(tc)
	for {
		var head []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			l = strings.TrimRight(l, "\r\n")
			if l == "" {
				break
			}
			head = append(head, l)
			if len(head) > 200 {
				return
			}
		}
		s.mu.Lock()
		s.shakes = append(s.shakes, Handshake{Hello: hello, Head: head})
		s.mu.Unlock()
		h := Handshake{Head: head}
		switch {
		case strings.HasPrefix(head[0], "GET /ws"):
			sum := sha1.Sum([]byte(h.Value("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
			fmt.Fprintf(tc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				base64.StdEncoding.EncodeToString(sum[:]))
			// Close at once with 1000: the handshake is what is compared.
			tc.Write([]byte{0x88, 0x02, 0x03, 0xe8})
			time.Sleep(200 * time.Millisecond)
			return
		case strings.HasPrefix(head[0], "GET / "):
			page := fmt.Sprintf(`<!doctype html><html><body><pre id="o">start</pre><script>
var ws = new WebSocket("wss://localhost:%d/ws");
ws.onopen = function(){ document.getElementById("o").textContent += " open"; };
ws.onclose = function(e){ document.getElementById("o").textContent += " close " + e.code; };
</script></body></html>`, s.Port())
			fmt.Fprintf(tc, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(page), page)
		default:
			fmt.Fprintf(tc, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
		}
	}
}

// ReadClientHello reads the TLS records that hold a ClientHello, as sent.
func ReadClientHello(c io.Reader) ([]byte, error) {
	var raw, hs []byte
	for len(raw) < 64<<10 {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return raw, err
		}
		raw = append(raw, hdr...)
		if hdr[0] != 0x16 {
			return raw, fmt.Errorf("not a TLS handshake record")
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return raw, err
		}
		raw = append(raw, body...)
		hs = append(hs, body...)
		if len(hs) >= 4 && len(hs) >= 4+(int(hs[1])<<16|int(hs[2])<<8|int(hs[3])) {
			return raw, nil
		}
	}
	return raw, fmt.Errorf("ClientHello too large")
}

// localhostCert is a new CA and a leaf of it for localhost and 127.0.0.1,
// valid for a day.
func localhostCert() (*CA, tls.Certificate, error) {
	ca, err := NewCA()
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf, err := ca.Leaf([]string{"localhost", "127.0.0.1"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	return ca, leaf, err
}
