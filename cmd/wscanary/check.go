package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"os"

	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/monitor/telemetry"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "[--config FILE]", stderr)
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		printConfigErrors(stderr, err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok, %d checks from %s, vantage %s\n", configPath(*cfgFlag), len(cfg.Checks), cfg.ChecksDir, cfg.Vantage)
	return exitOK
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
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
	var names multiFlag
	fs.Var(&names, "check", "run only this check (repeatable)")
	output := fs.String("output", "table", "table or json (json: one array of reports on stdout, nothing else)")
	parallel := fs.Int("parallel", 8, "checks run at the same time")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if !outputOK("check", *output, stderr) {
		return exitUsage
	}
	logger := newLogger(stderr, slog.LevelWarn)
	cfg, err := config.Load(configPath(*cfgFlag))
	if err != nil {
		printConfigErrors(stderr, err)
		return exitUsage
	}
	var checks []*config.Check
	for i := range cfg.Checks {
		c := &cfg.Checks[i]
		if len(names) == 0 || slices.Contains(names, c.Name) {
			checks = append(checks, c)
		}
	}
	for _, n := range names {
		if cfg.Check(n) == nil {
			fmt.Fprintf(stderr, "wscanary check: no check named %q in %s\n", n, cfg.ChecksDir)
			return exitUsage
		}
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

// loadBeside loads the configuration for a command that works beside a
// running daemon (history, silence); nil and the exit code when it cannot.
func loadBeside(cfgFlag string, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.LoadWith(configPath(cfgFlag), config.Options{Beside: true})
	if err != nil {
		printConfigErrors(stderr, err)
		return nil, exitUsage
	}
	return cfg, exitOK
}

// runAndPrint runs checks once with telemetry from OTEL_*, prints the
// reports and returns the exit code.
func runAndPrint(ctx context.Context, cfg *config.Config, checks []*config.Check, output string, parallel int,
	stdout, stderr io.Writer, logger *slog.Logger) int {
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: versionString(), Vantage: cfg.Vantage, Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "wscanary: telemetry: %v\n", err)
		return exitUsage
	}
	rn := runner.New(cfg, tel)
	reps := rn.RunAll(ctx, checks, parallel)
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := tel.Shutdown(flushCtx); err != nil {
		logger.Warn("telemetry flush failed", "err", err)
	}
	cancel()
	if output == "json" {
		if err := report.WriteJSON(stdout, reps); err != nil {
			fmt.Fprintf(stderr, "wscanary: %v\n", err)
			return exitUsage
		}
	} else {
		report.WriteTable(stdout, reps, report.TableOptions{Color: isTerminal(stdout)})
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
	origin := fs.String("origin", "", "Origin header to send (default none, like curl)")
	var headers, subprotocols multiFlag
	fs.Var(&headers, "header", "extra request header K:V (repeatable)")
	fs.Var(&subprotocols, "subprotocol", "subprotocol to offer (repeatable)")
	token := fs.String("token", "", "credential to send (default $WSCANARY_TOKEN); never printed")
	tokenIn := fs.String("token-in", "", "where the token goes: query (default), header, cookie or message")
	tokenName := fs.String("token-name", "", "query parameter, header or cookie name (default token / Authorization: Bearer)")
	direct := fs.String("direct", "", "origin HOST:PORT to dial for the direct route")
	proxy := fs.String("proxy", "", "egress proxy: http://host:port (CONNECT) or socks5://host:port")
	send := fs.String("send", "", "message to send after open ({token} is replaced)")
	expect := fs.String("expect", "", "regexp the first reply must match")
	caFile := fs.String("ca-file", "", "PEM file of CA certificates to trust")
	insecure := fs.Bool("insecure", false, "do not verify TLS certificates")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each attempt")
	output := fs.String("output", "table", "table or json")
	client := fs.String("client", "", "client profile of the handshake: chrome (default), firefox, wscanary")
	var transports multiFlag
	fs.Var(&transports, "transport", "http1 or http2 (repeatable; default both for wss://, http1 for ws://)")
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
	if *token == "" {
		*token = os.Getenv("WSCANARY_TOKEN")
	}
	cfg, err := config.AdHoc{
		URL: positional[0], Origin: *origin, Headers: headers, Subprotocols: subprotocols,
		Token: *token, TokenIn: *tokenIn, TokenName: *tokenName, Direct: *direct, Proxy: *proxy,
		Send: *send, Expect: *expect, CAFile: *caFile, Insecure: *insecure, Timeout: *timeout,
		Client: *client, Transports: transports,
	}.Build(config.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "wscanary probe: %v\n", err)
		return exitUsage
	}
	logger := newLogger(stderr, slog.LevelWarn)
	return runAndPrint(ctx, cfg, []*config.Check{&cfg.Checks[0]}, *output, 1, stdout, stderr, logger)
}
