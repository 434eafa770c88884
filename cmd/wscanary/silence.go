package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report/history"
	"github.com/wscanary/wscanary/monitor/store"
)

const silenceUsage = `add --check NAME [--vantage V] --for 2h --reason TEXT [--config FILE]
       wscanary silence list [--config FILE] [--output table|json]
       wscanary silence remove ID [--config FILE]

Silences stop a check (or one vantage of it) from opening an incident for a
while: runs and history go on, an open incident stays open and says so, and a
silence that ends while the check still fails lets the incident open then.
They live in the store of the configuration, beside the running daemon: with
a fleet (store: postgres://...), in every region at once.`

func cmdSilence(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{""}
	}
	switch args[0] {
	case "-h", "--help", "-help":
		fmt.Fprintf(stdout, "Usage: wscanary silence %s\n", silenceUsage)
		return exitOK
	case "":
		fmt.Fprintf(stderr, "Usage: wscanary silence %s\n", silenceUsage)
		return exitUsage
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
	cfgFlag := configFlag(fs)
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
	d, err := config.SilenceLength(*forFlag)
	switch {
	case *forFlag == "":
		problems = append(problems, "--for is required (30m, 2h, 3d)")
	case err != nil:
		problems = append(problems, "--for "+err.Error())
	}
	if strings.TrimSpace(*reason) == "" {
		problems = append(problems, "--reason is required: say why, for the people who will see the silence")
	}
	for _, p := range problems {
		fmt.Fprintf(stderr, "wscanary silence add: %s\n", p)
	}
	if len(problems) > 0 {
		return exitUsage
	}
	return withStore(ctx, "silence add", *cfgFlag, true, stderr, func(cfg *config.Config, st *store.Store) error {
		if cfg.Check(*check) == nil {
			return usageError{fmt.Errorf("no check %q in %s", *check, cfg.ChecksDir)}
		}
		now := time.Now()
		sl, err := st.AddSilence(ctx, store.Silence{Check: *check, Vantage: *vantage, Starts: now, Ends: now.Add(d),
			Reason: *reason, By: whoAmI(), Created: now})
		if err != nil {
			return err
		}
		where := "every vantage"
		if sl.Vantage != "" {
			where = "vantage " + sl.Vantage
		}
		fmt.Fprintf(stdout, "%s: %s (%s) silenced until %s\n", sl.ID, sl.Check, where, sl.Ends.Local().Format("2006-01-02 15:04 MST"))
		return nil
	})
}

func silenceList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("silence list", "[--config FILE] [--output table|json]\n\nThe silences that have not ended.", stderr)
	cfgFlag := configFlag(fs)
	output := fs.String("output", "table", "table or json")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if !outputOK("silence list", *output, stderr) {
		return exitUsage
	}
	return withStore(ctx, "silence list", *cfgFlag, true, stderr, func(_ *config.Config, st *store.Store) error {
		sls, err := st.Silences(ctx, time.Now())
		if err != nil {
			return err
		}
		return history.WriteSilences(stdout, sls, *output == "json")
	})
}

func silenceRemove(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("silence remove", "ID [--config FILE]\n\nEnd a silence now.", stderr)
	cfgFlag := configFlag(fs)
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
	return withStore(ctx, "silence remove", *cfgFlag, true, stderr, func(_ *config.Config, st *store.Store) error {
		if err := st.EndSilence(ctx, id, time.Now()); err != nil {
			if errors.Is(err, store.ErrNoSilence) {
				return usageError{err}
			}
			return err
		}
		fmt.Fprintf(stdout, "%s ended\n", id)
		return nil
	})
}

// usageError is a failure of what the person asked for (exit 2), not of
// the store.
type usageError struct{ error }

// withStore loads the configuration beside a running daemon and opens its
// store (to write: store.OpenBeside, which creates a store no daemon made
// yet), runs fn and closes the store; what fails is said on stderr, and
// the exit code follows usageError.
func withStore(ctx context.Context, cmd, cfgFlag string, write bool, stderr io.Writer, fn func(*config.Config, *store.Store) error) int {
	cfg, err := config.LoadWith(configPath(cfgFlag), config.Options{Beside: true})
	if err != nil {
		printConfigErrors(stderr, err)
		return exitUsage
	}
	opts := store.Options{DSN: cfg.Store, Dir: cfg.StateDir, Beside: true}
	open := store.Open
	if write {
		open = store.OpenBeside
	}
	st, err := open(ctx, opts)
	if err == nil {
		err = fn(cfg, st)
		st.Close()
	}
	if err != nil {
		fmt.Fprintf(stderr, "wscanary %s: %v\n", cmd, err)
		if errors.As(err, &usageError{}) {
			return exitUsage
		}
		return exitFailed
	}
	return exitOK
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
