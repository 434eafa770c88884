package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/service"
	"github.com/wscanary/wscanary/monitor/telemetry"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "[--config FILE]\n\nRun the daemon: schedule every check, alert on transitions, serve /healthz /status /metrics.\nSIGHUP reloads the configuration; SIGTERM drains and exits.", stderr)
	cfgFlag := configFlag(fs)
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	logger := telemetry.NewLogger(stderr, slog.LevelInfo)
	path := configPath(*cfgFlag)
	cfg, ok := loadConfig(path, stderr)
	if !ok {
		return exitUsage
	}
	svc, err := service.Start(ctx, service.Options{Config: cfg, Logger: logger, Stdout: stdout, Color: report.IsTerminal(stdout),
		Version: versionString(), OwnsProcess: true})
	if err != nil {
		logger.Error("cannot start", "err", err)
		return exitUsage
	}
	defer svc.Stop()
	logger.Info("wscanary running", "version", versionString(), "vantage", cfg.Vantage, "checks", len(cfg.Checks),
		"state_dir", cfg.StateDir, "listen", cfg.Listen)
	svc.Serve(ctx, func() (*config.Config, error) { return config.Load(path) })
	return exitOK
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
