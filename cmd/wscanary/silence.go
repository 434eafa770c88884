package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/store"
)

// maxSilence bounds a silence: one longer than this is a check to remove.
const maxSilence = 90 * config.Day

const silenceUsage = `add --check NAME [--vantage V] --for 2h --reason TEXT [--config FILE]
       wscanary silence list [--config FILE] [--output table|json]
       wscanary silence remove ID [--config FILE]

Silences stop a check (or one vantage of it) from opening an incident for a
while: runs and history go on, an open incident stays open and says so, and a
silence that ends while the check still fails lets the incident open then.
They live in the store of the configuration, beside the running daemon: with
a fleet (store: postgres://...), in every region at once.`

func cmdSilence(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(stdout, "Usage: wscanary silence %s\n", silenceUsage)
			return exitOK
		}
		fmt.Fprintf(stderr, "Usage: wscanary silence %s\n", silenceUsage)
		return exitUsage
	}
	switch args[0] {
	case "add":
		return silenceAdd(ctx, args[1:], stdout, stderr)
	case "list":
		return silenceList(ctx, args[1:], stdout, stderr)
	case "remove", "rm", "expire":
		return silenceRemove(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "wscanary silence: unknown subcommand %q\n\nUsage: wscanary silence %s\n", args[0], silenceUsage)
	return exitUsage
}

func silenceAdd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("silence add", "--check NAME [--vantage V] --for 2h --reason TEXT [--config FILE]\n\nSilence a check, or one vantage of it, from now for a while.", stderr)
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
	check := fs.String("check", "", "the check to silence (required)")
	vantage := fs.String("vantage", "", "only this vantage (a region of the fleet); default every vantage")
	forFlag := fs.String("for", "", "how long: 30m, 2h, 3d (required)")
	reason := fs.String("reason", "", "why, for the people who will see it (required)")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	var problems []string
	if *check == "" {
		problems = append(problems, "--check is required")
	}
	d, err := config.ParseDays(*forFlag)
	switch {
	case *forFlag == "":
		problems = append(problems, "--for is required (30m, 2h, 3d)")
	case err != nil || d <= 0:
		problems = append(problems, fmt.Sprintf("--for %q is not a positive duration like 2h or 3d", *forFlag))
	case d > maxSilence:
		problems = append(problems, fmt.Sprintf("--for %s is more than %d days: remove the check instead", *forFlag, maxSilence/config.Day))
	}
	if strings.TrimSpace(*reason) == "" {
		problems = append(problems, "--reason is required: say why, for the people who will see the silence")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stderr, "wscanary silence add: %s\n", p)
		}
		return exitUsage
	}
	cfg, code := loadBeside(*cfgFlag, stderr)
	if cfg == nil {
		return code
	}
	if cfg.Check(*check) == nil {
		fmt.Fprintf(stderr, "wscanary silence add: no check %q in %s\n", *check, cfg.ChecksDir)
		return exitUsage
	}
	st, code := openStoreBeside(ctx, "silence add", cfg, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	now := time.Now()
	sl, err := st.AddSilence(ctx, store.Silence{Check: *check, Vantage: *vantage, Starts: now, Ends: now.Add(d),
		Reason: *reason, By: whoAmI(), Created: now})
	if err != nil {
		fmt.Fprintf(stderr, "wscanary silence add: %v\n", err)
		return exitFailed
	}
	where := "every vantage"
	if sl.Vantage != "" {
		where = "vantage " + sl.Vantage
	}
	fmt.Fprintf(stdout, "%s: %s (%s) silenced until %s\n", sl.ID, sl.Check, where, sl.Ends.Local().Format("2006-01-02 15:04 MST"))
	return exitOK
}

func silenceList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("silence list", "[--config FILE] [--output table|json]\n\nThe silences that have not ended.", stderr)
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
	output := fs.String("output", "table", "table or json")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if !outputOK("silence list", *output, stderr) {
		return exitUsage
	}
	cfg, code := loadBeside(*cfgFlag, stderr)
	if cfg == nil {
		return code
	}
	st, code := openStoreBeside(ctx, "silence list", cfg, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	sls, err := st.Silences(ctx, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "wscanary silence list: %v\n", err)
		return exitFailed
	}
	if *output == "json" {
		if sls == nil {
			sls = []store.Silence{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sls); err != nil {
			return exitFailed
		}
		return exitOK
	}
	if len(sls) == 0 {
		fmt.Fprintln(stdout, "no silences")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCHECK\tVANTAGE\tFROM\tUNTIL\tBY\tREASON")
	for _, sl := range sls {
		v := sl.Vantage
		if v == "" {
			v = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sl.ID, sl.Check, v, sl.Starts.Local().Format("01-02 15:04"),
			sl.Ends.Local().Format("01-02 15:04"), sl.By, oneLine(sl.Reason, 60))
	}
	tw.Flush()
	return exitOK
}

func silenceRemove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("silence remove", "ID [--config FILE]\n\nEnd a silence now.", stderr)
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
	// The id comes first or last: flags may follow it.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" || fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != id) {
		fmt.Fprintln(stderr, "wscanary silence remove: give one silence id (see wscanary silence list)")
		return exitUsage
	}
	cfg, code := loadBeside(*cfgFlag, stderr)
	if cfg == nil {
		return code
	}
	st, code := openStoreBeside(ctx, "silence remove", cfg, stderr)
	if st == nil {
		return code
	}
	defer st.Close()
	if err := st.EndSilence(ctx, id, time.Now()); err != nil {
		fmt.Fprintf(stderr, "wscanary silence remove: %v\n", err)
		if errors.Is(err, store.ErrNoSilence) {
			return exitUsage
		}
		return exitFailed
	}
	fmt.Fprintf(stdout, "%s ended\n", id)
	return exitOK
}

// openStoreBeside opens the configuration's store to write beside a
// running daemon: PostgreSQL as usual (migrations are safe together), the
// daemon's SQLite file without its lock; a store no daemon created yet is
// created.
// It says why on stderr and returns nil and the exit code when it cannot.
func openStoreBeside(ctx context.Context, cmd string, cfg *config.Config, stderr io.Writer) (*store.Store, int) {
	opts := store.Options{DSN: cfg.Store, Dir: cfg.StateDir}
	if cfg.Store == "" {
		if _, err := os.Stat(filepath.Join(cfg.StateDir, store.FileName)); err == nil {
			opts.Beside = true
		}
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wscanary %s: %v\n", cmd, err)
		return nil, exitFailed
	}
	return st, exitOK
}

// whoAmI names the person at the terminal for the silence's record.
func whoAmI() string {
	name := os.Getenv("SUDO_USER")
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	host, _ := os.Hostname()
	if host != "" {
		return name + "@" + host
	}
	return name
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
