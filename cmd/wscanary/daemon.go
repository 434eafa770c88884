package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/wscanary/wscanary/monitor"
	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/delivery"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
)

// shutdownBudget bounds a stop, inside systemd's TimeoutStopSec=30s.
const shutdownBudget = 25 * time.Second

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "[--config FILE]\n\nRun the daemon: schedule every check, alert on transitions, serve /healthz /status /metrics.\nSIGHUP reloads the configuration; SIGTERM drains and exits.", stderr)
	cfgFlag := fs.String("config", "", "main configuration file (default $WSCANARY_CONFIG or "+config.DefaultPath+")")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	logger := newLogger(stderr, slog.LevelInfo)
	monitor.TuneGC()
	path := configPath(*cfgFlag)
	opts := config.Options{}
	cfg, err := config.LoadWith(path, opts)
	if err != nil {
		printConfigErrors(stderr, err)
		return exitUsage
	}
	n, targets, err := delivery.Build(cfg, logger, stdout, isTerminal(stdout))
	if err != nil {
		logger.Error("cannot start", "err", err)
		return exitUsage
	}
	d, cleanup, err := startDaemonWith(ctx, cfg, logger, n, targets)
	if err != nil {
		logger.Error("cannot start", "err", err)
		return exitUsage
	}
	defer cleanup()

	applied := cfg // whose notifiers run
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	notify(logger, daemon.SdNotifyReady)
	logger.Info("wscanary running", "version", versionString(), "vantage", cfg.Vantage, "checks", len(cfg.Checks),
		"state_dir", cfg.StateDir, "listen", cfg.Listen)
	for {
		select {
		case <-hup:
			notify(logger, daemon.SdNotifyReloading+"\n"+daemon.SdNotifyMonotonicUsec())
			next, err := config.LoadWith(path, opts)
			if err != nil {
				var errs config.Errors
				if errors.As(err, &errs) {
					for _, e := range errs {
						logger.Error("reload rejected, keeping the running configuration", "error", e.Error())
					}
				} else {
					logger.Error("reload rejected, keeping the running configuration", "err", err)
				}
			} else {
				if next.Listen != cfg.Listen || next.StateDir != cfg.StateDir || next.Store != cfg.Store || next.Slack.AppToken != cfg.Slack.AppToken {
					logger.Warn("listen, state_dir, store and slack.app_token changes take effect at the next restart")
				}
				if !reflect.DeepEqual(next.Slack, applied.Slack) || !reflect.DeepEqual(next.Notify, applied.Notify) {
					// A new token or channel: the notifiers are rebuilt, and a
					// notifier held as broken is tried again at once.
					if err := reloadNotifiers(d, next, logger, stdout); err != nil {
						logger.Error("reload: the new notifiers cannot be built, keeping the running ones", "err", err)
					} else {
						applied = next
					}
				}
				d.Reload(next)
			}
			notify(logger, daemon.SdNotifyReady)
		case <-ctx.Done():
			notify(logger, daemon.SdNotifyStopping)
			logger.Info("stopping: letting runs in flight finish")
			return exitOK
		}
	}
}

// startDaemonWith builds and starts the daemon with its listener and
// watchdog; cleanup drains it. The demo uses it too, so both run the same
// code.
func startDaemonWith(ctx context.Context, cfg *config.Config, logger *slog.Logger, n notifier.Notifier, targets map[string]notifier.Notifier) (*monitor.Daemon, func(), error) {
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: versionString(), Vantage: cfg.Vantage, Logger: logger})
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry: %w", err)
	}
	st, err := store.Open(ctx, store.Options{DSN: cfg.Store, Dir: cfg.StateDir, Logger: logger})
	if err != nil {
		tel.Shutdown(context.Background())
		return nil, nil, err
	}
	d, err := monitor.NewDaemon(monitor.DaemonOptions{Config: cfg, Store: st, Notifier: n, Targets: targets, Telemetry: tel, Logger: logger,
		Version: versionString()})
	if err != nil {
		st.Close()
		tel.Shutdown(context.Background())
		return nil, nil, err
	}
	var srv *http.Server
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			st.Close()
			tel.Shutdown(context.Background())
			return nil, nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
		}
		srv = &http.Server{Handler: d.Handler(tel.Handler), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("listener stopped", "err", err)
			}
		}()
	}
	d.Start()
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	go watchdog(wdCtx, d, logger)
	listening := make(chan struct{})
	if cfg.Slack.AppToken != "" {
		go func() {
			defer close(listening)
			notifier.Listen(wdCtx, notifier.ListenOptions{AppToken: cfg.Slack.AppToken, APIURL: cfg.Slack.APIURL, Logger: logger,
				OnConnected: func(n int) { tel.Metrics.SlackConnected(n) }}, d.Act)
		}()
	} else {
		close(listening)
	}
	cleanup := func() {
		stopWatchdog()
		<-listening // no click is acted on after the daemon stops
		// Within the unit's TimeoutStopSec (30 s): runs get
		// monitor.StopGrace, then delivery, state and telemetry the rest.
		stopCtx, cancel := context.WithTimeout(context.Background(), shutdownBudget)
		defer cancel()
		if err := d.Stop(stopCtx); err != nil {
			logger.Error("stop", "err", err)
		}
		if srv != nil {
			if err := srv.Shutdown(stopCtx); err != nil {
				logger.Warn("listener shutdown", "err", err)
			}
		}
		if err := st.Close(); err != nil {
			logger.Warn("store close", "err", err)
		}
		if err := tel.Shutdown(stopCtx); err != nil {
			logger.Warn("telemetry flush failed", "err", err)
		}
		logger.Info("stopped")
	}
	return d, cleanup, nil
}

// reloadNotifiers swaps in the notifiers of cfg.
func reloadNotifiers(d *monitor.Daemon, cfg *config.Config, logger *slog.Logger, stdout io.Writer) error {
	n, targets, err := delivery.Build(cfg, logger, stdout, isTerminal(stdout))
	if err != nil {
		return err
	}
	if later := d.SetNotifiers(n, targets); len(later) > 0 {
		logger.Warn("new notify: targets take effect at the next restart", "targets", later)
	}
	logger.Info("notifiers reloaded")
	return nil
}

// watchdog pets systemd's watchdog only while the scheduler ticks, so a
// wedged daemon is restarted rather than reported healthy.
func watchdog(ctx context.Context, d *monitor.Daemon, logger *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d.Healthy() {
				notify(logger, daemon.SdNotifyWatchdog)
			} else {
				logger.Warn("scheduler not ticking: withholding the watchdog ping")
			}
		}
	}
}

func notify(logger *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify failed", "err", err)
	}
}

// cmdHealth is the container HEALTHCHECK: distroless images have no curl.
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("health", "[--url URL]\n\nExit 0 when the daemon's /healthz answers 200.", stderr)
	u := fs.String("url", "http://"+config.DefaultListen+"/healthz", "health endpoint")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(*u)
	if err != nil {
		fmt.Fprintln(stderr, "unhealthy:", err)
		return exitFailed
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "unhealthy:", resp.Status)
		return exitFailed
	}
	fmt.Fprintln(stdout, "healthy")
	return exitOK
}
