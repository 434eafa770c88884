package demo

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wscanary/wscanary/monitor/config"
)

//go:embed demo.yaml
var mainFile string

//go:embed demo-checks.yaml
var checksFile string

// Allowed is the Origin the demo's pages are served from.
const Allowed = "https://app.demo.test"

// World is the demo's edge, origin and token issuer.
type World struct {
	Origin *Origin
	Edge   *Edge
	dir    string
	key    []byte
}

// NewWorld starts the servers; dir holds the token file and the state.
func NewWorld(dir string) (*World, error) {
	w := &World{dir: dir, key: []byte("demo-signing-key")}
	var err error
	if w.Origin, err = NewOrigin(Allowed); err != nil {
		return nil, err
	}
	if w.Edge, err = NewEdge(w.Origin.Addr()); err != nil {
		w.Origin.Close()
		return nil, err
	}
	if err := w.issue(time.Hour); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// Close stops the servers.
func (w *World) Close() {
	w.Edge.Close()
	w.Origin.Close()
}

func (w *World) tokenFile() string { return filepath.Join(w.dir, "token") }

// issue writes a JWT for the check to read at its next run and makes the
// origin accept exactly that token; an expired one is written but the
// origin keeps wanting the last good one.
func (w *World) issue(exp time.Duration) error {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "wscanary-demo", IssuedAt: jwt.NewNumericDate(now.Add(-time.Hour)), ExpiresAt: jwt.NewNumericDate(now.Add(exp)),
	}).SignedString(w.key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(w.tokenFile(), []byte(tok), 0o600); err != nil {
		return err
	}
	if exp > 0 {
		w.Origin.SetToken(tok)
	}
	return nil
}

// Interval is how often the demo's check runs for a pace of the script:
// four runs a step, in whole seconds (config.MinInterval).
func Interval(pace time.Duration) time.Duration {
	return max(pace/4, config.MinInterval).Round(time.Second)
}

// Config is the embedded configuration, filled in with this world's
// addresses: the check runs every Interval(pace); the script's maintenance
// windows span from half a pace before their step, started at start, to
// half a pace after the next one; Slack is configured from getenv
// (SLACK_WEBHOOK_URL, or SLACK_BOT_TOKEN with SLACK_CHANNEL), else the
// console alone shows the messages.
func (w *World) Config(pace time.Duration, start time.Time, getenv func(string) string) (*config.Config, error) {
	interval := Interval(pace)
	vars := map[string]string{"Edge": w.Edge.Addr(), "Origin": w.Origin.Addr(), "TokenFile": w.tokenFile(), "Interval": interval.String()}
	render := func(name, text string) ([]byte, error) {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		err = t.Execute(&b, vars)
		return b.Bytes(), err
	}
	main, err := render("demo.yaml", mainFile)
	if err != nil {
		return nil, err
	}
	checks, err := render("demo-checks.yaml", checksFile)
	if err != nil {
		return nil, err
	}
	cfg, err := config.LoadBytes("demo.yaml", main, map[string][]byte{"demo-checks.yaml": checks},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
	if err != nil {
		return nil, fmt.Errorf("embedded config: %w", err)
	}
	cfg.StateDir = w.dir
	for i, s := range Script() {
		if s.Maintenance {
			cfg.Maintenance = append(cfg.Maintenance, config.Window{From: start.Add(time.Duration(2*i-1) * pace / 2),
				To: start.Add(time.Duration(2*i+3) * pace / 2), Reason: "planned WAF rollout", File: "demo", Line: i + 1})
		}
	}
	cfg.Slack = config.Slack{WebhookURL: getenv("SLACK_WEBHOOK_URL"), Token: getenv("SLACK_BOT_TOKEN"), Channel: getenv("SLACK_CHANNEL")}
	if cfg.Slack.WebhookURL != "" {
		cfg.Slack.Token = ""
	}
	return cfg, nil
}

// Step is one scripted change of the world.
type Step struct {
	// Name is what a person sees in the progress line.
	Name  string
	Apply func(*World) error
	// Maintenance: the step and the next one happen inside a maintenance
	// window (the demo configures it around them): nothing opens.
	Maintenance bool
}

// Script is the demo's story: each fault of the 403 checklist and its fix,
// one of them growing while it lasts (its message is updated in place and
// the thread says what changed), a rejection after the upgrade that no
// status code shows, and a planned change inside a maintenance window.
func Script() []Step {
	return []Step{
		do("healthy: every route upgrades", func(*World) error { return nil }),
		do("the CDN's WAF starts challenging WebSocket upgrades", func(w *World) error { w.Edge.SetMode(EdgeChallenge); return nil }),
		do("meanwhile the origin's Origin allowlist loses "+Allowed, func(w *World) error { w.Origin.Allow("https://www.demo.test"); return nil }),
		do("the WAF rule gets an exception for /ws", func(w *World) error { w.Edge.SetMode(EdgePass); return nil }),
		do("the allowlist is fixed", func(w *World) error { w.Origin.Allow(Allowed); return nil }),
		do("the issued token expires (the file still holds it)", func(w *World) error { return w.issue(-time.Minute) }),
		do("a fresh token is issued", func(w *World) error { return w.issue(time.Hour) }),
		do("a new edge config forgets the Upgrade/Connection headers", func(w *World) error { w.Edge.SetMode(EdgeStripUpgrade); return nil }),
		do("the edge config is rolled back", func(w *World) error { w.Edge.SetMode(EdgePass); return nil }),
		do("the auth service starts refusing the first message (close 4003 after the upgrade)", func(w *World) error {
			w.Origin.RejectFirstMessage(true)
			return nil
		}),
		do("the auth service is fixed", func(w *World) error { w.Origin.RejectFirstMessage(false); return nil }),
		{Name: "a planned WAF rollout challenges upgrades, inside its maintenance window: no incident opens",
			Apply: func(w *World) error { w.Edge.SetMode(EdgeChallenge); return nil }, Maintenance: true},
		do("the rollout is done before the window ends", func(w *World) error { w.Edge.SetMode(EdgePass); return nil }),
	}
}

// do is a step outside any maintenance window.
func do(name string, apply func(*World) error) Step { return Step{Name: name, Apply: apply} }
