package testbed_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// answer is an HTTP response read off a raw connection.
type answer struct {
	proto  string
	status int
	header http.Header
	body   string
}

// upgradeRequest is a browser-like WebSocket upgrade request.
func upgradeRequest(host, target string, extra ...string) string {
	var b strings.Builder
	b.WriteString("GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	b.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// localDialer dials from localIP ("" lets the kernel choose).
func localDialer(localIP string) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	return d
}

// roundTrip writes req on a fresh TCP connection to addr from localIP and
// reads one response (its body bounded to 64 KiB; none for a 101).
func roundTrip(t *testing.T, addr, localIP, req string) answer {
	t.Helper()
	c, err := localDialer(localIP).Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	return exchange(t, c, req)
}

func exchange(t *testing.T, c net.Conn, req string) answer {
	t.Helper()
	a, err := tryExchange(c, req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryExchange is exchange for goroutines other than the test's.
func tryExchange(c net.Conn, req string) (answer, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return answer{}, fmt.Errorf("write: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return answer{}, fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	a := answer{proto: resp.Proto, status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return answer{}, fmt.Errorf("read body: %w", err)
		}
		a.body = string(b)
	}
	return a, nil
}

// client is an HTTP client for websocket.Dial that sends every connection to
// addr (whatever the URL's host), from localIP, trusting tlsCfg.
func client(addr, localIP string, tlsCfg *tls.Config) *http.Client {
	d := localDialer(localIP)
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:   tlsCfg,
		DisableKeepAlives: true,
	}}
}

// dialWS opens a WebSocket; on a non-101 answer it returns the status and
// the bounded body.
func dialWS(t *testing.T, u string, opts *websocket.DialOptions) (*websocket.Conn, int, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		if resp == nil {
			return nil, 0, "", err
		}
		var body string
		if resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			body = string(b)
		}
		return nil, resp.StatusCode, body, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp.StatusCode, "", nil
}

// exchangeText sends msg and returns the reply.
func exchangeText(t *testing.T, c *websocket.Conn, msg string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read reply to %q: %v", msg, err)
	}
	return string(b)
}

// within fails the test if f does not return within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// hammer runs WebSocket upgrades against addr from four workers until ctx
// ends and counts the statuses answered.
func hammer(t *testing.T, ctx context.Context, addr string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	seen := map[int]int{}
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					continue
				}
				a, err := tryExchange(c, upgradeRequest("chat.test", "/ws"))
				c.Close()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[a.status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return seen
}
