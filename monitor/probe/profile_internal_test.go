package probe

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestWriteHeadKeepsEveryConfiguredValue: a header the check wrote in its
// own case and the same header from its token are both sent, once each,
// in the check's spelling, whatever the map order (before: one of the two
// cookies was lost at random, and a lower-case authorization beside a
// header token went out twice).
func TestWriteHeadKeepsEveryConfiguredValue(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("ws://example.com/ws")
	req := Request{URL: u, Header: http.Header{"cookie": {"a=1"}, "x-api-key": {"k1"}, "authorization": {"Basic x"}},
		Credential: &Credential{Value: "tok", In: "cookie"}}
	for _, client := range Clients {
		for range 50 {
			_, header, written, _ := shape(req)
			header.Set("Sec-WebSocket-Key", "key") // the library's own
			var b bytes.Buffer
			if err := writeHead(&b, &http.Request{URL: u, Header: header}, profileOf(client), "wscanary/test", written); err != nil {
				t.Fatal(err)
			}
			head := b.String()
			for _, want := range []string{"cookie: a=1\r\n", "cookie: token=tok\r\n", "x-api-key: k1\r\n", "authorization: Basic x\r\n", "Sec-WebSocket-Key: key\r\n"} {
				if strings.Count(head, want) != 1 {
					t.Fatalf("%s: %q sent %d times:\n%s", client, want, strings.Count(head, want), head)
				}
			}
			if n := strings.Count(strings.ToLower(head), "\r\nauthorization:"); n != 1 {
				t.Fatalf("%s: %d Authorization lines:\n%s", client, n, head)
			}
		}
	}
}
