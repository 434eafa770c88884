package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/wscanary/wscanary/monitor/delivery"
	"github.com/wscanary/wscanary/monitor/demo"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/service"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
)

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
	color := report.IsTerminal(stdout)
	logger := telemetry.NewLogger(stderr, slog.LevelWarn)
	fail := func(err error) int { fmt.Fprintln(stderr, "wscanary demo:", err); return exitFailed }
	tmp, err := os.MkdirTemp("", "wscanary-demo-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	w, err := demo.NewWorld(tmp)
	if err != nil {
		return fail(err)
	}
	defer w.Close()
	cfg, err := w.Config(*pace, time.Now(), os.Getenv)
	if err != nil {
		return fail(err)
	}

	out := &demo.LockedWriter{W: stdout, ClearLine: color}
	tee := &demo.Tee{Console: notifier.NewConsole(out, notifier.ConsoleOptions{Color: color}), Tally: &demo.Tally{}, Log: logger}
	if cfg.Slack.Enabled() {
		if tee.Slack, _, err = delivery.Build(cfg, logger, io.Discard, false); err != nil {
			fmt.Fprintln(stderr, "wscanary demo:", err)
			return exitUsage
		}
		fmt.Fprintln(out, "Slack is configured: the alerts below are posted there too.")
	}
	fmt.Fprintf(out, "wscanary demo: a CDN-like edge on %s in front of a WebSocket origin on %s.\n", w.Edge.Addr(), w.Origin.Addr())
	fmt.Fprintf(out, "The daemon runs check %q every %s through the edge (route cdn) and around it (route direct).\n", "chat", demo.Interval(*pace))
	fmt.Fprintf(out, "Every %s the script breaks or mends something; alerts print as they would read in Slack.\n\n", *pace)

	svc, err := service.Start(ctx, service.Options{Config: cfg, Logger: logger, Notifier: tee, Version: versionString()})
	if err != nil {
		return fail(err)
	}
	defer svc.Stop()
	script := demo.Script()
	progress := demo.NewProgress(out, color)
	for i, s := range script {
		if err := s.Apply(w); err != nil {
			return fail(err)
		}
		progress.Event(fmt.Sprintf("[%d/%d] %s", i+1, len(script), s.Name))
		if !progress.Wait(ctx, *pace, "watching") {
			break
		}
	}
	progress.Done()
	// Let the last messages out (a recovery may wait for the spacing of
	// its incident's replies) before the summary.
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		if svc.Daemon().Status(ctx).Pending == 0 {
			break
		}
	}
	svc.Stop()
	fmt.Fprint(out, tee.Tally.Summary())
	if tee.Tally.Incidents() == 0 {
		return exitFailed
	}
	return exitOK
}
