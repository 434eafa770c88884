package probe_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/probe"
	"github.com/wscanary/wscanary/monitor/report"
)

// hostile is a raw TCP server whose handler misbehaves on purpose.
type hostile struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	seen  int
}

func newHostile(t testing.TB, handle func(net.Conn, *http.Request)) *hostile {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hostile{ln: ln, conns: map[net.Conn]bool{}}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns[c] = true
			h.seen++
			h.mu.Unlock()
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				defer func() { h.mu.Lock(); delete(h.conns, c); h.mu.Unlock(); c.Close() }()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				req, _ := http.ReadRequest(bufio.NewReader(c))
				handle(c, req)
			}()
		}
	}()
	t.Cleanup(h.close)
	return h
}

func (h *hostile) close() {
	h.ln.Close()
	h.mu.Lock()
	for c := range h.conns {
		c.Close()
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *hostile) url(scheme string) *url.URL {
	return &url.URL{Scheme: scheme, Host: h.ln.Addr().String(), Path: "/ws", RawQuery: "token=" + canary}
}

func accept(key string) string {
	s := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(s[:])
}

// wait blocks until the client goes away (or the server closes).
func wait(c net.Conn) {
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

type scenario struct {
	name    string
	scheme  string
	handle  func(net.Conn, *http.Request)
	expect  *regexp.Regexp
	status  int
	class   string
	errHas  string
	bodyHas string
	maxReqs int
}

func scenarios() []scenario {
	big := strings.Repeat("x", 10<<20)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("blocked by policy: " + strings.Repeat("z", 5000)))
	zw.Close()
	return []scenario{
		{name: "never answers", handle: func(c net.Conn, _ *http.Request) { wait(c) }, class: report.ErrTimeout},
		{name: "dribbles the status line", handle: func(c net.Conn, _ *http.Request) {
			for _, b := range []byte("HTTP/1.1 101 Switching Protocols\r\n") {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			wait(c)
		}, class: report.ErrTimeout},
		{name: "10 MB body on a 403", handle: func(c net.Conn, _ *http.Request) {
			fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n", len(big))
			c.Write([]byte(big))
		}, status: 403, bodyHas: "xxxx"},
		{name: "1 MB header line", handle: func(c net.Conn, _ *http.Request) {
			fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nX-Big: %s\r\n\r\n", strings.Repeat("h", 1<<20))
		}, class: report.ErrProtocol, errHas: "header"},
		{name: "endless headers", handle: func(c net.Conn, _ *http.Request) {
			c.Write([]byte("HTTP/1.1 403 Forbidden\r\n"))
			for i := 0; ; i++ {
				if _, err := fmt.Fprintf(c, "X-H%d: v\r\n", i); err != nil {
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}, class: report.ErrTimeout},
		{name: "redirect loop", handle: func(c net.Conn, _ *http.Request) {
			c.Write([]byte("HTTP/1.1 302 Found\r\nLocation: /ws\r\nContent-Length: 0\r\n\r\n"))
		}, status: 302, maxReqs: 1},
		{name: "TLS garbage", scheme: "wss", handle: func(c net.Conn, _ *http.Request) {
			c.Write(bytes.Repeat([]byte{0x17, 0xfe, 0x42}, 100))
		}, class: report.ErrTLS},
		{name: "not HTTP", handle: func(c net.Conn, _ *http.Request) {
			c.Write([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
		}, class: report.ErrProtocol},
		{name: "101 without Sec-WebSocket-Accept", handle: func(c net.Conn, _ *http.Request) {
			c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
			wait(c)
		}, class: report.ErrProtocol, errHas: "Sec-WebSocket-Accept"},
		{name: "101 with a wrong Sec-WebSocket-Accept", handle: func(c net.Conn, _ *http.Request) {
			c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"))
			wait(c)
		}, class: report.ErrProtocol, errHas: "Sec-WebSocket-Accept"},
		{name: "101 then silence while expect waits", expect: regexp.MustCompile("pong"), handle: func(c net.Conn, r *http.Request) {
			if r == nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
				accept(r.Header.Get("Sec-WebSocket-Key")))
			wait(c)
		}, status: 101, class: report.ErrExpect},
		{name: "reset mid-headers", handle: func(c net.Conn, _ *http.Request) {
			c.Write([]byte("HTTP/1.1 403 Forb"))
			c.(*net.TCPConn).SetLinger(0)
		}, class: report.ErrProtocol},
		{name: "gzip body", handle: func(c net.Conn, _ *http.Request) {
			fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", gz.Len())
			c.Write(gz.Bytes())
		}, status: 403, bodyHas: "blocked by policy"},
	}
}

// TestHostileTargets: whatever the server does, the attempt ends within
// its timeout with a classified result and bounded, redacted evidence.
func TestHostileTargets(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, sc.handle)
			scheme := sc.scheme
			if scheme == "" {
				scheme = "ws"
			}
			start := time.Now()
			att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{
				URL: h.url(scheme), Timeout: timeout, Expect: sc.expect,
				Credential: &probe.Credential{Value: canary, In: "header"},
			})
			if took := time.Since(start); took > timeout+1500*time.Millisecond {
				t.Fatalf("took %v with a %v timeout", took, timeout)
			}
			if att.Status != sc.status || att.ErrorClass() != sc.class {
				t.Fatalf("status %d error %q, want %d and class %q", att.Status, att.Error, sc.status, sc.class)
			}
			if !strings.Contains(att.Error, sc.errHas) || !strings.Contains(att.Body, sc.bodyHas) {
				t.Fatalf("error %q body %.60q, want %q / %q", att.Error, att.Body, sc.errHas, sc.bodyHas)
			}
			if len(att.Body) > probe.MaxBody {
				t.Fatalf("body of %d bytes", len(att.Body))
			}
			size := 0
			for k, v := range att.Headers {
				size += len(k) + len(v)
			}
			if size > probe.MaxResponseHeaderBytes {
				t.Fatalf("headers of %d bytes", size)
			}
			if strings.Contains(fmt.Sprintf("%+v", att), canary) {
				t.Fatal("the token leaked into the evidence")
			}
			if sc.maxReqs > 0 {
				h.mu.Lock()
				n := h.seen
				h.mu.Unlock()
				if n > sc.maxReqs {
					t.Fatalf("%d connections: a redirect was followed", n)
				}
			}
			t.Logf("status %d, error %q", att.Status, att.Error)
		})
	}
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestNoLeaksAfterManyAttempts: 1,000 attempts against hostile servers
// leave no goroutine and no file descriptor behind.
func TestNoLeaksAfterManyAttempts(t *testing.T) {
	// Not parallel: it counts the process's goroutines and descriptors.
	scs := scenarios()
	var servers []*hostile
	for _, sc := range scs {
		servers = append(servers, newHostile(t, sc.handle))
	}
	runtime.GC()
	baseG, baseFD := runtime.NumGoroutine(), openFDs()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range 1000 {
		sc, h := scs[i%len(scs)], servers[i%len(scs)]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			scheme := sc.scheme
			if scheme == "" {
				scheme = "ws"
			}
			(&probe.Prober{}).Attempt(context.Background(), probe.Request{URL: h.url(scheme), Timeout: 150 * time.Millisecond, Expect: sc.expect})
		})
	}
	wg.Wait()
	// Server-side handlers of hanging scenarios are ours, not the prober's:
	// close their connections before counting.
	for _, h := range servers {
		h.mu.Lock()
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
	}
	var g, fd int
	end := time.Now().Add(5 * time.Second)
	for time.Now().Before(end) {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs()
		if g <= baseG+5 && fd <= baseFD+5 {
			t.Logf("goroutines %d -> %d, fds %d -> %d after 1,000 hostile attempts", baseG, g, baseFD, fd)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("leak: goroutines %d -> %d, fds %d -> %d", baseG, g, baseFD, fd)
}

// TestRefusalBodyStaysInsideDeadline: the body of a refusal is read only
// as far as the evidence needs, and never past the attempt's deadline, not
// even when the connection is closed (net/http drains a body on Close).
// Each server counts what it managed to write and notes when the client
// let go of the connection.
func TestRefusalBodyStaysInsideDeadline(t *testing.T) {
	t.Parallel()
	const timeout = 2 * time.Second
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	cases := []struct {
		name string
		head string
		body func(c net.Conn) error
	}{
		{"1 GiB Content-Length", "Content-Length: 1073741824\r\n", func(c net.Conn) error { _, err := c.Write(chunk); return err }},
		{"endless chunked", "Transfer-Encoding: chunked\r\n", func(c net.Conn) error {
			_, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
			return err
		}},
		{"drip 2 KiB every 200ms", "Content-Length: 1073741824\r\n", func(c net.Conn) error {
			time.Sleep(200 * time.Millisecond)
			_, err := c.Write(chunk[:2<<10])
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var sent int64
			var released time.Time
			h := newHostile(t, func(c net.Conn, _ *http.Request) {
				fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\n%s\r\n", tc.head)
				for {
					if err := tc.body(c); err != nil {
						break
					}
					mu.Lock()
					sent += int64(len(chunk))
					mu.Unlock()
				}
				mu.Lock()
				released = time.Now()
				mu.Unlock()
			})
			start := time.Now()
			att := (&probe.Prober{}).Attempt(context.Background(), probe.Request{URL: h.url("ws"), Timeout: timeout})
			took := time.Since(start)
			if att.Status != 403 || !strings.Contains(att.Body, "xx") {
				t.Fatalf("status %d body %.20q", att.Status, att.Body)
			}
			var rel time.Time
			testWait(t, 10*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				rel = released
				return !rel.IsZero()
			})
			mu.Lock()
			n := sent
			mu.Unlock()
			if took > timeout || rel.Sub(start) > timeout+time.Second || n > 32<<20 {
				t.Fatalf("attempt took %v, connection released after %v, %d MiB sent (timeout %v)", took, rel.Sub(start), n>>20, timeout)
			}
			t.Logf("attempt %v, released after %v, %d KiB sent", took.Round(time.Millisecond), rel.Sub(start).Round(time.Millisecond), n>>10)
		})
	}
}

func testWait(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
