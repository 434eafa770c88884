// Package web is the daemon's listener: /healthz, /status, /metrics and the
// status page, read from the engine's snapshot and the store, never written.
//
// It owns nothing but a cache of the page's timeline; every figure it shows
// comes from the store, or from the engine's memory while the store is away.
package web

import (
	"log/slog"
	"time"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/delivery"
	"github.com/wscanary/wscanary/monitor/engine"
	"github.com/wscanary/wscanary/monitor/store"
)

// Options are what the pages read.
type Options struct {
	Store  *store.Store
	Engine *engine.Engine
	// Config is the configuration in force; Healthy says whether the
	// scheduler ticks; Notifiers and Members are delivery's and the
	// fleet's states.
	Config    func() *config.Config
	Healthy   func() bool
	Notifiers func() []delivery.NotifierStatus
	Members   func() []store.Member
	Logger    *slog.Logger
	Now       func() time.Time
}

// Server serves the pages.
type Server struct {
	opts Options
	log  *slog.Logger
	page timelineCache
}

// New is a server of the pages.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: opts.Logger}
}

func (srv *Server) now() time.Time {
	if srv.opts.Now != nil {
		return srv.opts.Now()
	}
	return time.Now()
}
