package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"os"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/service"
	"github.com/wscanary/wscanary/monitor/telemetry"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "[--config FILE]", stderr)
	cfgFlag := configFlag(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfig(*cfgFlag, stderr)
	if !ok {
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok, %d checks from %s, vantage %s\n", configPath(*cfgFlag), len(cfg.Checks), cfg.ChecksDir, cfg.Vantage)
	return exitOK
}

// loadConfig loads the configuration of --config, or prints every error
// on its own line.
func loadConfig(cfgFlag string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(configPath(cfgFlag))
	if err != nil {
		printConfigErrors(stderr, err)
	}
	return cfg, err == nil
}

// printConfigErrors prints every configuration error on its own line.
func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e.Error())
		}
		fmt.Fprintf(w, "%d configuration error(s)\n", len(errs))
		return
	}
	fmt.Fprintln(w, err)
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "[--config FILE] [--check NAME]... [--output table|json]", stderr)
	cfgFlag := configFlag(fs)
	var names config.StringList
	fs.Var(&names, "check", "run only this check (repeatable)")
	output := fs.String("output", "table", "table or json (json: one array of reports on stdout, nothing else)")
	parallel := fs.Int("parallel", 8, "checks run at the same time")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if !outputOK("check", *output, stderr) {
		return exitUsage
	}
	logger := telemetry.NewLogger(stderr, slog.LevelWarn)
	cfg, ok := loadConfig(*cfgFlag, stderr)
	if !ok {
		return exitUsage
	}
	checks, err := cfg.Select(names)
	if err != nil {
		fmt.Fprintf(stderr, "wscanary check: %v\n", err)
		return exitUsage
	}
	return runAndPrint(ctx, cfg, checks, *output, *parallel, stdout, stderr, logger)
}

// outputOK says whether --output names one of the two forms every command
// prints, and says on stderr when it does not.
func outputOK(cmd, output string, stderr io.Writer) bool {
	if output == "table" || output == "json" {
		return true
	}
	fmt.Fprintf(stderr, "wscanary %s: --output must be table or json, not %q\n", cmd, output)
	return false
}

// runAndPrint runs checks once with telemetry from OTEL_*, prints the
// reports and returns the exit code.
func runAndPrint(ctx context.Context, cfg *config.Config, checks []*config.Check, output string, parallel int,
	stdout, stderr io.Writer, logger *slog.Logger) int {
	reps, err := service.RunOnce(ctx, cfg, checks, parallel, versionString(), logger)
	if err != nil {
		fmt.Fprintf(stderr, "wscanary: %v\n", err)
		return exitUsage
	}
	if output == "json" {
		if err := report.WriteJSON(stdout, reps); err != nil {
			fmt.Fprintf(stderr, "wscanary: %v\n", err)
			return exitUsage
		}
	} else {
		report.WriteTable(stdout, reps, report.TableOptions{Color: report.IsTerminal(stdout)})
	}
	for _, r := range reps {
		if !r.OK {
			return exitFailed
		}
	}
	return exitOK
}

const probeSynopsis = `URL [--origin O] [--header K:V]... [--token T --token-in query|header|cookie|message]
       [--direct HOST:PORT] [--proxy URL] [--subprotocol P] [--output table|json]

Probe one WebSocket URL now: through the CDN (normal DNS) and, with --direct,
straight to the origin with the same Host and SNI. A failure is retried with
diagnostic variants (no Origin, same-site Origin, no token) and diagnosed.`

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("probe", probeSynopsis, stderr)
	var adhoc config.AdHoc
	adhoc.Flags(fs)
	output := fs.String("output", "table", "table or json")
	// Accept flags before and after the URL.
	var positional []string
	rest := args
	for {
		if ok, code := parseFlags(fs, rest); !ok {
			return code
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(positional) != 1 {
		fmt.Fprintln(stderr, "wscanary probe: need exactly one URL")
		fs.Usage()
		return exitUsage
	}
	if !outputOK("probe", *output, stderr) {
		return exitUsage
	}
	adhoc.URL = positional[0]
	if adhoc.Token == "" {
		adhoc.Token = os.Getenv("WSCANARY_TOKEN")
	}
	cfg, err := adhoc.Build(config.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "wscanary probe: %v\n", err)
		return exitUsage
	}
	logger := telemetry.NewLogger(stderr, slog.LevelWarn)
	return runAndPrint(ctx, cfg, []*config.Check{&cfg.Checks[0]}, *output, 1, stdout, stderr, logger)
}
