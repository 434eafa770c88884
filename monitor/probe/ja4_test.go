package probe_test

import (
	"os"
	"testing"

	"github.com/wscanary/wscanary/monitor/probe"
)

// TestJA4KnownHello pins JA4 to a fingerprint computed elsewhere: the
// ClientHello record Debian's headless Chromium 156 sent on a WebSocket
// connection (testdata/chromium-156-websocket-hello.bin, captured on
// 127.0.0.1 by a raw TLS listener), whose JA4 an independent
// implementation of FoxIO's specification computed as below.
// TestChromiumReference compares wscanary with Chromium through this
// function: a wrong JA4 there would pass unnoticed without this pin.
func TestJA4KnownHello(t *testing.T) {
	t.Parallel()
	hello, err := os.ReadFile("testdata/chromium-156-websocket-hello.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := probe.JA4(hello)
	if err != nil {
		t.Fatal(err)
	}
	if want := "t13d1516h1_8daaf6152771_5b37b36a67c0"; got != want {
		t.Errorf("JA4 = %s, want %s", got, want)
	}
	for _, bad := range [][]byte{nil, []byte("GET / HTTP/1.1\r\n"), hello[:40]} {
		if j, err := probe.JA4(bad); err == nil {
			t.Errorf("JA4 of %d bytes that are no ClientHello = %s, want an error", len(bad), j)
		}
	}
}
