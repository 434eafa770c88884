package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

const canarySlackToken = "xoxb-CANARY-e2e-77aa"

// buildBinary compiles wscanary once per test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "wscanary-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "wscanary")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// daemonProc is a running `wscanary run`.
type daemonProc struct {
	cmd    *exec.Cmd
	stderr *testbed.SyncBuffer
	stdout *testbed.SyncBuffer
	done   chan error
}

func startRun(t *testing.T, cfgPath string, env ...string) *daemonProc {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(cfgPath); err == nil && !bytes.Contains(b, []byte("state_dir:")) && !slices.ContainsFunc(env, func(e string) bool {
		return strings.HasPrefix(e, "STATE_DIRECTORY=")
	}) {
		t.Fatalf("%s sets no state_dir: the daemon would use the machine's /var/lib/wscanary", cfgPath)
	}
	p := &daemonProc{stderr: &testbed.SyncBuffer{}, stdout: &testbed.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "run", "--config", cfgPath)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr, p.cmd.Stdout = p.stderr, p.stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.done <- <-p.done // a stop registered earlier still sees the end
	})
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *daemonProc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("wscanary run did not exit on SIGTERM\n%s", p.stderr.String())
		return -1
	}
}

func (p *daemonProc) alive() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

func getStatus(t *testing.T, listen string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + listen + "/status")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func healthy(listen string) bool {
	resp, err := http.Get("http://" + listen + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// logLines returns the JSON log records with the given message.
func logLines(stderr, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestDaemonFlipEndToEnd is the acceptance test: a real nginx edge
// flipped from passing to a WAF 403 and back, with a restart and a bad
// reload in the middle of the incident.
func TestDaemonFlipEndToEnd(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{Token: canaryToken}, nil)
	n, ec := startEdge(t, origin.Addr(), testbed.EdgePass)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	debugAddr, _ := testbed.FreeAddr()
	_, debugPort, _ := net.SplitHostPort(debugAddr)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	main := fmt.Sprintf("vantage: e2e\nlisten: %s\ndebug_listen: \":"+debugPort+"\"\nstate_dir: %s\nslack:\n  token: ${SLACK_BOT_TOKEN}\n  channel: \"#ws-alerts\"\n  api_url: %s\n",
		listen, filepath.Join(dir, "state"), slack.APIURL())
	check := fmt.Sprintf("checks:\n  - name: chat\n    url: ws://%s/ws?room=1\n    direct: {address: \"%s\"}\n    schedule: \"@every 1s\"\n    timeout: 2s\n    token: {value: \"${CHAT_TOKEN}\"}\n",
		ec.Listen, origin.Addr())
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(main), 0o600)
	os.WriteFile(filepath.Join(dir, "checks.d", "chat.yaml"), []byte(check), 0o600)
	env := []string{"SLACK_BOT_TOKEN=" + canarySlackToken, "CHAT_TOKEN=" + canaryToken, "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_ENDPOINT="}
	cfgPath := filepath.Join(dir, "wscanary.yaml")

	p := startRun(t, cfgPath, env...)
	waitFor(t, "/healthz", 10*time.Second, func() bool { return healthy(listen) })
	// The profiler answers on debug_listen (loopback: its host was left
	// out), and only there.
	if code, body := get("127.0.0.1:"+debugPort, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("debug_listen /debug/pprof/: %d %.200s", code, body)
	}
	if code, _ := get(listen, "/debug/pprof/"); code == 200 {
		t.Fatal("the main listener serves /debug/pprof/")
	}
	waitFor(t, "a first healthy run", 10*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Contains(s, `"status": 101`)
	})

	// Incident: the edge starts refusing upgrades.
	setMode(t, n, ec, testbed.EdgeWAF403CloudflareLike)
	flipped := time.Now()
	waitFor(t, "the alert", 15*time.Second, func() bool { r, _ := slack.Posts(); return len(r) >= 1 })
	roots, _ := slack.Posts()
	alert := roots[0]
	if alert.Channel != "#ws-alerts" || !strings.Contains(alert.Text, "403 Forbidden on 1 of 2") || !strings.Contains(alert.Blocks, "✓ 101") ||
		!strings.Contains(alert.Blocks, "cdn_blocked") || !strings.Contains(alert.Blocks, "cloudflare") {
		t.Fatalf("alert: %+v", alert)
	}
	t.Logf("status change to Slack request: %v", alert.At.Sub(flipped).Round(time.Millisecond))
	for _, l := range logLines(p.stderr.String(), "notification delivered") {
		t.Logf("run completing the transition to Slack request: %v ms", l["latency_ms"])
	}

	// A restart during the incident posts nothing new.
	if code := p.stop(t); code != 0 {
		t.Fatalf("SIGTERM exit %d\n%s", code, p.stderr.String())
	}
	firstLogs := p.stderr.String()
	p = startRun(t, cfgPath, env...)
	waitFor(t, "/healthz after restart", 10*time.Second, func() bool { return healthy(listen) })
	time.Sleep(3 * time.Second) // three more runs at 403
	if r, rep := slack.Posts(); len(r) != 1 || len(rep) != 0 {
		t.Fatalf("after restart: %d alerts, %d replies (want 1, 0)", len(r), len(rep))
	}

	// A broken checks.d file on SIGHUP is rejected; the daemon keeps running.
	bad := filepath.Join(dir, "checks.d", "broken.yaml")
	os.WriteFile(bad, []byte("checks:\n  - name: broken\n    url: http://nope\n    schedule: \"@every 1s\"\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the rejected reload in the log", 5*time.Second, func() bool {
		return strings.Contains(p.stderr.String(), "broken.yaml:3: url:")
	})
	if !p.alive() || !healthy(listen) {
		t.Fatalf("daemon died on a bad reload\n%s", p.stderr.String())
	}
	os.Remove(bad)

	// Recovery: in the alert's thread, and the alert updated.
	setMode(t, n, ec, testbed.EdgePass)
	waitFor(t, "the recovery", 15*time.Second, func() bool { _, rep := slack.Posts(); return len(rep) >= 1 })
	time.Sleep(2 * time.Second) // nothing else must follow
	roots, replies := slack.Posts()
	if len(roots) != 1 || len(replies) != 1 {
		t.Fatalf("%d alerts and %d replies, want exactly 1 and 1", len(roots), len(replies))
	}
	if replies[0].ThreadTS != alert.Answered {
		t.Errorf("recovery thread_ts %q, want the alert's ts %q", replies[0].ThreadTS, alert.Answered)
	}
	var updated bool
	for _, c := range slack.Calls() {
		if c.Method == "chat.update" && c.TS == alert.Answered && strings.Contains(strings.ToLower(c.Blocks+c.Text), "resolved") {
			updated = true
		}
	}
	if !updated {
		t.Errorf("the alert message was not updated to resolved: %+v", slack.Calls())
	}

	// No secret anywhere: logs, /status, Slack posts.
	_, status := getStatus(t, listen)
	everything := firstLogs + p.stderr.String() + p.stdout.String() + status
	for _, c := range slack.Calls() {
		everything += c.Form
	}
	for _, secret := range []string{canaryToken, canarySlackToken} {
		if strings.Contains(everything, secret) {
			t.Fatalf("secret %q leaked into logs, /status or Slack", secret)
		}
	}
	if code := p.stop(t); code != 0 {
		t.Fatalf("SIGTERM exit %d", code)
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	testbed.WaitFor(t, what, timeout, cond)
}
