package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// checkName finds the one check a message is about; "" for a message about
// none or several (a summary).
var checkName = regexp.MustCompile(`\bc\d{4}\b`)

func checksIn(text string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range checkName.FindAllString(text, -1) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// perCheck groups root messages and their replies by the single check they
// name; summaries (no check, or several) are counted apart.
type slackView struct {
	roots     map[string][]testbed.SlackCall // check -> root posts
	replies   map[string][]testbed.SlackCall // check -> thread replies
	summaries int
}

func viewOf(s *testbed.FakeSlack) slackView {
	v := slackView{roots: map[string][]testbed.SlackCall{}, replies: map[string][]testbed.SlackCall{}}
	roots, replies := s.Posts()
	for _, r := range roots {
		cs := checksIn(r.Text)
		if len(cs) != 1 {
			v.summaries++
			continue
		}
		v.roots[cs[0]] = append(v.roots[cs[0]], r)
	}
	for _, r := range replies {
		if cs := checksIn(r.Text); len(cs) == 1 {
			v.replies[cs[0]] = append(v.replies[cs[0]], r)
		}
	}
	return v
}

func burstConfig(t *testing.T, n int, origin, slackAPI, listen string, every string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(fmt.Sprintf(
		"vantage: burst\nlisten: %s\nstate_dir: %s\ngroup: off\nslack:\n  token: ${SLACK_BOT_TOKEN}\n  channel: \"#c\"\n  api_url: %s\n",
		listen, filepath.Join(dir, "state"), slackAPI)), 0o600)
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: c%04d, url: \"ws://%s/ws?c=%04d\", schedule: \"@every %s\", timeout: 2s}\n", i, origin, i, every)
	}
	os.WriteFile(filepath.Join(dir, "checks.d", "burst.yaml"), []byte(b.String()), 0o600)
	return filepath.Join(dir, "wscanary.yaml")
}

// lossLines are what the daemon logs when it loses or cannot keep
// something: a burst, a Slack outage or a SIGKILL must never produce them.
var lossLines = []string{"the store cannot be written", "dropping an unreadable message", "notification dropped",
	"deciding without the store failed", "cannot start"}

var daemonEnv = []string{"SLACK_BOT_TOKEN=" + canarySlackToken, "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_ENDPOINT="}

// TestBurstLosesNothing (reliability items 1 and 2): 2,000 checks turn 403
// at once while Slack is down, and the daemon is killed with SIGKILL in the
// middle of the burst. After the restart every check gets exactly one
// alert, and after the fix exactly one recovery in that alert's thread;
// the state always loads.
func TestBurstLosesNothing(t *testing.T) {
	const n = 2000
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := burstConfig(t, n, origin.Addr(), slack.APIURL(), listen, "2s")

	var logs string
	var p *daemonProc
	t.Cleanup(func() {
		if t.Failed() {
			v := viewOf(slack)
			all := logs + p.stderr.String()
			t.Logf("%d checks alerted, %d recovered", len(v.roots), len(v.replies))
			for _, bad := range lossLines {
				t.Logf("%d log lines %q: %s", strings.Count(all, bad), bad, grepLines(all, bad, 3))
			}
		}
	})
	slack.Down(http.StatusInternalServerError)
	p = startRun(t, cfg, daemonEnv...)
	// Every wait below is bound by progress, not by a guess at the
	// machine's speed: it fails only when nothing moved for a minute.
	const stall = time.Minute
	statusCount := func(s string) func() int {
		return func() int {
			_, doc := getStatus(t, listen)
			return strings.Count(doc, `"status": `+s)
		}
	}
	testbed.WaitProgress(t, "every series healthy", n, stall, statusCount("101"))
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	testbed.WaitProgress(t, "the burst under way", n/2, stall, statusCount("403"))
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil
	logs = p.stderr.String()

	p = startRun(t, cfg, daemonEnv...)
	waitFor(t, "the restarted daemon", 30*time.Second, func() bool { return healthy(listen) })
	time.Sleep(3 * time.Second) // every check at 403 now, Slack still down
	slack.Up()
	testbed.WaitProgress(t, "an alert for every check", n, stall, func() int { return len(viewOf(slack).roots) })
	origin.Set(testbed.Behavior{})
	testbed.WaitProgress(t, "a recovery for every check", n, stall, func() int {
		recovered := 0
		for _, reps := range viewOf(slack).replies {
			if slices.ContainsFunc(reps, func(r testbed.SlackCall) bool { return strings.Contains(r.Text, "RECOVERED") }) {
				recovered++
			}
		}
		return recovered
	})
	time.Sleep(3 * time.Second) // nothing else may follow
	p.stop(t)
	logs += p.stderr.String()

	v := viewOf(slack)
	var dup, unthreaded []string
	for c, rs := range v.roots {
		if len(rs) != 1 {
			dup = append(dup, fmt.Sprintf("%s:%d", c, len(rs)))
			continue
		}
		// Exactly one recovery, in the check's own thread. Other replies
		// may come: a run that straddles the origin's switch back sees a
		// 403 and then a 101 variant, a cause change worth telling.
		recovered, elsewhere := 0, 0
		for _, r := range v.replies[c] {
			if r.ThreadTS != rs[0].Answered {
				elsewhere++
			} else if strings.Contains(r.Text, "RECOVERED") {
				recovered++
			}
		}
		if recovered != 1 || elsewhere > 0 {
			unthreaded = append(unthreaded, fmt.Sprintf("%s: %d recoveries in its thread, %d replies elsewhere", c, recovered, elsewhere))
		}
	}
	if len(v.roots) != n || len(dup) > 0 || len(unthreaded) > 0 {
		t.Fatalf("%d of %d checks alerted; duplicated %v; not exactly one recovery in their thread %v", len(v.roots), n, dup, unthreaded)
	}
	if v.summaries == 0 {
		t.Error("no summary of the burst was posted")
	}
	for _, bad := range lossLines {
		if strings.Contains(logs, bad) {
			t.Errorf("log says %q:\n%s", bad, grepLines(logs, bad, 5))
		}
	}
	t.Logf("%d checks: %d alerts, %d recoveries, %d summaries, %d Slack calls", n, len(v.roots), len(v.replies), v.summaries, len(slack.Calls()))
}

// TestRecoveryThreadAfterBacklog (reliability item 3): while Slack fails,
// a check goes 403, back to 101, then 401. Once Slack is back, the second
// incident's recovery replies in the second incident's thread and resolves
// that message, not the first one.
func TestRecoveryThreadAfterBacklog(t *testing.T) {
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := burstConfig(t, 1, origin.Addr(), slack.APIURL(), listen, "1s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack calls:\n%s", callList(slack))
		}
	})
	slack.Down(http.StatusTooManyRequests) // Retry-After: 1
	p := startRun(t, cfg, daemonEnv...)
	defer p.stop(t)
	status := func(want string) {
		waitFor(t, "status "+want, 15*time.Second, func() bool {
			_, s := getStatus(t, listen)
			return strings.Contains(s, `"status": `+want)
		})
		time.Sleep(1500 * time.Millisecond)
	}
	status("101")
	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	status("403")
	origin.Set(testbed.Behavior{})
	status("101")
	origin.Set(testbed.Behavior{Status: 401, Body: "unauthorized"})
	status("401")
	slack.Up()
	// A root's headline (its first line) names the status it is about.
	is401 := func(c testbed.SlackCall) bool {
		head, _, _ := strings.Cut(c.Text, "\n")
		return strings.Contains(head, "401") && !strings.Contains(head, "403")
	}
	waitFor(t, "the second incident posted", 20*time.Second, func() bool {
		roots, _ := slack.Posts()
		for _, r := range roots {
			if is401(r) {
				return true
			}
		}
		return false
	})
	fixed := time.Now()
	origin.Set(testbed.Behavior{})
	// The second incident resolves in its own message and thread: the
	// message is updated to RESOLVED and a recovery replies in its thread
	// (replies of one incident are spaced, so it may take a while).
	waitFor(t, "the second incident resolved in place and in its thread", 45*time.Second, func() bool {
		roots, replies := slack.Posts()
		var second testbed.SlackCall
		for _, r := range roots {
			if is401(r) {
				second = r
			}
		}
		if second.Answered == "" {
			return false
		}
		updated, replied := false, false
		for _, c := range slack.Calls() {
			if c.Method == "chat.update" && c.TS == second.Answered && strings.HasPrefix(c.Text, "RESOLVED") && c.At.After(fixed) {
				updated = true
			}
		}
		for _, r := range replies {
			if r.ThreadTS == second.Answered && r.At.After(fixed) && strings.Contains(r.Text, "RECOVERED") {
				replied = true
			}
		}
		return updated && replied
	})
	for _, r := range func() []testbed.SlackCall { _, rs := slack.Posts(); return rs }() {
		if _, ok := rootByTS(slack, r.ThreadTS); !ok {
			t.Errorf("a reply outside any thread: %+v", r)
		}
	}
}

func rootByTS(s *testbed.FakeSlack, ts string) (testbed.SlackCall, bool) {
	roots, _ := s.Posts()
	for _, r := range roots {
		if r.Answered == ts {
			return r, true
		}
	}
	return testbed.SlackCall{}, false
}

// TestStoreUnwritableIsVisible (reliability item 4): when the state
// directory fills up, the daemon keeps monitoring and alerting from
// memory, says so on /healthz, /status and /metrics, and recovers when
// space returns; the open alert survives a restart once it could be saved.
func TestStoreUnwritableIsVisible(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as a disk that fills up")
	}
	origin := startOrigin(t, testbed.Behavior{}, nil)
	slack := testbed.NewFakeSlack(canarySlackToken)
	t.Cleanup(slack.Close)
	listen, _ := testbed.FreeAddr()
	cfg := burstConfig(t, 1, origin.Addr(), slack.APIURL(), listen, "1s")
	state := smallDisk(t, cfg)
	p := startRun(t, cfg, daemonEnv...)
	defer func() { p.stop(t) }()
	waitFor(t, "a healthy run", 15*time.Second, func() bool {
		_, s := getStatus(t, listen)
		return strings.Contains(s, `"status": 101`)
	})
	// Fill the disk.
	filler := filepath.Join(state, "filler")
	f, _ := os.Create(filler)
	io.Copy(f, io.LimitReader(zeros{}, 8<<20))
	f.Close()

	origin.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
	waitFor(t, "the alert, from memory", 15*time.Second, func() bool { r, _ := slack.Posts(); return len(r) == 1 })
	waitFor(t, "/healthz to say degraded", 15*time.Second, func() bool {
		code, body := get(listen, "/healthz")
		return code == 200 && strings.Contains(body, "degraded")
	})
	if _, s := getStatus(t, listen); !strings.Contains(s, `"store_error"`) {
		t.Errorf("/status does not show the store error:\n%s", s)
	}
	if _, m := get(listen, "/metrics"); !regexp.MustCompile(`(?m)^wscanary_store_errors_total(\{[^}]*\})? [1-9]`).MatchString(m) {
		t.Errorf("/metrics does not count store errors")
	}
	os.Remove(filler)
	waitFor(t, "/healthz to say ok again", 20*time.Second, func() bool {
		code, body := get(listen, "/healthz")
		return code == 200 && !strings.Contains(body, "degraded")
	})
	p.stop(t)
	p = startRun(t, cfg, daemonEnv...)
	waitFor(t, "the restarted daemon", 15*time.Second, func() bool { return healthy(listen) })
	time.Sleep(3 * time.Second)
	if roots, _ := slack.Posts(); len(roots) != 1 {
		t.Fatalf("%d alerts after the restart, want still 1", len(roots))
	}
}

// smallDisk mounts a 4 MiB tmpfs as the state directory of the
// configuration at cfg (burstConfig's), a disk the test can fill.
func smallDisk(t *testing.T, cfg string) string {
	t.Helper()
	state := filepath.Join(filepath.Dir(cfg), "state")
	os.MkdirAll(state, 0o700)
	if out, err := run1("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", state); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { run1("umount", "-l", state) })
	return state
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func get(listen, path string) (int, string) {
	resp, err := http.Get("http://" + listen + path)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func run1(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func grepLines(s, sub string, max int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
			if len(out) == max {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func callList(s *testbed.FakeSlack) string {
	var b strings.Builder
	for _, c := range s.Calls() {
		fmt.Fprintf(&b, "%s ts=%s thread=%s answered=%s %.80q\n", c.Method, c.TS, c.ThreadTS, c.Answered, c.Text)
	}
	return b.String()
}
