// Command wscanary watches WebSocket opening handshakes through the CDN and
// around it, says why they fail, and alerts when they start to.
//
// This package only parses flags and wires the packages under monitor/ and
// notifier/ together; behaviour lives there.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // cron time zones work in a minimal image

	"github.com/wscanary/wscanary/monitor/config"
)

// version is set by the build: -ldflags "-X main.version=v1.2.3".
var version = ""

// Exit codes are a contract (README, "Command line").
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const usage = `wscanary watches WebSocket handshakes and explains their 401s and 403s.

Usage:
  wscanary run      [--config FILE]           run the daemon (schedules, alerts, /metrics)
  wscanary check    [--config FILE] [--check NAME]... [--output table|json]
                                              run the configured checks once and print reports
  wscanary probe    URL [flags]               probe one URL ad hoc: both routes, variants, diagnosis
  wscanary validate [--config FILE]           check the configuration and print every error
  wscanary history  [--config FILE] [--check NAME] [--since 24h] [--output table|json]
                                              uptime, handshake times and incidents from the store
  wscanary silence  add|list|remove [flags]   silence a check for a while (every member of a fleet honours it)
  wscanary demo                               a self-contained showcase, no setup needed
  wscanary version                            print the version
  wscanary health   [--url URL]               exit 0 when a daemon's /healthz answers 200 (container HEALTHCHECK)

Exit codes: 0 all attempts as expected, 1 a check failed, 2 usage or config error.
Run 'wscanary COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line; it is main without the process, so tests
// call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "check":
		return cmdCheck(ctx, rest, stdout, stderr)
	case "probe":
		return cmdProbe(ctx, rest, stdout, stderr)
	case "validate":
		return cmdValidate(rest, stdout, stderr)
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "history":
		return cmdHistory(ctx, rest, stdout, stderr)
	case "silence":
		return cmdSilence(ctx, rest, stdout, stderr)
	case "demo":
		return cmdDemo(ctx, rest, stdout, stderr)
	case "health":
		return cmdHealth(rest, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "wscanary", versionString())
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "wscanary: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// newFlags makes a FlagSet whose --help prints the command's synopsis.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: wscanary %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and maps errors to exit codes: --help is success.
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, exitOK
		}
		return false, exitUsage
	}
	return true, 0
}

// configFlag is the --config flag every command that reads the
// configuration takes.
func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
}

// configPath picks --config, then $WSCANARY_CONFIG, then the default.
func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv("WSCANARY_CONFIG"); p != "" {
		return p
	}
	return config.DefaultPath
}
