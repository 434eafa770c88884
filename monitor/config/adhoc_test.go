package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/config"
)

// TestAdHocFollowsTheFileRules: the probe command's check is built by the
// same rules and defaults as a check file.
func TestAdHocFollowsTheFileRules(t *testing.T) {
	t.Parallel()
	cfg, err := config.AdHoc{URL: "wss://chat.example.com/ws?room=1", Origin: "https://app.example.com",
		Headers: []string{"X-Client: canary"}, Token: "tok", Direct: "203.0.113.10:443"}.Build(env(map[string]string{"WSCANARY_VANTAGE": "here"}))
	if err != nil {
		t.Fatal(err)
	}
	file, err := config.LoadBytes("m.yaml", []byte("vantage: here\n"), map[string][]byte{"c.yaml": []byte(`checks:
  - name: probe
    url: wss://chat.example.com/ws?room=1
    origin: https://app.example.com
    headers: {X-Client: canary}
    token: {value: tok}
    direct: {address: "203.0.113.10:443"}
    schedule: "@every 1m"
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	a, f := cfg.Checks[0], file.Checks[0]
	if cfg.Vantage != "here" || a.URL.String() != f.URL.String() || !reflect.DeepEqual(a.Token, f.Token) ||
		!reflect.DeepEqual(a.Direct, f.Direct) || !reflect.DeepEqual(a.Alert, f.Alert) || a.Timeout != f.Timeout ||
		!reflect.DeepEqual(a.Headers, f.Headers) || a.Origin != f.Origin || a.Origin == "" ||
		a.Client != f.Client || !reflect.DeepEqual(a.Transports, f.Transports) {
		t.Fatalf("ad hoc %+v\nfile   %+v", a, f)
	}
	tests := []struct {
		a    config.AdHoc
		want string
	}{
		{config.AdHoc{URL: "https://x/"}, `URL "https://x/" must be a ws:// or wss:// URL with a host`},
		{config.AdHoc{URL: "ws://x:0/"}, `URL "ws://x:0/": port must be 1-65535`},
		{config.AdHoc{URL: "ws://x/", Token: "t", TokenIn: "body"}, `--token-in "body" must be query, header, cookie or message`},
		{config.AdHoc{URL: "ws://x/", Token: "t", TokenIn: "message"}, `--token-in message needs --send with {token} in it`},
		{config.AdHoc{URL: "ws://x/", Direct: "x"}, `--direct "x" must be host:port`},
		{config.AdHoc{URL: "ws://x/", Proxy: "ftp://p:1"}, `--proxy "ftp://p:1" must be http://host:port (CONNECT) or socks5://host:port`},
		{config.AdHoc{URL: "ws://x/", Headers: []string{"nocolon"}}, `--header "nocolon" must be Name: value`},
		{config.AdHoc{URL: "ws://x/", Expect: "("}, `--expect: error parsing regexp`},
		{config.AdHoc{URL: "ws://x/", Timeout: 2 * config.MaxTimeout}, `--timeout 2m0s must be positive and at most 1m0s`},
		{config.AdHoc{URL: "ws://x/", Client: "curl"}, `--client "curl" is not a client profile (chrome, firefox, wscanary)`},
		{config.AdHoc{URL: "wss://x/", Transports: []string{"h3"}}, `--transport "h3" is not a transport (http1, http2)`},
		{config.AdHoc{URL: "ws://x/", Transports: []string{"http2"}}, `--transport http2 needs a wss:// URL`},
	}
	for _, tt := range tests {
		_, err := tt.a.Build(env(nil))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %s", tt.a, err, tt.want)
		}
	}
}
