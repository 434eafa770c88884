package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wscanary/wscanary/monitor/internal/files"
)

// Options change how a configuration is loaded; the zero value reads the
// process environment and the file system.
type Options struct {
	// Beside loads for a command that works on the store beside the daemon
	// (history, silence) and needs none of its secrets: an unset ${VAR}
	// reads as empty, except in store and state_dir, which say where the
	// store is. An operator's shell has no Slack token in its environment.
	Beside bool
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
	l.fleet = cfg.Store != ""
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
	l.fleet = cfg.Store != ""
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
	// fleet: the store is shared, so min_vantages counts the vantages of
	// every member, not this file's.
	fleet bool
	// beside: Options.Beside.
	beside bool
	// dropped counts errors past MaxErrors.
	dropped int
}

type vantageRef struct {
	file, name string
	line       int
}

func newLoader(opts Options) *loader {
	l := &loader{lookup: opts.Lookup, now: opts.Now, checkAt: map[string]string{}, beside: opts.Beside}
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

// count is every problem found so far, shown or not.
func (l *loader) count() int { return len(l.errs) + l.dropped }

// client reads a client profile's name.
func (l *loader) client(file, key string, v *yaml.Node) string {
	s, ok := l.str(file, key, v)
	if !ok {
		return ""
	}
	if !slices.Contains(ClientNames, s) {
		l.add(file, v.Line, "%s: %q is not a client profile (%s)", key, s, strings.Join(ClientNames, ", "))
		return ""
	}
	return s
}

// finish runs the checks that need the whole configuration.
func (l *loader) finish(cfg *Config) (*Config, error) {
	if cfg.Client == "" {
		cfg.Client = DefaultClient
	}
	for i := range cfg.Checks {
		if cfg.Checks[i].Client == "" {
			cfg.Checks[i].Client = cfg.Client
		}
	}
	for _, r := range l.vantageRef {
		if r.name == cfg.Vantage {
			continue
		}
		if _, ok := cfg.Vantages[r.name]; !ok {
			l.add(r.file, r.line, "vantages: %q is neither this daemon's vantage (%s) nor one under vantages:", r.name, cfg.Vantage)
		}
	}
	applyRoutes(cfg)
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
	checkNotify(cfg, l)
	checkDepends(cfg, l)
	if s := cfg.Slack; s.AppToken != "" && s.Token == "" {
		l.add(l.mainFile, l.slackLine, "slack: app_token needs a bot token (buttons act on messages the bot posted)")
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
	cfg.buildIndex()
	return cfg, nil
}
