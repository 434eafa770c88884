package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor"
	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/telemetry"
)

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", "[--config FILE]", stderr)
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+defaultConfig+")")
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
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+defaultConfig+")")
	var names multiFlag
	fs.Var(&names, "check", "run only this check (repeatable)")
	output := fs.String("output", "table", "table or json (json: one array of reports on stdout, nothing else)")
	parallel := fs.Int("parallel", 8, "checks run at the same time")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "wscanary check: --output must be table or json, not %q\n", *output)
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
		if len(names) == 0 || contains(names, c.Name) {
			checks = append(checks, c)
		}
	}
	for _, n := range names {
		if !hasCheck(cfg.Checks, n) {
			fmt.Fprintf(stderr, "wscanary check: no check named %q in %s\n", n, cfg.ChecksDir)
			return exitUsage
		}
	}
	return runAndPrint(ctx, cfg, checks, *output, *parallel, stdout, stderr, logger)
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
	runner := monitor.NewRunner(cfg, tel, logger)
	reps := runner.RunAll(ctx, checks, parallel)
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func hasCheck(checks []config.Check, name string) bool {
	for _, c := range checks {
		if c.Name == name {
			return true
		}
	}
	return false
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
	tokenIn := fs.String("token-in", "query", "where the token goes: query, header, cookie or message")
	tokenName := fs.String("token-name", "", "query parameter, header or cookie name (default token / Authorization: Bearer)")
	direct := fs.String("direct", "", "origin HOST:PORT to dial for the direct route")
	proxy := fs.String("proxy", "", "egress proxy: http://host:port (CONNECT) or socks5://host:port")
	send := fs.String("send", "", "message to send after open ({token} is replaced)")
	expect := fs.String("expect", "", "regexp the first reply must match")
	caFile := fs.String("ca-file", "", "PEM file of CA certificates to trust")
	insecure := fs.Bool("insecure", false, "do not verify TLS certificates")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each attempt")
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
	if *output != "table" && *output != "json" {
		fmt.Fprintf(stderr, "wscanary probe: --output must be table or json, not %q\n", *output)
		return exitUsage
	}
	if *token == "" {
		*token = os.Getenv("WSCANARY_TOKEN")
	}
	check, vantages, err := adHocCheck(adHoc{
		url: positional[0], origin: *origin, headers: headers, subprotocols: subprotocols,
		token: *token, tokenIn: *tokenIn, tokenName: *tokenName, direct: *direct, proxy: *proxy,
		send: *send, expect: *expect, caFile: *caFile, insecure: *insecure, timeout: *timeout,
	})
	if err != nil {
		fmt.Fprintf(stderr, "wscanary probe: %v\n", err)
		return exitUsage
	}
	self := selfVantage()
	if len(vantages) > 0 {
		check.Vantages = []string{"proxy"}
	}
	cfg := &config.Config{Vantage: self, Vantages: vantages, Checks: []config.Check{*check}}
	logger := newLogger(stderr, slog.LevelWarn)
	return runAndPrint(ctx, cfg, []*config.Check{&cfg.Checks[0]}, *output, 1, stdout, stderr, logger)
}

type adHoc struct {
	url, origin, token, tokenIn, tokenName, direct, proxy, send, expect, caFile string
	headers, subprotocols                                                       []string
	insecure                                                                    bool
	timeout                                                                     time.Duration
}

// adHocCheck turns probe flags into the same Check a file would give, so
// `probe` and `check` share one code path.
func adHocCheck(a adHoc) (*config.Check, map[string]config.Vantage, error) {
	u, err := url.Parse(a.url)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, nil, fmt.Errorf("URL %q must be ws:// or wss:// with a host", a.url)
	}
	c := &config.Check{Name: "probe", URL: u, Timeout: a.timeout, Origin: a.origin,
		Subprotocols: a.subprotocols, Send: a.send, Alert: config.Alert{On: []int{401, 403}, After: 1, MinVantages: 1}}
	if len(a.headers) > 0 {
		c.Headers = map[string]string{}
		for _, h := range a.headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, nil, fmt.Errorf("--header %q must be Name: value", h)
			}
			c.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if a.token != "" {
		in := config.TokenIn(a.tokenIn)
		switch in {
		case config.TokenInQuery, config.TokenInHeader, config.TokenInCookie, config.TokenInMessage:
		default:
			return nil, nil, fmt.Errorf("--token-in must be query, header, cookie or message, not %q", a.tokenIn)
		}
		if in == config.TokenInMessage && !strings.Contains(a.send, "{token}") {
			return nil, nil, errors.New("--token-in message needs --send with {token} in it")
		}
		c.Token = &config.Token{Value: a.token, In: in, Name: a.tokenName}
	}
	if a.expect != "" {
		re, err := regexp.Compile(a.expect)
		if err != nil {
			return nil, nil, fmt.Errorf("--expect: %w", err)
		}
		c.Expect = re
	}
	if a.caFile != "" || a.insecure {
		t, err := config.LoadTLS(a.caFile, "", a.insecure)
		if err != nil {
			return nil, nil, err
		}
		c.TLS = t
	}
	if a.direct != "" {
		if _, _, err := splitHostPort(a.direct); err != nil {
			return nil, nil, fmt.Errorf("--direct %q: %w", a.direct, err)
		}
		c.Direct = &config.Direct{Address: a.direct}
	}
	var vantages map[string]config.Vantage
	if a.proxy != "" {
		pu, err := url.Parse(a.proxy)
		if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "socks5" && pu.Scheme != "socks5h") {
			return nil, nil, fmt.Errorf("--proxy %q must be http://host:port or socks5://host:port", a.proxy)
		}
		vantages = map[string]config.Vantage{"proxy": {Name: "proxy", Proxy: pu}}
	}
	return c, vantages, nil
}

func selfVantage() string {
	if v := os.Getenv("WSCANARY_VANTAGE"); v != "" {
		return v
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "local"
}
