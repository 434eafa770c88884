package testbed_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// connectVia opens a tunnel to target through an HTTP CONNECT proxy, from
// localIP, the way a browser reaches a ws:// URL through a proxy.
func connectVia(ctx context.Context, proxy, localIP, target string) (net.Conn, error) {
	c, err := localDialer(localIP).DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		c.Close()
		return nil, fmt.Errorf("CONNECT %s: %s %q", target, resp.Status, b)
	}
	if br.Buffered() > 0 {
		c.Close()
		return nil, fmt.Errorf("CONNECT %s: %d unexpected bytes after the answer", target, br.Buffered())
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func TestTinyproxyConnectReachesOrigin(t *testing.T) {
	t.Parallel()
	tp := testbed.StartTinyproxyT(t)
	o := testbed.NewOriginT(t, testbed.OriginOptions{})

	// Raw: CONNECT, then the upgrade inside the tunnel.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := connectVia(ctx, tp.Addr, allowed, o.Addr())
	if err != nil {
		t.Fatalf("%v\n%s", err, tp.Log())
	}
	defer c.Close()
	if a := exchange(t, c, upgradeRequest("chat.test", "/ws")); a.status != 101 {
		t.Fatalf("upgrade through the tunnel: %d %q", a.status, a.body)
	}

	// coder/websocket over the same kind of tunnel, frames included.
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return connectVia(ctx, tp.Addr, "", addr)
		},
	}}
	ws, status, body, err := dialWS(t, o.URL(), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatalf("dial: %d %q %v", status, body, err)
	}
	if got := exchangeText(t, ws, "ping"); got != "pong" {
		t.Fatalf("ping: %q", got)
	}
	reqs := o.Requests()
	if len(reqs) != 2 || !reqs[0].WantsUpgrade() || reqs[0].Host != "chat.test" || reqs[1].Host != o.Addr() {
		t.Fatalf("origin saw %+v", reqs)
	}
	if !strings.Contains(tp.Log(), "CONNECT") {
		t.Errorf("tinyproxy log does not mention CONNECT:\n%s", tp.Log())
	}
}

func TestTinyproxyStop(t *testing.T) {
	t.Parallel()
	tp := testbed.StartTinyproxyT(t)
	tp.Stop()
	tp.Stop()
	if c, err := net.DialTimeout("tcp", tp.Addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts after Stop", tp.Addr)
	}
	if tp.URL().String() != "http://"+tp.Addr {
		t.Errorf("URL %s", tp.URL())
	}
}
