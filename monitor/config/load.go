package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/wscanary/wscanary/monitor/internal/files"
	"github.com/wscanary/wscanary/monitor/redact"
)

// Options change how a configuration is loaded; the zero value reads the
// process environment and the file system.
type Options struct {
	// Lookup resolves ${VAR}; nil means SystemLookup (the environment,
	// then systemd credentials).
	Lookup func(string) (string, bool)
	// Now is the clock schedules are judged by; nil means time.Now.
	Now func() time.Time
}

// Load reads the main file at path and every checks.d/*.yaml beside it.
// The error, when not nil, is an Errors listing every problem found.
func Load(path string) (*Config, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with options.
func LoadWith(path string, opts Options) (*Config, error) {
	main, err := files.ReadRegular(path, MaxFileBytes)
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot read: " + pathErr(err)}}
	}
	l := newLoader(opts)
	cfg := l.main(path, main)
	explicit := cfg.ChecksDir != ""
	if !explicit {
		cfg.ChecksDir = DefaultChecksDir
	}
	if !filepath.IsAbs(cfg.ChecksDir) {
		cfg.ChecksDir = filepath.Join(filepath.Dir(path), cfg.ChecksDir)
	}
	paths, err := checkFiles(cfg.ChecksDir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	case err != nil:
		l.add(path, l.checksDirLine, "checks_dir %s: %s", cfg.ChecksDir, pathErr(err))
	}
	for _, f := range paths {
		b, err := files.ReadRegular(f, MaxFileBytes)
		if err != nil {
			l.add(display(f), 0, "cannot read: %s", pathErr(err))
			continue
		}
		cfg.Checks = append(cfg.Checks, l.checks(display(f), b)...)
	}
	return l.finish(cfg)
}

// LoadBytes loads a configuration held in memory (the demo's embedded
// one): main is the main file, checks maps file names to check files,
// loaded in name order.
func LoadBytes(mainName string, main []byte, checks map[string][]byte, opts Options) (*Config, error) {
	l := newLoader(opts)
	cfg := l.main(mainName, main)
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cfg.Checks = append(cfg.Checks, l.checks(n, checks[n])...)
	}
	return l.finish(cfg)
}

func checkFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		if strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") {
			out = append(out, filepath.Join(dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// display shortens a path for messages when it is below the working dir.
func display(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return p
}

func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type loader struct {
	lookup        func(string) (string, bool)
	now           func() time.Time
	errs          Errors
	checksDirLine int
	// where each check and vantage reference was defined, for messages
	checkAt    map[string]string
	vantageRef []vantageRef
	mainFile   string
	slackLine  int
	// dropped counts errors past MaxErrors.
	dropped int
}

type vantageRef struct {
	file, name string
	line       int
}

func newLoader(opts Options) *loader {
	l := &loader{lookup: opts.Lookup, now: opts.Now, checkAt: map[string]string{}}
	if l.lookup == nil {
		l.lookup = SystemLookup
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// add records a problem. Past MaxErrors it only counts: a file of a
// million unknown keys must not become a million lines of output.
func (l *loader) add(file string, line int, format string, args ...any) {
	if len(l.errs) >= MaxErrors {
		l.dropped++
		return
	}
	l.errs = append(l.errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// parse reads one YAML document; an empty file is an empty mapping.
func (l *loader) parse(file string, b []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		line := 0
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.TrimSpace(m[2])
		} else {
			line = yamlErrorLine(b, msg)
		}
		l.add(file, line, "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return nil
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.add(file, root.Line, "expected a mapping at the top of the file")
		return nil
	}
	return root
}

var (
	yamlLine   = regexp.MustCompile(`line (\d+):\s*(.*)`)
	yamlAnchor = regexp.MustCompile(`unknown anchor '([^']*)'`)
)

// yamlErrorLine finds the line of the few YAML errors that come without
// one; failing that, the document starts at line 1.
func yamlErrorLine(b []byte, msg string) int {
	at := -1
	switch {
	case strings.Contains(msg, "control characters"):
		at = bytes.IndexFunc(b, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' })
	case yamlAnchor.MatchString(msg):
		at = bytes.Index(b, []byte("*"+yamlAnchor.FindStringSubmatch(msg)[1]))
	}
	if at < 0 {
		return 1
	}
	return 1 + bytes.Count(b[:at], []byte("\n"))
}

// fields walks a mapping, rejecting unknown and repeated keys, and calls
// set for each known one.
func (l *loader) fields(file string, m *yaml.Node, known []string, set func(key string, k, v *yaml.Node)) {
	if m.Kind != yaml.MappingNode {
		l.add(file, m.Line, "expected a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		key := k.Value
		if !contains(known, key) {
			l.add(file, k.Line, "unknown key %q (known: %s)", key, strings.Join(known, ", "))
			continue
		}
		if seen[key] {
			l.add(file, k.Line, "key %q appears twice", key)
			continue
		}
		seen[key] = true
		set(key, k, v)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// str reads a scalar string and expands ${VAR}.
func (l *loader) str(file, key string, v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		l.add(file, v.Line, "%s: expected a string", key)
		return "", false
	}
	if v.Tag == "!!null" {
		return "", true
	}
	ok := true
	out := envRef.ReplaceAllStringFunc(v.Value, func(ref string) string {
		name := ref[2 : len(ref)-1]
		val, set := l.lookup(name)
		if !set {
			l.add(file, v.Line, "%s: environment variable %s is not set", key, name)
			ok = false
		}
		return val
	})
	return out, ok
}

func (l *loader) integer(file, key string, v *yaml.Node) (int, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		l.add(file, v.Line, "%s: expected a whole number, got %q", key, s)
		return 0, false
	}
	return n, true
}

func (l *loader) boolean(file, key string, v *yaml.Node) (bool, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return false, false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		l.add(file, v.Line, "%s: expected true or false, got %q", key, s)
		return false, false
	}
	return b, true
}

func (l *loader) duration(file, key string, v *yaml.Node) (time.Duration, bool) {
	s, ok := l.str(file, key, v)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		l.add(file, v.Line, "%s: expected a positive duration like 10s or 4h, got %q", key, s)
		return 0, false
	}
	return d, true
}

func (l *loader) strings(file, key string, v *yaml.Node) []string {
	if v.Kind != yaml.SequenceNode {
		l.add(file, v.Line, "%s: expected a list", key)
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for _, item := range v.Content {
		if s, ok := l.str(file, key, item); ok {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) stringMap(file, key string, v *yaml.Node) map[string]string {
	if v.Kind != yaml.MappingNode {
		l.add(file, v.Line, "%s: expected a mapping", key)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		if s, ok := l.str(file, key+"."+v.Content[i].Value, v.Content[i+1]); ok {
			out[v.Content[i].Value] = s
		}
	}
	return out
}

// main parses the main file into a Config with its defaults applied.
func (l *loader) main(file string, b []byte) *Config {
	l.mainFile = file
	cfg := &Config{Path: file, Listen: DefaultListen, Vantages: map[string]Vantage{}}
	var stateSet, vantageSet bool
	root := l.parse(file, b)
	if root != nil {
		known := []string{"vantage", "checks_dir", "state_dir", "listen", "vantages", "slack", "trace_url"}
		l.fields(file, root, known, func(key string, k, v *yaml.Node) {
			switch key {
			case "vantage":
				cfg.Vantage, _ = l.str(file, key, v)
				vantageSet = cfg.Vantage != ""
			case "checks_dir":
				cfg.ChecksDir, _ = l.str(file, key, v)
				l.checksDirLine = v.Line
			case "state_dir":
				cfg.StateDir, _ = l.str(file, key, v)
				stateSet = cfg.StateDir != ""
			case "listen":
				cfg.Listen, _ = l.str(file, key, v) // "" disables the listener
				if cfg.Listen != "" {
					if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
						l.add(file, v.Line, "listen: %q is not host:port", cfg.Listen)
					}
				}
			case "vantages":
				l.vantages(file, v, cfg)
			case "slack":
				l.slackLine = k.Line
				l.slack(file, v, &cfg.Slack)
			case "trace_url":
				cfg.TraceURL, _ = l.str(file, key, v)
			}
		})
	}
	if env, ok := l.lookup("WSCANARY_VANTAGE"); ok && env != "" {
		cfg.Vantage = env
	} else if !vantageSet {
		cfg.Vantage = defaultVantage(l.lookup)
	}
	if !stateSet {
		cfg.StateDir = defaultStateDir(l.lookup)
	}
	return cfg
}

func (l *loader) vantages(file string, v *yaml.Node, cfg *Config) {
	if v.Kind != yaml.SequenceNode {
		l.add(file, v.Line, "vantages: expected a list")
		return
	}
	for _, item := range v.Content {
		var vt Vantage
		var proxy string
		l.fields(file, item, []string{"name", "proxy", "source_address"}, func(key string, k, val *yaml.Node) {
			switch key {
			case "name":
				vt.Name, _ = l.str(file, key, val)
			case "proxy":
				proxy, _ = l.str(file, key, val)
				u, err := url.Parse(proxy)
				if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "socks5" && u.Scheme != "socks5h") {
					l.add(file, val.Line, "proxy: %q must be http://host:port (CONNECT) or socks5://host:port", redact.URL(proxy))
					return
				}
				if _, _, err := net.SplitHostPort(u.Host); err != nil {
					l.add(file, val.Line, "proxy: %q needs a port", redact.URL(proxy))
					return
				}
				vt.Proxy = u
			case "source_address":
				vt.SourceAddress, _ = l.str(file, key, val)
				if net.ParseIP(vt.SourceAddress) == nil {
					l.add(file, val.Line, "source_address: %q is not an IP address", vt.SourceAddress)
				}
			}
		})
		switch {
		case vt.Name == "":
			l.add(file, item.Line, "vantage: name is required")
			continue
		case proxy == "" && vt.SourceAddress == "":
			l.add(file, item.Line, "vantage %q: set proxy or source_address", vt.Name)
		case proxy != "" && vt.SourceAddress != "":
			l.add(file, item.Line, "vantage %q: set proxy or source_address, not both", vt.Name)
		}
		if _, dup := cfg.Vantages[vt.Name]; dup {
			l.add(file, item.Line, "vantage %q is defined twice", vt.Name)
		}
		cfg.Vantages[vt.Name] = vt
	}
}

func (l *loader) slack(file string, v *yaml.Node, s *Slack) {
	l.fields(file, v, []string{"webhook_url", "token", "channel", "api_url"}, func(key string, k, val *yaml.Node) {
		switch key {
		case "webhook_url":
			s.WebhookURL, _ = l.str(file, key, val)
			if s.WebhookURL != "" {
				if u, err := url.Parse(s.WebhookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					// Never echo the URL: it is a secret.
					l.add(file, val.Line, "webhook_url: not an http(s) URL")
				}
			}
		case "token":
			s.Token, _ = l.str(file, key, val)
		case "channel":
			s.Channel, _ = l.str(file, key, val)
		case "api_url":
			s.APIURL, _ = l.str(file, key, val)
			if s.APIURL == "" {
				return
			}
			if u, err := url.Parse(s.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				l.add(file, val.Line, "slack.api_url: %q is not an http(s) URL", redact.URL(s.APIURL))
				return
			}
			if !strings.HasSuffix(s.APIURL, "/") {
				s.APIURL += "/"
			}
		}
	})
}

// checks parses one checks.d file.
func (l *loader) checks(file string, b []byte) []Check {
	root := l.parse(file, b)
	if root == nil {
		return nil
	}
	var out []Check
	l.fields(file, root, []string{"checks"}, func(key string, k, v *yaml.Node) {
		if v.Kind != yaml.SequenceNode {
			l.add(file, v.Line, "checks: expected a list")
			return
		}
		for _, item := range v.Content {
			if c, ok := l.check(file, item); ok {
				out = append(out, c)
			}
		}
	})
	return out
}

var checkName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func (l *loader) check(file string, n *yaml.Node) (Check, bool) {
	c := Check{File: file, Line: n.Line, Timeout: DefaultTimeout,
		Alert: Alert{On: DefaultAlertOn(), After: DefaultAfter, MinVantages: DefaultMinVant}}
	before := len(l.errs)
	var urlLine, sendLine, minVantLine int
	known := []string{"name", "url", "tls", "direct", "schedule", "timeout", "origin", "headers", "token",
		"subprotocols", "send", "expect", "vantages", "alert"}
	l.fields(file, n, known, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			c.Name, _ = l.str(file, key, v)
			if !checkName.MatchString(c.Name) {
				l.add(file, v.Line, "name: %q may only use letters, digits, '.', '_' and '-'", c.Name)
			}
		case "url":
			urlLine = v.Line
			s, ok := l.str(file, key, v)
			if !ok {
				return
			}
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Hostname() == "" {
				l.add(file, v.Line, "url: %q must be a ws:// or wss:// URL with a host", redact.URL(s))
				return
			}
			if p := u.Port(); p != "" && !validPort(p) {
				l.add(file, v.Line, "url: %q: port must be 1-65535", redact.URL(s))
				return
			}
			c.URL = u
		case "tls":
			c.TLS = l.tls(file, v)
		case "direct":
			c.Direct = l.direct(file, v)
		case "schedule":
			c.Schedule, _ = l.str(file, key, v)
			sched, err := ParseSchedule(c.Schedule, l.now())
			switch {
			case errors.Is(err, ErrNeverFires):
				l.add(file, v.Line, "schedule: %q %v", c.Schedule, err)
			case errors.As(err, new(SyntaxError)):
				l.add(file, v.Line, "schedule: %q: %v (use 5 cron fields or a descriptor like \"@every 30s\")", c.Schedule, err)
			case err != nil:
				l.add(file, v.Line, "schedule: %q: %v", c.Schedule, err)
			default:
				c.Sched = sched
			}
		case "timeout":
			if d, ok := l.duration(file, key, v); ok {
				if d > MaxTimeout {
					l.add(file, v.Line, "timeout: %s is more than the maximum of %s", v.Value, MaxTimeout)
					return
				}
				c.Timeout = d
			}
		case "origin":
			c.Origin, _ = l.str(file, key, v)
		case "headers":
			c.Headers = l.stringMap(file, key, v)
		case "token":
			c.Token = l.token(file, v)
		case "subprotocols":
			c.Subprotocols = l.strings(file, key, v)
		case "send":
			sendLine = v.Line
			c.Send, _ = l.str(file, key, v)
		case "expect":
			s, ok := l.str(file, key, v)
			if !ok {
				return
			}
			re, err := regexp.Compile(s)
			if err != nil {
				l.add(file, v.Line, "expect: %v", err)
				return
			}
			c.Expect = re
		case "vantages":
			c.Vantages = l.strings(file, key, v)
			for _, name := range c.Vantages {
				l.vantageRef = append(l.vantageRef, vantageRef{file: file, name: name, line: v.Line})
			}
		case "alert":
			minVantLine = l.alert(file, v, &c.Alert)
		}
	})
	if c.Name == "" {
		l.add(file, n.Line, "check: name is required")
	} else if prev, dup := l.checkAt[c.Name]; dup {
		l.add(file, n.Line, "check %q is already defined at %s", c.Name, prev)
	} else {
		l.checkAt[c.Name] = file + ":" + itoa(n.Line)
	}
	if c.URL == nil && urlLine == 0 {
		l.add(file, n.Line, "check %q: url is required", c.Name)
	}
	if c.Schedule == "" {
		l.add(file, n.Line, "check %q: schedule is required", c.Name)
	}
	if c.Token != nil && c.Token.In == TokenInMessage && !strings.Contains(c.Send, "{token}") {
		line := sendLine
		if line == 0 {
			line = n.Line
		}
		l.add(file, line, "check %q: token in: message needs send with {token} in it", c.Name)
	}
	if nv := max(len(c.Vantages), 1); c.Alert.MinVantages > nv {
		l.add(file, minVantLine, "alert.min_vantages: %d is more than the check's %d vantage(s)", c.Alert.MinVantages, nv)
	}
	return c, len(l.errs) == before
}

func (l *loader) tls(file string, v *yaml.Node) TLS {
	var t TLS
	l.fields(file, v, []string{"ca_file", "server_name", "insecure_skip_verify"}, func(key string, k, val *yaml.Node) {
		switch key {
		case "ca_file":
			t.CAFile, _ = l.str(file, key, val)
			pool, err := readCA(t.CAFile)
			if err != nil {
				l.add(file, val.Line, "ca_file: %v", err)
			}
			t.Roots = pool
		case "server_name":
			t.ServerName, _ = l.str(file, key, val)
		case "insecure_skip_verify":
			t.InsecureSkipVerify, _ = l.boolean(file, key, val)
		}
	})
	return t
}

// LoadTLS builds a TLS setting outside a file (the probe command's flags).
func LoadTLS(caFile, serverName string, insecure bool) (TLS, error) {
	t := TLS{CAFile: caFile, ServerName: serverName, InsecureSkipVerify: insecure}
	if caFile != "" {
		pool, err := readCA(caFile)
		if err != nil {
			return t, fmt.Errorf("ca file: %w", err)
		}
		t.Roots = pool
	}
	return t, nil
}

func readCA(path string) (*x509.CertPool, error) {
	b, err := files.ReadRegular(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %s", path, pathErr(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func (l *loader) direct(file string, v *yaml.Node) *Direct {
	d := &Direct{}
	l.fields(file, v, []string{"address", "tls"}, func(key string, k, val *yaml.Node) {
		switch key {
		case "address":
			d.Address, _ = l.str(file, key, val)
			host, port, err := net.SplitHostPort(d.Address)
			if err != nil || host == "" || !validPort(port) {
				l.add(file, val.Line, "direct.address: %q must be host:port", d.Address)
			}
		case "tls":
			t := l.tls(file, val)
			d.TLS = &t
		}
	})
	if d.Address == "" {
		l.add(file, v.Line, "direct: address is required")
	}
	return d
}

// validPort is a TCP port a connection can go to.
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

func (l *loader) token(file string, v *yaml.Node) *Token {
	t := &Token{In: TokenInQuery}
	sources := 0
	l.fields(file, v, []string{"value", "file", "command", "in", "name"}, func(key string, k, val *yaml.Node) {
		switch key {
		case "value":
			t.Value, _ = l.str(file, key, val)
			sources++
		case "file":
			t.File, _ = l.str(file, key, val)
			sources++
		case "command":
			t.Command = l.strings(file, key, val)
			sources++
			if len(t.Command) == 0 {
				l.add(file, val.Line, "token.command: needs at least the program")
			}
		case "in":
			s, _ := l.str(file, key, val)
			t.In = TokenIn(s)
			switch t.In {
			case TokenInQuery, TokenInHeader, TokenInCookie, TokenInMessage:
			default:
				l.add(file, val.Line, "token.in: %q must be query, header, cookie or message", s)
			}
		case "name":
			t.Name, _ = l.str(file, key, val)
		}
	})
	if sources != 1 {
		l.add(file, v.Line, "token: set exactly one of value, file or command")
	}
	if t.Name == "" {
		t.Name = defaultTokenName(t.In)
	}
	return t
}

func (l *loader) alert(file string, v *yaml.Node, a *Alert) (minVantLine int) {
	l.fields(file, v, []string{"on", "after", "min_vantages", "remind", "channel"}, func(key string, k, val *yaml.Node) {
		switch key {
		case "on":
			if val.Kind != yaml.SequenceNode {
				l.add(file, val.Line, "alert.on: expected a list of statuses")
				return
			}
			a.On = nil
			for _, item := range val.Content {
				n, ok := l.integer(file, "alert.on", item)
				if ok && (n < 100 || n > 599) {
					l.add(file, item.Line, "alert.on: %d is not an HTTP status", n)
				}
				a.On = append(a.On, n)
			}
		case "after":
			if n, ok := l.integer(file, "alert.after", val); ok {
				if n < 1 {
					l.add(file, val.Line, "alert.after: must be 1 or more")
				}
				a.After = n
			}
		case "min_vantages":
			minVantLine = val.Line
			if n, ok := l.integer(file, "alert.min_vantages", val); ok {
				if n < 1 {
					l.add(file, val.Line, "alert.min_vantages: must be 1 or more")
				}
				a.MinVantages = n
			}
		case "remind":
			a.Remind, _ = l.duration(file, "alert.remind", val)
		case "channel":
			a.Channel, _ = l.str(file, "alert.channel", val)
		}
	})
	return minVantLine
}

// finish runs the checks that need the whole configuration.
func (l *loader) finish(cfg *Config) (*Config, error) {
	for _, r := range l.vantageRef {
		if r.name == cfg.Vantage {
			continue
		}
		if _, ok := cfg.Vantages[r.name]; !ok {
			l.add(r.file, r.line, "vantages: %q is neither this daemon's vantage (%s) nor one under vantages:", r.name, cfg.Vantage)
		}
	}
	if s := cfg.Slack; s.Token != "" && s.Channel == "" {
		for _, c := range cfg.Checks {
			if c.Alert.Channel == "" {
				l.add(l.mainFile, l.slackLine, "slack: a bot token needs channel (or alert.channel on every check; %q has none)", c.Name)
				break
			}
		}
	}
	if s := cfg.Slack; s.Token != "" && s.WebhookURL != "" {
		l.add(l.mainFile, l.slackLine, "slack: set webhook_url or token, not both")
	}
	if len(l.errs) > 0 {
		// Files in the order they were read, lines in order within a file.
		order := map[string]int{}
		for _, e := range l.errs {
			if _, ok := order[e.File]; !ok {
				order[e.File] = len(order)
			}
		}
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i], l.errs[j]
			if order[a.File] != order[b.File] {
				return order[a.File] < order[b.File]
			}
			return a.Line < b.Line
		})
		if l.dropped > 0 {
			l.errs = append(l.errs, &Error{File: l.mainFile, Msg: fmt.Sprintf("... and %d more errors not shown", l.dropped)})
		}
		return nil, l.errs
	}
	return cfg, nil
}
