// Package demo is `wscanary demo`: a small world of its own on 127.0.0.1
// (a CDN-like edge in front of a WebSocket origin that checks the Origin and
// a token), a script that breaks and mends it, and what the demo prints
// around the real daemon's output. It is part of the product binary, so it
// holds none of the test harness (nginx, proxies, fakes) of package testbed.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// EdgeMode is how the demo's edge treats WebSocket upgrades.
type EdgeMode int32

const (
	// EdgePass forwards everything, upgrades included.
	EdgePass EdgeMode = iota
	// EdgeChallenge answers upgrades with a Cloudflare-style challenge
	// (403, Cf-Mitigated: challenge), like a WAF rule gone wrong.
	EdgeChallenge
	// EdgeStripUpgrade forwards without Upgrade and Connection, like a
	// proxy config that forgot them: the origin never sees an upgrade.
	EdgeStripUpgrade
)

// Edge is the demo's CDN: a reverse proxy (which tunnels upgrades) that
// introduces itself as nginx.
type Edge struct {
	mode  atomic.Int32
	proxy *httputil.ReverseProxy
	srv   *http.Server
	ln    net.Listener
}

// NewEdge starts an Edge on 127.0.0.1 in front of upstream (host:port).
func NewEdge(upstream string) (*Edge, error) {
	target := &url.URL{Scheme: "http", Host: upstream}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Edge{ln: ln}
	e.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Server", "nginx")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.Header().Set("Server", "nginx")
			http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		},
	}
	e.srv = &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second}
	go e.srv.Serve(ln)
	return e, nil
}

// Addr is host:port of the edge.
func (e *Edge) Addr() string { return e.ln.Addr().String() }

// SetMode changes how upgrades are treated from the next request on.
func (e *Edge) SetMode(m EdgeMode) { e.mode.Store(int32(m)) }

// Close stops the edge and ends tunnelled connections.
func (e *Edge) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	e.srv.Close()
	return err
}

func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	switch EdgeMode(e.mode.Load()) {
	case EdgeChallenge:
		if upgrade {
			b := make([]byte, 8)
			rand.Read(b)
			h := w.Header()
			h.Set("Server", "cloudflare")
			h.Set("Cf-Ray", hex.EncodeToString(b)+"-DEMO")
			h.Set("Cf-Mitigated", "challenge")
			h.Set("Content-Type", "text/html; charset=UTF-8")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser before accessing the site.</body></html>"))
			return
		}
	case EdgeStripUpgrade:
		r = r.Clone(r.Context())
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
	}
	e.proxy.ServeHTTP(w, r)
}

// Origin is the demo's WebSocket server: it upgrades only an allowed
// Origin with the current token in the query, then, when first-message
// authentication is on, expects {"type":"hello"} and answers "welcome".
type Origin struct {
	mu       sync.Mutex
	allowed  []string
	token    string
	rejectFM bool // refuse the first message (close 4003), as a broken auth service would

	srv *http.Server
	ln  net.Listener
}

// NewOrigin starts an Origin on 127.0.0.1 that allows these origins.
func NewOrigin(allowed ...string) (*Origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &Origin{allowed: allowed, ln: ln}
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 5 * time.Second}
	go o.srv.Serve(ln)
	return o, nil
}

// Addr is host:port of the origin.
func (o *Origin) Addr() string { return o.ln.Addr().String() }

// Allow replaces the Origin allowlist.
func (o *Origin) Allow(origins ...string) {
	o.mu.Lock()
	o.allowed = origins
	o.mu.Unlock()
}

// SetToken sets the one token the origin accepts.
func (o *Origin) SetToken(tok string) {
	o.mu.Lock()
	o.token = tok
	o.mu.Unlock()
}

// RejectFirstMessage makes the origin close every connection with 4003
// after the client's first message (first-message authentication failing).
func (o *Origin) RejectFirstMessage(on bool) {
	o.mu.Lock()
	o.rejectFM = on
	o.mu.Unlock()
}

// Close stops the origin.
func (o *Origin) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := o.srv.Shutdown(ctx)
	o.srv.Close()
	return err
}

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	allowed, token, rejectFM := o.allowed, o.token, o.rejectFM
	o.mu.Unlock()
	if origin := r.Header.Get("Origin"); origin != "" && !slices.Contains(allowed, origin) {
		http.Error(w, "Forbidden: origin not allowed", http.StatusForbidden)
		return
	}
	if r.URL.Query().Get("token") != token {
		w.Header().Set("WWW-Authenticate", `Bearer realm="demo", error="invalid_token"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered (426 for a request the edge stripped)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	_, msg, err := c.Read(ctx)
	if err != nil {
		return
	}
	if rejectFM {
		c.Close(4003, "authentication failed")
		return
	}
	reply := "welcome"
	if !strings.Contains(string(msg), "hello") {
		reply = "unknown message"
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(reply)); err != nil && !errors.Is(err, context.Canceled) {
		return
	}
	c.Close(websocket.StatusNormalClosure, "")
}
