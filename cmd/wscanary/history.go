package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/report/history"
	"github.com/wscanary/wscanary/monitor/store"
)

func cmdHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("history", "[--config FILE] [--check NAME] [--since 24h] [--output table|json]\n\nPer check, vantage and route over a window: runs, uptime, handshake time p50/p95,\nfailures by cause, and the incidents. Reads the store of the configuration\n(the running daemon's SQLite file in state_dir, or its PostgreSQL database).", stderr)
	cfgFlag := configFlag(fs)
	check := fs.String("check", "", "only this check")
	sinceFlag := fs.String("since", "24h", "how far back: a duration (36h, 7d)")
	output := fs.String("output", "table", "table or json")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	if !outputOK("history", *output, stderr) {
		return exitUsage
	}
	since, err := config.ParseDays(*sinceFlag)
	if err != nil || since <= 0 {
		fmt.Fprintf(stderr, "wscanary history: --since %q is not a positive duration like 24h or 7d\n", *sinceFlag)
		return exitUsage
	}
	return withStore(ctx, "history", *cfgFlag, false, stderr, func(cfg *config.Config, st *store.Store) error {
		now := time.Now()
		doc, err := history.Read(ctx, st, now.Add(-since), now, *check)
		if err != nil {
			return err
		}
		doc.AddWindows(cfg, *check)
		if *output == "json" {
			return doc.WriteJSON(stdout)
		}
		return doc.WriteTable(stdout)
	})
}
