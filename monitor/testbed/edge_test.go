package testbed_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

func TestEdgeModes(t *testing.T) {
	t.Parallel()
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			o := testbed.NewOriginT(t, testbed.OriginOptions{})
			e := testbed.NewEdgeT(t, o.Addr(), mode)
			if err := e.SetMode(mode, denied); err != nil {
				t.Fatal(err)
			}
			checkEdge(t, e.Addr(), o, mode, false)
		})
	}
}

// TestEdgeMatchesNginx sends the same requests to both edges in each mode
// and compares what a prober would look at.
func TestEdgeMatchesNginx(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	n, c := testbed.StartNginxEdgeT(t, testbed.EdgeConfig{Upstream: o.Addr(), Deny: []string{denied}})
	e := testbed.NewEdgeT(t, o.Addr(), testbed.EdgePass)
	for _, mode := range allModes {
		c.Mode = mode
		conf, err := c.Conf()
		if err != nil {
			t.Fatal(err)
		}
		testbed.ReloadT(t, n, conf)
		if err := e.SetMode(mode, denied); err != nil {
			t.Fatal(err)
		}
		for _, from := range []string{denied, allowed} {
			req := upgradeRequest("chat.test", "/ws")
			a, b := roundTrip(t, c.Listen, from, req), roundTrip(t, e.Addr(), from, req)
			if a.status != b.status {
				t.Errorf("%v from %s: nginx %d, Go edge %d", mode, from, a.status, b.status)
			}
			for _, h := range []string{"Server", "Cf-Mitigated", "Content-Type", "Cache-Control", "Upgrade"} {
				if a.header.Get(h) != b.header.Get(h) {
					t.Errorf("%v from %s: %s: nginx %q, Go edge %q", mode, from, h, a.header.Get(h), b.header.Get(h))
				}
			}
			// The strip-mode bodies differ by design (HTTP/1.0 vs 1.1 upstream).
			if mode != testbed.EdgeStripUpgrade && a.body != b.body {
				t.Errorf("%v from %s: bodies differ:\nnginx %q\nGo    %q", mode, from, a.body, b.body)
			}
		}
	}
}

func TestEdgeSwitchesUnderLoad(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	e := testbed.NewEdgeT(t, o.Addr(), testbed.EdgePass)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if err := e.SetMode(allModes[i%len(allModes)], "127.0.0.1"); err != nil {
				t.Error(err)
				return
			}
			_, _ = e.Mode()
			time.Sleep(time.Millisecond)
		}
	}()
	seen := hammer(t, ctx, e.Addr())
	wg.Wait()
	for status := range seen {
		if status != 101 && status != 403 && status != 426 {
			t.Errorf("status %d while switching (all: %v)", status, seen)
		}
	}
}

func TestEdgeCloseEndsTunnels(t *testing.T) {
	t.Parallel()
	o := testbed.NewOriginT(t, testbed.OriginOptions{})
	e := testbed.NewEdgeT(t, o.Addr(), testbed.EdgePass)
	ws, _, _, err := dialWS(t, e.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := exchangeText(t, ws, "ping"); got != "pong" {
		t.Fatalf("ping: %q", got)
	}
	within(t, 5*time.Second, "Edge.Close with an open tunnel", func() { _ = e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := ws.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read after Close: %v", err)
	}
}

func TestEdgeBadGatewayAndBadInput(t *testing.T) {
	t.Parallel()
	down, err := testbed.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	e := testbed.NewEdgeT(t, down, testbed.EdgePass)
	a := roundTrip(t, e.Addr(), "", upgradeRequest("chat.test", "/ws"))
	if a.status != 502 || a.header.Get("Server") != "nginx" ||
		a.body != "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n" {
		t.Fatalf("upstream down: %d %v %q", a.status, a.header, a.body)
	}
	if err := e.SetMode(testbed.EdgeDeny, "nope"); err == nil {
		t.Error("bad deny entry accepted")
	}
	if err := e.SetMode(testbed.EdgeMode(9)); err == nil {
		t.Error("bad mode accepted")
	}
	if err := e.SetMode(testbed.EdgeDeny, "127.0.0.0/30", "::1"); err != nil {
		t.Error(err)
	}
	if m, deny := e.Mode(); m != testbed.EdgeDeny || len(deny) != 2 {
		t.Errorf("Mode() = %v %v", m, deny)
	}
	if _, err := testbed.NewEdge("no-port", testbed.EdgePass); err == nil {
		t.Error("upstream without port accepted")
	}
}
