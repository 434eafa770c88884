package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

//go:embed demo.yaml
var demoMain string

//go:embed demo-checks.yaml
var demoChecks string

// demoAllowed is the Origin the demo's pages are served from.
const demoAllowed = "https://app.demo.test"

// step is one scripted change of the demo's servers.
type step struct {
	name  string // what a person sees in the progress line
	apply func(*demoWorld) error
}

// demoWorld is the demo's own CDN edge, origin and token issuer.
type demoWorld struct {
	origin    *testbed.Origin
	edge      *testbed.Edge
	tokenFile string
	key       []byte
}

// issue writes a JWT for the check to read at its next run and makes the
// origin accept exactly that token.
func (w *demoWorld) issue(exp time.Duration) error {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "wscanary-demo", IssuedAt: jwt.NewNumericDate(now.Add(-time.Hour)), ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
	}).SignedString(w.key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(w.tokenFile, []byte(tok), 0o600); err != nil {
		return err
	}
	if exp > 0 {
		w.origin.Update(func(b *testbed.Behavior) { b.Token = tok })
	}
	return nil
}

func demoScript() []step {
	return []step{
		{"healthy: every route upgrades", func(w *demoWorld) error { return nil }},
		{"the CDN's WAF starts challenging WebSocket upgrades", func(w *demoWorld) error {
			return w.edge.SetMode(testbed.EdgeWAF403CloudflareLike)
		}},
		{"the WAF rule gets an exception for /ws", func(w *demoWorld) error { return w.edge.SetMode(testbed.EdgePass) }},
		{"the issued token expires (the file still holds it)", func(w *demoWorld) error {
			// The origin keeps requiring the last good token; the file now
			// holds one that expired a minute ago.
			return w.issue(-time.Minute)
		}},
		{"a fresh token is issued", func(w *demoWorld) error { return w.issue(time.Hour) }},
		{"the origin's Origin allowlist loses " + demoAllowed, func(w *demoWorld) error {
			w.origin.Update(func(b *testbed.Behavior) { b.AllowedOrigins = []string{"https://www.demo.test"} })
			return nil
		}},
		{"the allowlist is fixed", func(w *demoWorld) error {
			w.origin.Update(func(b *testbed.Behavior) { b.AllowedOrigins = []string{demoAllowed} })
			return nil
		}},
		{"a new edge config forgets the Upgrade/Connection headers", func(w *demoWorld) error {
			return w.edge.SetMode(testbed.EdgeStripUpgrade)
		}},
		{"the edge config is rolled back", func(w *demoWorld) error { return w.edge.SetMode(testbed.EdgePass) }},
	}
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("demo", "[--pace DURATION]\n\nA self-contained showcase: a CDN-like edge and a WebSocket origin on 127.0.0.1 change\nbehaviour on a script while the real daemon watches them and prints the alerts it would\npost to Slack (and posts them, if SLACK_WEBHOOK_URL or SLACK_BOT_TOKEN with SLACK_CHANNEL is set).", stderr)
	pace := fs.Duration("pace", 7*time.Second, "time between scripted changes")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *pace < 500*time.Millisecond {
		fmt.Fprintln(stderr, "wscanary demo: --pace must be at least 500ms")
		return exitUsage
	}
	color := isTerminal(stdout)
	logger := newLogger(stderr, slog.LevelWarn)
	tmp, err := os.MkdirTemp("", "wscanary-demo-")
	if err != nil {
		fmt.Fprintln(stderr, "wscanary demo:", err)
		return exitFailed
	}
	defer os.RemoveAll(tmp)

	w := &demoWorld{tokenFile: filepath.Join(tmp, "token"), key: []byte("demo-signing-key")}
	w.origin, err = testbed.NewOrigin(testbed.OriginOptions{Behavior: testbed.Behavior{
		AllowedOrigins: []string{demoAllowed}, Token: "set-below", TokenIn: testbed.TokenInQuery}})
	if err != nil {
		fmt.Fprintln(stderr, "wscanary demo:", err)
		return exitFailed
	}
	defer w.origin.Close()
	w.edge, err = testbed.NewEdge(w.origin.Addr(), testbed.EdgePass)
	if err != nil {
		fmt.Fprintln(stderr, "wscanary demo:", err)
		return exitFailed
	}
	defer w.edge.Close()
	if err := w.issue(time.Hour); err != nil {
		fmt.Fprintln(stderr, "wscanary demo:", err)
		return exitFailed
	}

	interval := max(*pace/4, 500*time.Millisecond).Round(100 * time.Millisecond)
	cfg, err := demoConfig(map[string]string{"Edge": w.edge.Addr(), "Origin": w.origin.Addr(),
		"TokenFile": w.tokenFile, "Interval": interval.String()}, tmp)
	if err != nil {
		fmt.Fprintln(stderr, "wscanary demo: embedded config:", err)
		return exitFailed
	}
	// The demo's own Slack settings come from the environment.
	cfg.Slack = config.Slack{WebhookURL: os.Getenv("SLACK_WEBHOOK_URL"), Token: os.Getenv("SLACK_BOT_TOKEN"),
		Channel: os.Getenv("SLACK_CHANNEL")}
	if cfg.Slack.WebhookURL != "" {
		cfg.Slack.Token = ""
	}

	out := &lockedWriter{w: stdout, clearLine: color}
	tally := &demoTally{}
	console := notifier.NewConsole(out, notifier.ConsoleOptions{Color: color})
	var mirror notifier.Notifier
	if cfg.Slack.Enabled() {
		s, err := buildNotifier(cfg, logger, io.Discard)
		if err != nil {
			fmt.Fprintln(stderr, "wscanary demo:", err)
			return exitUsage
		}
		mirror = s
		fmt.Fprintln(out, "Slack is configured: the alerts below are posted there too.")
	}
	tee := &demoNotifier{console: console, slack: mirror, tally: tally, log: logger}

	fmt.Fprintf(out, "wscanary demo: a CDN-like edge on %s in front of a WebSocket origin on %s.\n", w.edge.Addr(), w.origin.Addr())
	fmt.Fprintf(out, "The daemon runs check %q every %s through the edge (route cdn) and around it (route direct).\n", "chat", interval)
	fmt.Fprintf(out, "Every %s the script breaks or mends something; alerts print as they would read in Slack.\n\n", *pace)

	_, cleanup, err := startDaemonWith(ctx, cfg, logger, tee)
	if err != nil {
		fmt.Fprintln(stderr, "wscanary demo:", err)
		return exitFailed
	}
	stop := sync.OnceFunc(cleanup)
	defer stop()

	script := demoScript()
	progress := newProgress(out, color)
	for i, s := range script {
		if err := s.apply(w); err != nil {
			fmt.Fprintln(stderr, "wscanary demo:", err)
			return exitFailed
		}
		progress.event(fmt.Sprintf("[%d/%d] %s", i+1, len(script), s.name))
		if !progress.wait(ctx, *pace, "watching") {
			break
		}
	}
	progress.done()
	// Let the last runs and deliveries land before the summary.
	stop()
	fmt.Fprint(out, tally.summary())
	if tally.alerts == 0 {
		return exitFailed
	}
	return exitOK
}

// demoConfig renders the embedded configuration with the demo's addresses.
func demoConfig(vars map[string]string, stateDir string) (*config.Config, error) {
	render := func(name, text string) ([]byte, error) {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		err = t.Execute(&b, vars)
		return b.Bytes(), err
	}
	main, err := render("demo.yaml", demoMain)
	if err != nil {
		return nil, err
	}
	checks, err := render("demo-checks.yaml", demoChecks)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadBytes("demo.yaml", main, map[string][]byte{"demo-checks.yaml": checks},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		return nil, err
	}
	cfg.StateDir = stateDir
	return cfg, nil
}

// demoNotifier prints every event once on the console, mirrors it to Slack
// when configured, and counts it for the summary.
type demoNotifier struct {
	console *notifier.Console
	slack   notifier.Notifier
	tally   *demoTally
	log     *slog.Logger
}

func (n *demoNotifier) Notify(ctx context.Context, ev notifier.Event) (notifier.Delivery, error) {
	d, err := n.console.Notify(ctx, ev)
	if err != nil {
		return d, err
	}
	n.tally.add(ev)
	if n.slack != nil {
		if _, err := n.slack.Notify(ctx, ev); err != nil {
			n.log.Warn("slack mirror failed", "err", err)
		}
	}
	return d, nil
}

type demoTally struct {
	mu         sync.Mutex
	alerts     int
	recoveries int
	causes     map[string]int
}

func (t *demoTally) add(ev notifier.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.causes == nil {
		t.causes = map[string]int{}
	}
	switch ev.Kind {
	case notifier.KindAlert, notifier.KindChange:
		t.alerts++
		t.causes[string(ev.Diagnosis.Cause)]++
	case notifier.KindRecovery:
		t.recoveries++
	}
}

func (t *demoTally) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "\nSummary: %d alerts and %d recoveries.\n", t.alerts, t.recoveries)
	causes := make([]string, 0, len(t.causes))
	for c := range t.causes {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		fmt.Fprintf(&b, "  %-26s %d alert(s)\n", c, t.causes[c])
	}
	b.WriteString("\nNext: write a check for your own endpoint (see checks.d/example-chat.yaml), then\n  wscanary validate --config wscanary.yaml && wscanary check --config wscanary.yaml\n")
	return b.String()
}

// lockedWriter serialises writes from the notifier and the progress line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
	// clearLine erases the live progress line before other output.
	clearLine bool
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clearLine {
		io.WriteString(l.w, "\r\x1b[2K")
	}
	return l.w.Write(p)
}

// progress draws a live status line on a terminal and plain lines
// otherwise.
type progress struct {
	w     *lockedWriter
	live  bool
	start time.Time
}

func newProgress(w *lockedWriter, live bool) *progress {
	return &progress{w: w, live: live, start: time.Now()}
}

func (p *progress) event(s string) {
	p.clear()
	stamp := time.Since(p.start).Truncate(time.Second)
	if p.live {
		fmt.Fprintf(p.w, "\x1b[1;36m%6s  ▶ %s\x1b[0m\n\n", stamp, s)
	} else {
		fmt.Fprintf(p.w, "%6s  > %s\n\n", stamp, s)
	}
}

// wait sleeps d, redrawing the live line; false when ctx ended.
func (p *progress) wait(ctx context.Context, d time.Duration, what string) bool {
	end := time.Now().Add(d)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	spin := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	for i := 0; ; i++ {
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		if p.live {
			p.w.mu.Lock()
			fmt.Fprintf(p.w.w, "\r\x1b[2K\x1b[2m%s %s… next change in %ds\x1b[0m", spin[i%len(spin)], what, int(left.Seconds()+0.99))
			p.w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (p *progress) clear() {
	if p.live {
		p.w.mu.Lock()
		fmt.Fprint(p.w.w, "\r\x1b[2K")
		p.w.mu.Unlock()
	}
}

func (p *progress) done() { p.clear() }
