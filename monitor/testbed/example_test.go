package testbed_test

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// An origin that wants a token in the query: 401 without one, 101 with it.
func ExampleNewOrigin() {
	o, err := testbed.NewOrigin(testbed.OriginOptions{Behavior: testbed.Behavior{Token: "s3cret"}})
	if err != nil {
		panic(err)
	}
	defer o.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	_, resp, err := websocket.Dial(ctx, o.URL(), nil)
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"), err != nil)

	c, resp, err := websocket.Dial(ctx, o.URL()+"?token=s3cret", nil)
	if err != nil {
		panic(err)
	}
	defer c.CloseNow()
	fmt.Println(resp.StatusCode)

	// The demo flips the origin at runtime.
	o.Update(func(b *testbed.Behavior) { b.AllowedOrigins = []string{"https://app.example.com"} })
	_, resp, _ = websocket.Dial(ctx, o.URL()+"?token=s3cret", &websocket.DialOptions{
		HTTPHeader: map[string][]string{"Origin": {"https://evil.example"}},
	})
	fmt.Println(resp.StatusCode)
	// Output:
	// 401 Bearer realm="ws" true
	// 101
	// 403
}
