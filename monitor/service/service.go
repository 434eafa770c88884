// Package service is the process around the daemon: it opens the store and
// telemetry, serves the listener, takes Slack's clicks, answers SIGHUP and
// systemd, and stops everything within the unit's budget
// (docs/architecture.md, section 2).
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/wscanary/wscanary/monitor"
	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/delivery"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/notifier"
)

// ShutdownBudget bounds a stop, inside systemd's TimeoutStopSec=30s: runs
// get monitor.StopGrace, then delivery, state and telemetry the rest.
const ShutdownBudget = 25 * time.Second

// Options are what a service is started with.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Notifier and Targets deliver the messages; a nil Notifier means the
	// ones Config asks for (delivery.Build), printing to Stdout.
	Notifier notifier.Notifier
	Targets  map[string]notifier.Notifier
	Stdout   io.Writer
	Color    bool
	Version  string
	// OwnsProcess: the daemon sizes the process's garbage collector to
	// its checks (monitor/gctune); `wscanary run` says so, the demo not.
	OwnsProcess bool
}

// Service is one started daemon with its store, telemetry, listener and
// Slack socket. Stop ends all of them.
type Service struct {
	opts   Options
	daemon *monitor.Daemon
	store  *store.Store
	tel    *telemetry.Telemetry
	srv    *http.Server
	// debug serves /debug/pprof on debug_listen (nil: off).
	debug   *http.Server
	applied *config.Config // whose notifiers run
	// stopBG ends the watchdog and the Slack socket; listening is closed
	// when the socket has stopped.
	stopBG    context.CancelFunc
	listening chan struct{}
	stopOnce  sync.Once
}

// Start opens the store and telemetry of opts.Config, builds and starts
// the daemon, its listener and Slack's socket. The demo uses it too, so
// both run the same code.
func Start(ctx context.Context, opts Options) (*Service, error) {
	cfg, logger := opts.Config, opts.Logger
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	if opts.Notifier == nil {
		var err error
		if opts.Notifier, opts.Targets, err = delivery.Build(cfg, logger, opts.Stdout, opts.Color); err != nil {
			return nil, err
		}
	}
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: opts.Version, Vantage: cfg.Vantage, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	s := &Service{opts: opts, tel: tel, applied: cfg, listening: make(chan struct{})}
	if s.store, err = store.Open(ctx, store.Options{DSN: cfg.Store, Dir: cfg.StateDir, Logger: logger}); err != nil {
		tel.Shutdown(context.Background())
		return nil, err
	}
	s.daemon, err = monitor.NewDaemon(monitor.DaemonOptions{Config: cfg, Store: s.store, Notifier: opts.Notifier, Targets: opts.Targets,
		Telemetry: tel, Logger: logger, Version: opts.Version, TuneGC: opts.OwnsProcess})
	if err == nil && cfg.Listen != "" {
		s.srv, err = serveOn(cfg.Listen, s.daemon.Handler(s.tel.Handler), logger)
	}
	if err == nil && cfg.DebugListen != "" {
		s.debug, err = serveOn(cfg.DebugListen, debugHandler(), logger)
	}
	if err != nil {
		if s.srv != nil {
			s.srv.Close()
		}
		s.store.Close()
		tel.Shutdown(context.Background())
		return nil, err
	}
	s.daemon.Start()
	bg, stop := context.WithCancel(context.Background())
	s.stopBG = stop
	go watchdog(bg, s.daemon, logger)
	if cfg.Slack.AppToken == "" {
		close(s.listening)
		return s, nil
	}
	go func() {
		defer close(s.listening)
		notifier.Listen(bg, notifier.ListenOptions{AppToken: cfg.Slack.AppToken, APIURL: cfg.Slack.APIURL, Logger: logger,
			OnConnected: func(n int) { tel.Metrics.SlackConnected(n) }}, s.daemon.Act)
	}()
	return s, nil
}

// serveOn serves h on addr until Stop.
func serveOn(addr string, h http.Handler, logger *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("listener stopped", "addr", addr, "err", err)
		}
	}()
	return srv, nil
}

// debugHandler is Go's profiler (net/http/pprof) on a mux of its own: the
// package also registers on http.DefaultServeMux, which nothing serves.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Daemon is the running daemon (the demo reads its status).
func (s *Service) Daemon() *monitor.Daemon { return s.daemon }

// Serve tells systemd the daemon is ready, reloads on SIGHUP with load,
// and returns when ctx ends (SIGTERM); the caller then calls Stop.
func (s *Service) Serve(ctx context.Context, load func() (*config.Config, error)) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	s.notify(daemon.SdNotifyReady)
	for {
		select {
		case <-hup:
			s.notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
			next, err := load()
			if err != nil {
				s.rejected(err)
			} else {
				s.Reload(next)
			}
			s.notify(daemon.SdNotifyReady)
		case <-ctx.Done():
			s.notify(daemon.SdNotifyStopping)
			s.opts.Logger.Info("stopping: letting runs in flight finish")
			return
		}
	}
}

// rejected logs why a reload was refused, one configuration error a line.
func (s *Service) rejected(err error) {
	var errs config.Errors
	if !errors.As(err, &errs) {
		s.opts.Logger.Error("reload rejected, keeping the running configuration", "err", err)
		return
	}
	for _, e := range errs {
		s.opts.Logger.Error("reload rejected, keeping the running configuration", "error", e.Error())
	}
}

// Reload swaps in next: the schedule and rules at once, the notifiers when
// Slack's or notify:'s settings changed (a notifier held as broken is
// tried again at once); what needs a restart is said.
func (s *Service) Reload(next *config.Config) {
	logger := s.opts.Logger
	if later := config.RestartNeeded(s.opts.Config, next); len(later) > 0 {
		logger.Warn("these changes take effect at the next restart", "settings", later)
	}
	if config.NotifiersChanged(s.applied, next) {
		n, targets, err := delivery.Build(next, logger, s.opts.Stdout, s.opts.Color)
		if err != nil {
			logger.Error("reload: the new notifiers cannot be built, keeping the running ones", "err", err)
		} else {
			if later := s.daemon.SetNotifiers(n, targets); len(later) > 0 {
				logger.Warn("new notify: targets take effect at the next restart", "targets", later)
			}
			logger.Info("notifiers reloaded")
			s.applied = next
		}
	}
	s.daemon.Reload(next)
}

// Stop drains the daemon within ShutdownBudget and closes the rest. It may
// be called more than once.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		s.stopBG()
		<-s.listening // no click is acted on after the daemon stops
		logger := s.opts.Logger
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownBudget)
		defer cancel()
		if err := s.daemon.Stop(ctx); err != nil {
			logger.Error("stop", "err", err)
		}
		for _, srv := range []*http.Server{s.srv, s.debug} {
			if srv == nil {
				continue
			}
			if err := srv.Shutdown(ctx); err != nil {
				logger.Warn("listener shutdown", "addr", srv.Addr, "err", err)
			}
		}
		if err := s.store.Close(); err != nil {
			logger.Warn("store close", "err", err)
		}
		if err := s.tel.Shutdown(ctx); err != nil {
			logger.Warn("telemetry flush failed", "err", err)
		}
		logger.Info("stopped")
	})
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
				notifyState(logger, daemon.SdNotifyWatchdog)
			} else {
				logger.Warn("scheduler not ticking: withholding the watchdog ping")
			}
		}
	}
}

func (s *Service) notify(state string) { notifyState(s.opts.Logger, state) }

func notifyState(logger *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify failed", "err", err)
	}
}

// RunOnce runs checks once, at most parallel at a time, with telemetry
// from OTEL_* (flushed before it returns): `wscanary check` and `probe`.
func RunOnce(ctx context.Context, cfg *config.Config, checks []*config.Check, parallel int, version string, logger *slog.Logger) ([]report.Report, error) {
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: version, Vantage: cfg.Vantage, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	reps := runner.New(cfg, tel).RunAll(ctx, checks, parallel)
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(flushCtx); err != nil {
		logger.Warn("telemetry flush failed", "err", err)
	}
	return reps, nil
}
