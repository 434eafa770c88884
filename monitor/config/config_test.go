package config_test

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
)

// env is a fixed environment for tests: nothing leaks in from the machine.
func env(vars map[string]string) config.Options {
	return config.Options{Lookup: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir  string
		want []string
	}{
		{"unknown-key", []string{
			`testdata/invalid-unknown-key/checks.d/a.yaml:5: unknown key "orgin" (known: name, url, tls, direct, schedule, timeout, origin, headers, token, subprotocols, client, transports, trace_header, steps, protocol, protocol_options, send, expect, vantages, alert, maintenance, warn, labels, group)`,
		}},
		{"client", []string{
			`testdata/invalid-client/wscanary.yaml:2: client: "safari" is not a client profile (chrome, firefox, wscanary)`,
			`testdata/invalid-client/checks.d/a.yaml:5: client: "curl" is not a client profile (chrome, firefox, wscanary)`,
		}},
		{"many", []string{
			`testdata/invalid-many/checks.d/a.yaml:3: url: "https://chat.example.com/ws" must be a ws:// or wss:// URL with a host`,
			`testdata/invalid-many/checks.d/a.yaml:7: schedule: "every thirty seconds": expected exactly 5 fields, found 3: [every thirty seconds] (use 5 cron fields or a descriptor like "@every 30s")`,
			`testdata/invalid-many/checks.d/a.yaml:9: direct.address: "203.0.113.10" must be host:port`,
			`testdata/invalid-many/checks.d/a.yaml:13: vantages: "mars" is neither this daemon's vantage (test) nor one under vantages:`,
			`testdata/invalid-many/checks.d/a.yaml:15: token: set exactly one of value, file or command`,
			`testdata/invalid-many/checks.d/a.yaml:17: check "four": token in: message needs send with {token} in it`,
			`testdata/invalid-many/checks.d/a.yaml:18: url: environment variable WSCANARY_TEST_UNSET_VAR is not set`,
			"testdata/invalid-many/checks.d/a.yaml:23: expect: error parsing regexp: missing closing ): `pong(`",
			`testdata/invalid-many/checks.d/a.yaml:27: timeout: expected a positive duration like 10s or 4h, got "soon"`,
			`testdata/invalid-many/checks.d/a.yaml:29: ca_file: cannot read /nonexistent/ca.pem: no such file or directory`,
			`testdata/invalid-many/checks.d/a.yaml:31: alert.on: 99 is not an HTTP status`,
			`testdata/invalid-many/checks.d/a.yaml:32: alert.after: must be 1 or more`,
		}},
		{"duplicate", []string{
			`testdata/invalid-duplicate/checks.d/b.yaml:3: check "chat" is already defined at testdata/invalid-duplicate/checks.d/a.yaml:2`,
		}},
		{"main", []string{
			`testdata/invalid-main/wscanary.yaml:2: listen: "9464" is not host:port`,
			`testdata/invalid-main/wscanary.yaml:5: proxy: "ftp://10.0.0.1:21" must be http://host:port (CONNECT) or socks5://host:port`,
			`testdata/invalid-main/wscanary.yaml:7: source_address: "not-an-ip" is not an IP address`,
			`testdata/invalid-main/wscanary.yaml:8: slack: set webhook_url or token, not both`,
			`testdata/invalid-main/wscanary.yaml:10: webhook_url: not an http(s) URL`,
			`testdata/invalid-main/wscanary.yaml:11: checks_dir testdata/invalid-main/nowhere: no such file or directory`,
		}},
		{"types", []string{
			`testdata/invalid-types/checks.d/a.yaml:3: url: expected a string`,
			`testdata/invalid-types/checks.d/a.yaml:5: headers: expected a mapping`,
			`testdata/invalid-types/checks.d/a.yaml:7: alert.after: expected a whole number, got "two"`,
		}},
		{"limits", []string{
			`testdata/invalid-limits/wscanary.yaml:5: slack.api_url: "ftp://slack.example/api/" is not an http(s) URL`,
			`testdata/invalid-limits/wscanary.yaml:8: proxy: "http://user:REDACTED@proxy.example" needs a port`,
			`testdata/invalid-limits/checks.d/a.yaml:4: schedule: "0 0 30 2 *" never fires: no date in the next five years matches it`,
			`testdata/invalid-limits/checks.d/a.yaml:7: schedule: "@every 1ns": the interval must be at least 1s`,
			`testdata/invalid-limits/checks.d/a.yaml:10: schedule: "@every 1500ms": the interval must be a whole number of seconds`,
			`testdata/invalid-limits/checks.d/a.yaml:13: schedule: "TZ=": not a valid schedule (use 5 cron fields or a descriptor like "@every 30s")`,
			`testdata/invalid-limits/checks.d/a.yaml:15: url: "ws://chat.example.com:99999/ws": port must be 1-65535`,
			`testdata/invalid-limits/checks.d/a.yaml:18: url: "ws://chat.example.com:0/ws?token=REDACTED": port must be 1-65535`,
			`testdata/invalid-limits/checks.d/a.yaml:20: timeout: 1000000h is more than the maximum of 1m0s`,
			`testdata/invalid-limits/checks.d/a.yaml:22: url: "https://user:REDACTED@chat.example.com/ws?access_key=REDACTED&apitoken=REDACTED" must be a ws:// or wss:// URL with a host`,
		}},
		{"rules", []string{
			`testdata/invalid-rules/wscanary.yaml:2: store: "mysql://user:REDACTED@db/wscanary" must be empty (SQLite in state_dir) or a postgres:// URL`,
			`testdata/invalid-rules/wscanary.yaml:3: history: 30m is less than the minimum of 1h0m0s`,
			`testdata/invalid-rules/checks.d/a.yaml:6: alert.on: "5XX" is not a status (100-599), a class (4xx, 5xx), an outcome (refused, rejected_after_open, no_answer), any or a cause (client_blocked, cdn_blocked, ...)`,
			`testdata/invalid-rules/checks.d/a.yaml:7: alert.on: 101 is the upgrade itself, not a failure`,
			`testdata/invalid-rules/checks.d/a.yaml:8: alert.on: "upgraded" is not a status (100-599), a class (4xx, 5xx), an outcome (refused, rejected_after_open, no_answer), any or a cause (client_blocked, cdn_blocked, ...)`,
			`testdata/invalid-rules/checks.d/a.yaml:10: warn.cert_expiry: expected a positive duration like 14d or 36h, got "two weeks"`,
			`testdata/invalid-rules/checks.d/a.yaml:11: warn.token_expiry: "150%" must be a share between 0% and 100%`,
		}},
		{"maintenance", []string{
			`testdata/invalid-maintenance/wscanary.yaml:5: slack.app_token: an app-level token starts with xapp- (the bot token goes in token)`,
			`testdata/invalid-maintenance/wscanary.yaml:7: maintenance.schedule: "@every 1h": a window starts at a time of day; use 5 cron fields or @daily, @weekly`,
			`testdata/invalid-maintenance/wscanary.yaml:9: maintenance: a recurring window needs both schedule and duration`,
			`testdata/invalid-maintenance/wscanary.yaml:10: maintenance: to must be after from`,
			`testdata/invalid-maintenance/checks.d/a.yaml:7: maintenance.duration: 192h0m0s is more than a week; use a silence or a one-off window (from, to)`,
			`testdata/invalid-maintenance/checks.d/a.yaml:8: maintenance: set schedule and duration, or from and to, not both`,
			`testdata/invalid-maintenance/checks.d/a.yaml:11: maintenance.from: expected an RFC 3339 time like 2026-12-24T22:00:00Z, got "yesterday"`,
			`testdata/invalid-maintenance/checks.d/a.yaml:13: maintenance: set schedule and duration, or from and to`,
		}},
		{"notify", []string{
			`testdata/invalid-notify/wscanary.yaml:3: notify: "slack" names the slack: section; pick another name`,
			`testdata/invalid-notify/wscanary.yaml:6: pagerduty.severity: "loud" is not one of critical, error, warning, info`,
			`testdata/invalid-notify/wscanary.yaml:7: notify: "pager" is defined twice`,
			`testdata/invalid-notify/wscanary.yaml:9: notify "both": set exactly one of alertmanager, pagerduty or webhook`,
			`testdata/invalid-notify/wscanary.yaml:13: webhook: url and secret are required (the receiver verifies the signature)`,
			`testdata/invalid-notify/checks.d/a.yaml:2: alert.notify: "pagerduty" is not one of slack, pager, both, nohook (notify: in testdata/invalid-notify/wscanary.yaml)`,
		}},
		{"yaml", []string{
			`testdata/invalid-yaml/checks.d/a.yaml:3: invalid YAML: found unexpected end of stream`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			cfg, err := config.LoadWith("testdata/invalid-"+tt.dir+"/wscanary.yaml", env(nil))
			if cfg != nil {
				t.Fatal("an invalid configuration was returned")
			}
			var es config.Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v is not config.Errors", err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := config.LoadWith("testdata/invalid-main/wscanary.yaml", env(nil))
	if err == nil || strings.Contains(err.Error(), "xoxb-not-a-real-token") {
		t.Fatalf("a Slack token appears in the errors: %v", err)
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadWith("testdata/valid/wscanary.yaml", env(map[string]string{
		"WSCANARY_TEST_SLACK": "xoxb-test", "WSCANARY_TEST_TOKEN": "tok-123", "STATE_DIRECTORY": "/run/state/wscanary:/x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Vantage != "us-east-1" || cfg.Listen != "127.0.0.1:9464" || cfg.StateDir != "/run/state/wscanary" {
		t.Errorf("main defaults: vantage %q listen %q state %q", cfg.Vantage, cfg.Listen, cfg.StateDir)
	}
	if want, _ := filepath.Abs("testdata/valid/checks.d"); cfg.ChecksDir != "testdata/valid/checks.d" && cfg.ChecksDir != want {
		t.Errorf("checks dir %q", cfg.ChecksDir)
	}
	if cfg.Store != "" || cfg.History != config.DefaultHistory() {
		t.Errorf("store %q history %v", cfg.Store, cfg.History)
	}
	if cfg.Slack.Token != "xoxb-test" || cfg.Slack.Channel != "#ws-alerts" {
		t.Errorf("slack %+v", cfg.Slack)
	}
	if v := cfg.Vantages["eu-west-1"]; v.Proxy == nil || v.Proxy.Host != "127.0.0.1:1080" {
		t.Errorf("vantage eu-west-1 %+v", v)
	}
	if len(cfg.Checks) != 2 {
		t.Fatalf("%d checks", len(cfg.Checks))
	}
	chat, feed := cfg.Checks[0], cfg.Checks[1]
	if chat.Token.Value != "tok-123" || chat.Token.In != config.TokenInHeader || chat.Token.Name != "Authorization" {
		t.Errorf("token %+v", chat.Token)
	}
	if chat.Direct == nil || chat.Direct.Address != "203.0.113.10:443" || chat.Alert.After != 2 ||
		chat.Alert.MinVantages != 2 || chat.Alert.Remind != 4*time.Hour || !chat.Expect.MatchString("pong") {
		t.Errorf("chat %+v", chat)
	}
	if chat.Sched == nil || chat.Sched.Next(time.Unix(0, 0)).Sub(time.Unix(0, 0)) != 30*time.Second {
		t.Errorf("schedule not parsed")
	}
	if feed.Timeout != 10*time.Second || !reflect.DeepEqual(feed.Alert.On, config.DefaultAlertOn()) || feed.Alert.After != 1 ||
		feed.Token != nil || feed.Direct != nil || feed.File == "" || feed.Line != 20 {
		t.Errorf("feed defaults %+v", feed)
	}
}

func TestVantageFromEnv(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadWith("testdata/valid/wscanary.yaml", env(map[string]string{
		"WSCANARY_TEST_SLACK": "x", "WSCANARY_TEST_TOKEN": "y", "WSCANARY_VANTAGE": "eu-central-1"}))
	if err == nil {
		t.Fatalf("chat names us-east-1, which is no longer a vantage; got %q", cfg.Vantage)
	}
	if !strings.Contains(err.Error(), `"us-east-1" is neither this daemon's vantage (eu-central-1)`) {
		t.Fatal(err)
	}
}

func TestMissingMainFile(t *testing.T) {
	t.Parallel()
	_, err := config.LoadWith(filepath.Join(t.TempDir(), "none.yaml"), env(nil))
	if err == nil || !strings.Contains(err.Error(), "none.yaml: cannot read: no such file or directory") {
		t.Fatal(err)
	}
}

// The shipped example checks must load, and the JSON Schema must know every
// key the loader accepts in them.
func TestShippedExamples(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	main := filepath.Join(dir, "wscanary.yaml")
	abs, _ := filepath.Abs("../../checks.d")
	os.WriteFile(main, []byte("vantage: us-east-1\nchecks_dir: "+abs+"\n"), 0o600)
	cfg, err := config.LoadWith(main, env(map[string]string{"CHAT_TOKEN": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Checks) == 0 {
		t.Fatal("checks.d ships no example check")
	}
}

func TestLoadBytes(t *testing.T) {
	t.Parallel()
	cfg, err := config.LoadBytes("demo.yaml", []byte("vantage: demo\nlisten: \"\"\n"), map[string][]byte{
		"b.yaml": []byte("checks:\n  - {name: b, url: ws://127.0.0.1:1/ws, schedule: \"@every 5s\"}\n"),
		"a.yaml": []byte("checks:\n  - {name: a, url: ws://127.0.0.1:1/ws, schedule: \"@every 5s\"}\n"),
	}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "" || len(cfg.Checks) != 2 || cfg.Checks[0].Name != "a" {
		t.Fatalf("%+v", cfg)
	}
}

// TestDebugListen: the profiler's address is off by default, loopback when
// its host is left out, as written otherwise, and refused with its line
// when it is not host:port.
func TestDebugListen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{"", "", ""},
		{"debug_listen: \":6060\"\n", "127.0.0.1:6060", ""},
		{"debug_listen: \"[::1]:6060\"\n", "[::1]:6060", ""},
		{"debug_listen: \"0.0.0.0:6060\"\n", "0.0.0.0:6060", ""},
		{"debug_listen: \"6060\"\n", "", `m.yaml:3: debug_listen: "6060" is not host:port`},
	} {
		cfg, err := config.LoadBytes("m.yaml", []byte("vantage: v\nlisten: \"\"\n"+tc.in), nil, env(nil))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case cfg.DebugListen != tc.want:
			t.Errorf("%q: debug_listen %q, want %q", tc.in, cfg.DebugListen, tc.want)
		}
	}
}

// TestHistory: a duration alone is keep (what `history: 30d` meant before
// rollups), with the default raw window unless keep is shorter; the mapping
// sets either; errors name the file and line.
func TestHistory(t *testing.T) {
	t.Parallel()
	h := func(raw, keep time.Duration) config.History { return config.History{Raw: raw, Keep: keep} }
	for _, tc := range []struct {
		in   string
		want config.History
		err  string
	}{
		{"", config.DefaultHistory(), ""},
		{"history: 30d\n", h(48*time.Hour, 30*config.Day), ""},
		{"history: 36h\n", h(36*time.Hour, 36*time.Hour), ""},
		{"history: {raw: 7d}\n", h(7*config.Day, 400*config.Day), ""},
		{"history: {keep: 90d}\n", h(48*time.Hour, 90*config.Day), ""},
		{"history: {keep: 1d}\n", h(config.Day, config.Day), ""},
		{"history: {raw: 12h, keep: 2y}\n", h(12*time.Hour, 400*config.Day), "m.yaml:3: history.keep: expected a positive duration"},
		{"history: {raw: 3d, keep: 1d}\n", config.History{}, "m.yaml:3: history: raw (72h0m0s) is longer than keep (24h0m0s)"},
		{"history: 30m\n", config.History{}, "m.yaml:3: history: 30m is less than the minimum of 1h0m0s"},
		{"history: {raw: 30m}\n", config.History{}, "m.yaml:3: history.raw: 30m is less than the minimum"},
		{"history: {rows: 5}\n", config.History{}, `m.yaml:3: unknown key "rows" (known: raw, keep)`},
	} {
		cfg, err := config.LoadBytes("m.yaml", []byte("vantage: v\nlisten: \"\"\n"+tc.in), nil, env(nil))
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case cfg.History != tc.want:
			t.Errorf("%q: history %+v, want %+v", tc.in, cfg.History, tc.want)
		}
	}
}

// FuzzLoad: any bytes as a check file give a config or errors, never a panic.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"testdata/valid/checks.d/chat.yaml", "testdata/invalid-many/checks.d/a.yaml"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("checks: [{name: x, url: 'ws://h/', schedule: '@every 1s', alert: {on: [1e9]}}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := config.LoadBytes("m.yaml", []byte("vantage: v\n"), map[string][]byte{"c.yaml": b}, env(nil))
		if (cfg == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", cfg, err)
		}
		var es config.Errors
		if err != nil && !errors.As(err, &es) {
			t.Fatalf("error of type %T", err)
		}
	})
}

var update = flag.Bool("update", false, "rewrite the shipped JSON Schema from the loader's tables")

// TestSchemaIsGenerated: the shipped JSON Schema is the one generated from
// the loader's own key tables, so a key added to the loader without the
// schema (or the other way round) fails here. Regenerate with
// go test ./monitor/config -run TestSchemaIsGenerated -update.
func TestSchemaIsGenerated(t *testing.T) {
	path := filepath.Join("..", "..", config.SchemaFile)
	want := config.CheckFileSchema()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is not what the loader's tables generate; run go test ./monitor/config -run TestSchemaIsGenerated -update", config.SchemaFile)
	}
	var doc struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	// The schema's check keys are the ones the loader knows, as its own
	// "unknown key" error lists them to a user.
	var keys []string
	for k := range doc.Defs["check"].Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	_, err = config.LoadBytes("m.yaml", []byte("vantage: v\n"), map[string][]byte{
		"c.yaml": []byte("checks:\n  - {name: a, url: \"ws://127.0.0.1:1/\", schedule: \"@every 5s\", not_a_key: 1}\n")}, config.Options{})
	_, listed, ok := strings.Cut(fmt.Sprint(err), "(known: ")
	listed, _, _ = strings.Cut(listed, ")")
	known := strings.Split(listed, ", ")
	sort.Strings(known)
	if !ok || !reflect.DeepEqual(known, keys) {
		t.Fatalf("the loader knows %v, the schema lists %v (error: %v)", known, keys, err)
	}
}

// TestHostileFiles: what sits in checks.d cannot hang or exhaust the
// loader: a link to /dev/zero, a FIFO, a huge file and a file of a million
// unknown keys each give a bounded error, and the error list is capped.
func TestHostileFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	checks := filepath.Join(dir, "checks.d")
	os.Mkdir(checks, 0o755)
	main := filepath.Join(dir, "wscanary.yaml")
	os.WriteFile(main, []byte("vantage: v\n"), 0o600)
	os.Symlink("/dev/zero", filepath.Join(checks, "a-zero.yaml"))
	if err := syscall.Mkfifo(filepath.Join(checks, "b-fifo.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(checks, "c-huge.yaml"), make([]byte, config.MaxFileBytes+1), 0o600)
	var keys strings.Builder
	keys.WriteString("checks:\n  - name: x\n")
	for i := 0; keys.Len() < config.MaxFileBytes-64; i++ {
		fmt.Fprintf(&keys, "    k%d: v\n", i)
	}
	os.WriteFile(filepath.Join(checks, "d-keys.yaml"), []byte(keys.String()), 0o600)

	type result struct {
		cfg *config.Config
		err error
	}
	done := make(chan result, 1)
	go func() { c, err := config.LoadWith(main, env(nil)); done <- result{c, err} }()
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("loading hangs")
	}
	var es config.Errors
	if r.cfg != nil || !errors.As(r.err, &es) {
		t.Fatalf("config %v, error %v", r.cfg, r.err)
	}
	text := r.err.Error()
	for _, want := range []string{
		"a-zero.yaml: cannot read: not a regular file (a device)",
		"b-fifo.yaml: cannot read: not a regular file (a FIFO)",
		fmt.Sprintf("c-huge.yaml: cannot read: larger than %d MiB", config.MaxFileBytes>>20),
		`d-keys.yaml:3: unknown key "k0"`,
		"more errors not shown",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the errors", want)
		}
	}
	if len(es) > config.MaxErrors+1 || len(text) > 64<<10 {
		t.Fatalf("%d errors, %d bytes of text", len(es), len(text))
	}
}

// TestInvalidYAMLHasLine: every YAML error names a line, also those the
// YAML library reports without one.
func TestInvalidYAMLHasLine(t *testing.T) {
	t.Parallel()
	tests := []struct{ doc, want string }{
		{"checks:\n  - name: a\n    url: \"ws://h/\x01\"\n", `c.yaml:3: invalid YAML: control characters are not allowed`},
		{"checks:\n  - name: a\n    url: *nope\n", `c.yaml:3: invalid YAML: unknown anchor 'nope' referenced`},
		{"checks:\n  - name: a\n\turl: x\n", `c.yaml:2: invalid YAML: found a tab character that violates indentation`},
		{"%YAML 2.0\n---\nchecks: []\n", `c.yaml:1: invalid YAML: found incompatible YAML document`},
	}
	for _, tt := range tests {
		_, err := config.LoadBytes("m.yaml", []byte("vantage: v\n"), map[string][]byte{"c.yaml": []byte(tt.doc)}, env(nil))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: %v, want %s", tt.doc, err, tt.want)
		}
	}
}

// TestAlertOn: what each kind of alert.on entry makes fail.
func TestAlertOn(t *testing.T) {
	t.Parallel()
	parse := func(items ...string) config.Alert {
		var a config.Alert
		for _, s := range items {
			on, err := config.ParseAlertOn(s)
			if err != nil {
				t.Fatal(err)
			}
			a.On = append(a.On, on)
		}
		return a
	}
	tests := []struct {
		on      config.Alert
		outcome report.Outcome
		status  int
		want    bool
		cause   report.Cause
	}{
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeRefused, 403, true, ""},
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeRefused, 426, false, ""},
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeRejectedAfterOpen, 101, true, ""},
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeNoAnswer, 0, false, ""},
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeUpgraded, 101, false, ""},
		{parse("4xx"), report.OutcomeRefused, 426, true, ""},
		{parse("4xx"), report.OutcomeRefused, 502, false, ""},
		{parse("5xx"), report.OutcomeRefused, 502, true, ""},
		{parse("no_answer"), report.OutcomeNoAnswer, 0, true, ""},
		{parse("refused"), report.OutcomeRefused, 302, true, ""},
		{parse("any"), report.OutcomeNoAnswer, 0, true, ""},
		{parse("any"), report.OutcomeUpgraded, 101, false, ""},
		// A warning-only cause fails only when alert.on names it.
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeRefused, 403, false, report.CauseClientBlocked},
		{parse("any"), report.OutcomeRefused, 403, false, report.CauseClientBlocked},
		{parse("client_blocked"), report.OutcomeRefused, 403, true, report.CauseClientBlocked},
		{parse("client_blocked"), report.OutcomeRefused, 403, false, report.CauseCDNBlocked},
		{parse("cdn_blocked"), report.OutcomeRefused, 403, true, report.CauseCDNBlocked},
		// An HTTP/2 path that is not offered never fails; one that is
		// offered and refuses fails whatever its status.
		{parse("any"), report.OutcomeNotOffered, 0, false, report.CauseOK},
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeRefused, 426, true, report.CauseH2PathBroken},
		{config.Alert{On: config.DefaultAlertOn()}, report.OutcomeUpgraded, 101, false, report.CauseH2PathBroken},
	}
	for _, tt := range tests {
		if got := tt.on.Fails(tt.outcome, tt.status, tt.cause); got != tt.want {
			t.Errorf("%v fails %s/%d = %v, want %v", tt.on.On, tt.outcome, tt.status, got, tt.want)
		}
	}
}

// TestMinVantagesInAFleet: min_vantages above the check's own vantages is
// a mistake for a daemon alone, and the point of a fleet (the store is
// shared, the members' vantages count together).
func TestMinVantagesInAFleet(t *testing.T) {
	t.Parallel()
	check := map[string][]byte{"a.yaml": []byte("checks:\n  - name: chat\n    url: ws://chat.example.com/ws\n    schedule: \"@every 1m\"\n    alert: {min_vantages: 2}\n")}
	for _, tt := range []struct {
		main string
		ok   bool
	}{
		{"vantage: eu\n", false},
		{"vantage: eu\nstore: postgres://wscanary@db.example/wscanary\n", true},
	} {
		_, err := config.LoadBytes("wscanary.yaml", []byte(tt.main), check, env(nil))
		if (err == nil) != tt.ok {
			t.Errorf("%q: err %v, want ok %v", tt.main, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "a.yaml:5: alert.min_vantages: 2 is more than the check's 1 vantage(s)") {
			t.Errorf("error %v lacks the file and line", err)
		}
	}
}

// TestWindowHolds: a recurring window holds from each start for its
// duration; a one-off one from from to to.
func TestWindowHolds(t *testing.T) {
	t.Parallel()
	main := []byte("vantage: test\nmaintenance:\n  - {schedule: \"0 2 * * SUN\", duration: 2h, reason: CHG-1}\n  - {from: \"2026-12-24T22:00:00Z\", to: \"2026-12-25T06:00:00Z\"}\n")
	cfg, err := config.LoadBytes("wscanary.yaml", main, nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	ws := cfg.Maintenance
	if len(ws) != 2 || ws[0].Reason != "CHG-1" || ws[0].Line != 3 {
		t.Fatalf("windows %+v", ws)
	}
	sunday := time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local) // a Sunday
	for _, tt := range []struct {
		at    time.Time
		holds bool
		until time.Time
	}{
		{sunday.Add(time.Hour + 59*time.Minute), false, time.Time{}},
		{sunday.Add(2 * time.Hour), true, sunday.Add(4 * time.Hour)},
		{sunday.Add(3*time.Hour + 59*time.Minute), true, sunday.Add(4 * time.Hour)},
		{sunday.Add(4 * time.Hour), false, time.Time{}},
		{sunday.Add(24*time.Hour + 3*time.Hour), false, time.Time{}},
		{time.Date(2026, 12, 24, 21, 59, 0, 0, time.UTC), false, time.Time{}},
		{time.Date(2026, 12, 25, 5, 0, 0, 0, time.UTC), true, time.Date(2026, 12, 25, 6, 0, 0, 0, time.UTC)},
		{time.Date(2026, 12, 25, 6, 0, 0, 0, time.UTC), false, time.Time{}},
	} {
		_, until, holds := config.InWindow(ws, tt.at)
		if holds != tt.holds || !until.Equal(tt.until) {
			t.Errorf("at %s: holds %v until %s, want %v until %s", tt.at, holds, until, tt.holds, tt.until)
		}
	}
}

// TestLoadBeside: the commands beside a daemon need none of its secrets,
// but they need to know where the store is.
func TestLoadBeside(t *testing.T) {
	t.Parallel()
	check := map[string][]byte{"a.yaml": []byte("checks:\n  - {name: chat, url: \"wss://chat.example.com/ws?token=${CHAT_TOKEN}\", schedule: \"@every 1m\"}\n")}
	main := []byte("vantage: eu\nslack: {token: \"${SLACK_BOT_TOKEN}\", channel: \"#c\"}\n")
	if _, err := config.LoadBytes("m.yaml", main, check, config.Options{Beside: true, Lookup: env(nil).Lookup}); err != nil {
		t.Fatalf("beside, unset secrets: %v", err)
	}
	if _, err := config.LoadBytes("m.yaml", main, check, env(nil)); err == nil {
		t.Fatal("the daemon's load accepted unset secrets")
	}
	withStore := []byte("vantage: eu\nstore: \"${WSCANARY_STORE}\"\n")
	_, err := config.LoadBytes("m.yaml", withStore, check, config.Options{Beside: true, Lookup: env(nil).Lookup})
	if err == nil || !strings.Contains(err.Error(), "m.yaml:2: store: environment variable WSCANARY_STORE is not set") {
		t.Fatalf("beside, unset store: %v", err)
	}
}

// TestClientDefaults: a check without client: takes the main file's, and
// that is chrome unless the main file says otherwise.
func TestClientDefaults(t *testing.T) {
	t.Parallel()
	checks := []byte("checks:\n  - {name: a, url: \"wss://x.example/ws\", schedule: \"@every 1m\"}\n" +
		"  - {name: b, url: \"wss://x.example/ws\", schedule: \"@every 1m\", client: wscanary, trace_header: false}\n")
	for _, tt := range []struct{ main, a string }{{"vantage: t\n", "chrome"}, {"vantage: t\nclient: firefox\n", "firefox"}} {
		cfg, err := config.LoadBytes("m.yaml", []byte(tt.main), map[string][]byte{"c.yaml": checks},
			config.Options{Lookup: func(string) (string, bool) { return "", false }})
		if err != nil {
			t.Fatal(err)
		}
		a, b := cfg.Check("a"), cfg.Check("b")
		if a.Client != tt.a || a.NoTraceHeader || b.Client != "wscanary" || !b.NoTraceHeader {
			t.Errorf("%q: a is %s (no trace header %v), b is %s (%v)", tt.main, a.Client, a.NoTraceHeader, b.Client, b.NoTraceHeader)
		}
	}
}

// TestTransports: wss:// checks go over both transports unless they name
// some, ws:// over HTTP/1.1; wrong names, duplicates, an empty list and
// http2 on ws:// are errors at their line.
func TestTransports(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		check string
		want  []report.Transport
		err   string
	}{
		{"url: wss://chat.example.com/ws", []report.Transport{report.TransportHTTP1, report.TransportHTTP2}, ""},
		{"url: ws://chat.example.com/ws", []report.Transport{report.TransportHTTP1}, ""},
		{"url: wss://chat.example.com/ws\n    transports: [http1]", []report.Transport{report.TransportHTTP1}, ""},
		{"url: wss://chat.example.com/ws\n    transports: [http2]", []report.Transport{report.TransportHTTP2}, ""},
		{"url: wss://chat.example.com/ws\n    transports: [http3]", nil, `a.yaml:5: transports: "http3" is not a transport (http1, http2)`},
		{"url: wss://chat.example.com/ws\n    transports: [http1, http1]", nil, `a.yaml:5: transports: "http1" is listed twice`},
		{"url: wss://chat.example.com/ws\n    transports: []", nil, "a.yaml:5: transports: an empty list makes no attempt"},
		{"url: ws://chat.example.com/ws\n    transports: [http1, http2]", nil, "a.yaml:5: check \"chat\": transports: http2 needs a wss:// url"},
	} {
		check := map[string][]byte{"a.yaml": []byte("checks:\n  - name: chat\n    schedule: \"@every 1m\"\n    " + tt.check + "\n")}
		cfg, err := config.LoadBytes("wscanary.yaml", []byte("vantage: eu\n"), check, env(nil))
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.check, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.check, err)
		case !slices.Equal(cfg.Checks[0].Transports, tt.want):
			t.Errorf("%q: transports %v, want %v", tt.check, cfg.Checks[0].Transports, tt.want)
		}
	}
}

// TestStepsAndProtocol: steps and protocol presets load with their
// errors at their line; token.in: message is satisfied by {token} in any
// step or by a preset that carries the credential.
func TestStepsAndProtocol(t *testing.T) {
	t.Parallel()
	const head = "checks:\n  - name: chat\n    url: ws://chat.example.com/ws\n    schedule: \"@every 1m\"\n"
	for _, tt := range []struct {
		check, err string
		steps      int
	}{
		{"    steps:\n      - {send: hi, expect: '^hi', within: 2s}\n      - {expect: ok}\n", "", 2},
		{"    token: {value: t, in: message}\n    steps:\n      - {send: hi}\n      - {send: 'auth {token}', expect: ok}\n", "", 2},
		{"    token: {value: t, in: message}\n    protocol: socket.io\n", "", 0},
		{"    token: {value: t, in: message}\n    protocol: graphql-ws\n    protocol_options: {payload: '{\"authToken\": \"{token}\"}'}\n", "", 0},
		{"    steps:\n      - {within: 2s}\n", "a.yaml:6: steps: a step needs send, expect or both", 0},
		{"    steps:\n      - {expect: '('}\n", "a.yaml:6: steps.expect: error parsing regexp", 0},
		{"    steps:\n      - {expect: x, within: 2m}\n", "a.yaml:6: steps.within: 2m must be positive and at most 1m0s", 0},
		{"    steps:\n      - {expect: x, wait: 2s}\n", `a.yaml:6: unknown key "wait"`, 0},
		{"    send: hi\n    steps:\n      - {expect: x}\n", "steps: and send:/expect: both set", 0},
		{"    token: {value: t, in: message}\n    steps:\n      - {send: hi}\n", "needs", 0},
		{"    protocol: mqtt5\n", `a.yaml:5: protocol: "mqtt5" is not a known protocol (socket.io, graphql-ws, mqtt, stomp, actioncable, centrifugo, phoenix, signalr)`, 0},
		{"    protocol: socket.io\n    protocol_options: {room: a}\n", `a.yaml:5: check "chat": protocol_options: "room" is not an option of socket.io (namespace)`, 0},
		{"    protocol: socket.io\n    protocol_options: {namespace: admin}\n", "protocol_options.namespace: \"admin\" must start with /", 0},
		{"    protocol: graphql-ws\n    protocol_options: {payload: 'token={token}'}\n", "is not a JSON object", 0},
		{"    protocol_options: {namespace: /a}\n", "protocol_options without protocol", 0},
	} {
		cfg, err := config.LoadBytes("wscanary.yaml", []byte("vantage: eu\n"), map[string][]byte{"a.yaml": []byte(head + tt.check)}, env(nil))
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.check, err, tt.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.check, err)
		case len(cfg.Checks[0].Steps) != tt.steps:
			t.Errorf("%q: %d steps, want %d", tt.check, len(cfg.Checks[0].Steps), tt.steps)
		}
	}
}
