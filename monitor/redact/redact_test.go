package redact_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wscanary/wscanary/monitor/redact"
)

func TestURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		extra    []string
	}{
		{in: "wss://chat.example.com/ws?room=1&token=abc", want: "wss://chat.example.com/ws?room=1&token=REDACTED"},
		{in: "wss://h/ws?Access_Token=abc&x=1", want: "wss://h/ws?Access_Token=REDACTED&x=1"},
		{in: "wss://h/ws?ticket=abc", want: "wss://h/ws?ticket=REDACTED", extra: []string{"ticket"}},
		{in: "wss://h/ws?ticket=abc", want: "wss://h/ws?ticket=abc"},
		{in: "wss://user:pw@h/ws", want: "wss://user:REDACTED@h/ws"},
		{in: "wss://h/ws?sig=a%2Fb&jwt=x.y.z&key=k", want: "wss://h/ws?sig=REDACTED&jwt=REDACTED&key=REDACTED"},
		{in: "wss://h/ws?%74oken=abc", want: "wss://h/ws?%74oken=REDACTED"},
		{in: "wss://h/ws", want: "wss://h/ws"},
		{in: "://bad?token=abc", want: "://bad?REDACTED"},
	}
	for _, tt := range tests {
		if got := redact.URL(tt.in, tt.extra...); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	h.Set("Server", "cloudflare")
	h.Add("Set-Cookie", "__cf_bm=abcdef; path=/")
	h.Add("Set-Cookie", "session=xyz")
	h.Set("Authorization", "Bearer abc")
	h.Set("X-Ticket", "abc")
	h.Set("Www-Authenticate", `Bearer error="invalid_token", error_description="The token expired"`)
	h.Set("X-Auth-Hint", "abc")
	got := redact.Headers(h, "X-Ticket")
	want := map[string]string{"Server": "cloudflare", "Set-Cookie": "__cf_bm=REDACTED, session=REDACTED",
		"Authorization": "REDACTED", "X-Ticket": "REDACTED", "X-Auth-Hint": "REDACTED",
		// A challenge is the server's reason, not a credential.
		"Www-Authenticate": `Bearer error="invalid_token", error_description="The token expired"`}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	if got := redact.Secrets("body echoes s3cr3t-token twice: s3cr3t-token", "s3cr3t-token"); strings.Contains(got, "s3cr3t") {
		t.Fatal(got)
	}
	// Very short values are not treated as secrets: replacing "a" would wreck text.
	if got := redact.Secrets("a cat", "a"); got != "a cat" {
		t.Fatal(got)
	}
}

func BenchmarkURL(b *testing.B) {
	for b.Loop() {
		redact.URL("wss://chat.example.com/ws?room=1&token=abcdefghijklmnop&x=2")
	}
}

// FuzzURL: whatever the input, a credential value placed under a known
// name never survives redaction.
func FuzzURL(f *testing.F) {
	f.Add("wss://h/ws?room=1", "abcdef")
	f.Add("wss://h/ws?a=b&c", "x%20y")
	f.Add("ws://[::1]:80/p?q#frag", "zzzzzz")
	f.Fuzz(func(t *testing.T, base, secret string) {
		if len(secret) < 6 || strings.ContainsAny(secret, "&#=?%+ ") {
			return
		}
		raw := base
		if strings.Contains(raw, "?") {
			raw += "&token=" + secret
		} else {
			raw += "?token=" + secret
		}
		if strings.Contains(base, "#") {
			return // the credential would land in the fragment, not the query
		}
		got := redact.URL(raw)
		if strings.Contains(got, "token="+secret) {
			t.Fatalf("URL(%q) = %q leaks the token", raw, got)
		}
	})
}

func TestText(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"error: token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl expired", "error: token REDACTED expired"},
		{"got 401 for Authorization: Bearer s3cr3t-value-1", "got 401 for Authorization: Bearer REDACTED"},
		{`{"client_secret":"hunter2-xyz","user":"bob"}`, `{"client_secret":"REDACTED","user":"bob"}`},
		{"api_key=AKIA1234567 region=eu", "api_key=REDACTED region=eu"},
		{"signature 0123456789abcdef0123456789abcdef01 bad", "signature REDACTED bad"},
		{"cannot open /etc/wscanary/very/long/path/that/is/not/a/secret", "cannot open /etc/wscanary/very/long/path/that/is/not/a/secret"},
		{"vault: permission denied (403)", "vault: permission denied (403)"},
	}
	for _, tt := range tests {
		if got := redact.Text(tt.in); got != tt.want {
			t.Errorf("Text(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestCredentialNames(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"token", "apitoken", "access_key", "X-Api-Key", "client_secret", "Password", "x-amz-signature", "sessionid", "auth"} {
		if !redact.IsCredentialName(n) {
			t.Errorf("%q is not seen as a credential", n)
		}
	}
	for _, n := range []string{"room", "keyword", "monkey", "channel", "user", "x-client"} {
		if redact.IsCredentialName(n) {
			t.Errorf("%q is seen as a credential", n)
		}
	}
}
