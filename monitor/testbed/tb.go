package testbed

import (
	"errors"
	"os"
	"strings"
	"time"
)

// TB is the part of testing.TB the *T helpers use. *testing.T and
// *testing.B satisfy it; declaring it here keeps package testing (and its
// flags) out of binaries that import testbed, such as `wscanary demo`.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Skipf(format string, args ...any)
	Logf(format string, args ...any)
	TempDir() string
}

// RequireToolsEnv names the environment variable that turns a missing nginx
// or tinyproxy from a skip into a failure; scripts/test sets it to 1 when it
// has installed them.
const RequireToolsEnv = "WSCANARY_REQUIRE_TOOLS"

// MissingTool skips the test, or fails it when RequireToolsEnv is "1",
// because err (ErrNoNginx, ErrNoHeadersMore, ErrNoTinyproxy) says a tool is
// not installed.
func MissingTool(t TB, err error) {
	t.Helper()
	if os.Getenv(RequireToolsEnv) == "1" {
		t.Fatalf("%v; %s=1 requires it", err, RequireToolsEnv)
		return
	}
	t.Skipf("%v; skipping (install it, or set %s=1 to fail instead)", err, RequireToolsEnv)
}

func missing(err error) bool {
	return errors.Is(err, ErrNoNginx) || errors.Is(err, ErrNoHeadersMore) || errors.Is(err, ErrNoTinyproxy) || errors.Is(err, ErrNoPostgres) || errors.Is(err, ErrNoSquid)
}

// NewOriginT starts an Origin closed at the end of the test.
func NewOriginT(t TB, opts OriginOptions) *Origin {
	t.Helper()
	o, err := NewOrigin(opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = o.Close() })
	return o
}

// NewEdgeT starts a Go Edge closed at the end of the test.
func NewEdgeT(t TB, upstream string, mode EdgeMode) *Edge {
	t.Helper()
	e, err := NewEdge(upstream, mode)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// NewCAT makes a CA or fails the test.
func NewCAT(t TB) *CA {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return ca
}

// StartNginxT runs nginx with conf in a fresh temporary directory and stops
// it at the end of the test. Without nginx it calls MissingTool.
func StartNginxT(t TB, conf string) *Nginx {
	t.Helper()
	n, err := StartNginx(t.TempDir(), conf)
	if missing(err) {
		MissingTool(t, err)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// StartNginxEdgeT renders c (picking a free Listen address when empty) and
// runs it like StartNginxT, retrying with another port if the picked one was
// taken meanwhile. It returns nginx and c as started (Listen filled in).
func StartNginxEdgeT(t TB, c EdgeConfig) (*Nginx, EdgeConfig) {
	t.Helper()
	pick := c.Listen == ""
	for attempt := 0; ; attempt++ {
		if pick {
			addr, err := FreeAddr()
			if err != nil {
				t.Fatalf("%v", err)
			}
			c.Listen = addr
		}
		conf, err := c.Conf()
		if missing(err) {
			MissingTool(t, err)
		}
		if err != nil {
			t.Fatalf("%v", err)
		}
		n, err := StartNginx(t.TempDir(), conf)
		if missing(err) {
			MissingTool(t, err)
		}
		if err != nil && pick && attempt < 3 && strings.Contains(err.Error(), "bind() to "+c.Listen) {
			continue
		}
		if err != nil {
			t.Fatalf("%v", err)
		}
		t.Cleanup(func() { _ = n.Stop() })
		return n, c
	}
}

// ReloadT reloads n with conf or fails the test.
func ReloadT(t TB, n *Nginx, conf string) {
	t.Helper()
	if err := n.Reload(conf); err != nil {
		t.Fatalf("%v", err)
	}
}

// StartTinyproxyT runs tinyproxy in a temporary directory and stops it at
// the end of the test. Without tinyproxy it calls MissingTool.
func StartTinyproxyT(t TB, extra ...string) *Tinyproxy {
	t.Helper()
	tp, err := StartTinyproxy(t.TempDir(), extra...)
	if missing(err) {
		MissingTool(t, err)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(tp.Stop)
	return tp
}

// StartSquidT starts a Squid with the access rules given (SquidConf),
// stopped at the end of the test.
func StartSquidT(t TB, access string) *Squid {
	t.Helper()
	sq, err := StartSquid(t.TempDir(), access)
	if missing(err) {
		MissingTool(t, err)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(sq.Stop)
	return sq
}

// WaitFor polls cond every 50ms until it holds, failing the test with what
// was awaited when timeout passes first.
//
// timeout is what the wait takes on an idle machine; the ceiling is four
// times that and at least a minute, so a busy machine (CI runs on two
// cores, often beside another build) makes a test slower, not failed. A
// passing wait returns as soon as cond holds: the ceiling only catches a
// hang.
func WaitFor(t TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	timeout = max(4*timeout, time.Minute)
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// WaitProgress waits until count reaches want, for as long as it keeps
// moving: it fails only when count has not grown for stall. A busy machine
// makes work slower, not stuck, so a bound on progress catches a hang
// without guessing how fast the machine is.
func WaitProgress(t TB, what string, want int, stall time.Duration, count func() int) {
	t.Helper()
	last, lastAt := -1, time.Now()
	for {
		n := count()
		if n >= want {
			return
		}
		if n > last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > stall {
			t.Fatalf("waiting for %s: stuck at %d of %d for %s", what, n, want, stall)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StartOAuth2ProxyT starts oauth2-proxy in front of upstream with a fresh
// OIDC provider of the test's, both stopped at the end of the test.
func StartOAuth2ProxyT(t TB, o OAuth2ProxyOptions) (*OAuth2Proxy, *OIDC) {
	t.Helper()
	idp, err := NewOIDC()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(idp.Close)
	o.Issuer = idp.URL
	g, err := StartOAuth2Proxy(t.TempDir(), o)
	if err != nil {
		if _, lerr := lookGoBin("oauth2-proxy", OAuth2ProxyModule); lerr != nil {
			MissingTool(t, lerr)
		}
		t.Fatalf("%v", err)
	}
	t.Cleanup(g.Stop)
	return g, idp
}
