package testbed

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// TokenIn says where the Origin looks for the token.
type TokenIn string

const (
	TokenInQuery   TokenIn = "query"   // URL query parameter TokenName (default "token")
	TokenInHeader  TokenIn = "header"  // header TokenName; default "Authorization: Bearer <token>"
	TokenInCookie  TokenIn = "cookie"  // cookie TokenName (default "token")
	TokenInMessage TokenIn = "message" // the first WebSocket message must contain the token
)

// Bodies and values the Origin answers with, exported so tests assert on the
// same strings.
const (
	WWWAuthenticate     = `Bearer realm="ws"`
	BodyMissingToken    = "missing token"
	BodyInvalidToken    = "invalid token"
	BodyOriginRequired  = "origin required"
	BodyOriginForbidden = "origin not allowed"
	CloseReasonNoToken  = "unauthorized"
	CloseCodeNoToken    = websocket.StatusCode(4003)
	// CSRFFailure is the sentence Django puts in its CSRF 403 page.
	CSRFFailure = "CSRF verification failed. Request aborted."
)

// Behavior is what an Origin does with a request. The zero value upgrades
// every WebSocket request and echoes. Rules apply in this order, the first
// that answers wins:
//
//  1. Hang: never answer (until the client leaves or the Origin closes).
//  2. HeaderDelay: wait, then go on.
//  3. Status != 0: answer Status, Headers, Body; no upgrade.
//  4. CSRF: 403 with a Django-like "CSRF verification failed" page.
//  5. Origin: RequireOrigin and no Origin header -> 403 BodyOriginRequired;
//     AllowedOrigins != nil and the Origin header present but not listed ->
//     403 BodyOriginForbidden.
//  6. Token in query, header or cookie: missing -> 401 BodyMissingToken with
//     WWW-Authenticate: Bearer realm="ws"; wrong -> 403 BodyInvalidToken.
//  7. Upgrade with github.com/coder/websocket (its origin check is off: the
//     rules above are the only ones). A request that is not a WebSocket
//     upgrade gets that library's answer: 426 Upgrade Required for HTTP/1.0
//     or a missing Upgrade/Connection header, 400 for a bad key or version.
//  8. Token in message: the first message must contain Token, else the
//     Origin closes with 4003 "unauthorized" (also when none comes within
//     MessageTimeout); a first message that holds it is answered like any.
//  9. Echo every message; "ping" is answered "pong".
type Behavior struct {
	// AllowedOrigins lists accepted Origin header values, compared exactly
	// but case-insensitively ("https://app.example.com"). nil accepts any
	// Origin, and none; a non-nil list still accepts a request without an
	// Origin header unless RequireOrigin is set.
	AllowedOrigins []string
	// RequireOrigin answers 403 to a request without an Origin header.
	RequireOrigin bool

	// Token is the credential required; "" requires none.
	Token string
	// TokenIn is where Token is looked for; default TokenInQuery.
	TokenIn TokenIn
	// TokenName is the query parameter, header or cookie name. Defaults:
	// "token" for query and cookie, "Authorization" for header, where the
	// value must then be "Bearer <Token>" (another header holds the bare token).
	TokenName string
	// MessageTimeout bounds the wait for the first message with TokenIn
	// message; default 5s.
	MessageTimeout time.Duration

	// CSRF answers every request 403 with a Django-like CSRF failure page.
	CSRF bool

	// Status, when not 0, is answered instead of upgrading, with Headers and
	// Body (404, 500, 302 with a Location header...). Content-Type defaults to
	// text/plain; charset=utf-8 when Body is set.
	Status  int
	Headers http.Header
	Body    string

	// HeaderDelay is slept before answering; it ends early when the client
	// goes away or the Origin closes.
	HeaderDelay time.Duration
	// Hang accepts the request and never answers.
	Hang bool

	// Subprotocols the upgrade may select, in server preference order.
	Subprotocols []string

	// CloseWith, when not 0, closes every upgraded connection with this
	// code once the first message came (or after a second without one),
	// as a first-message authentication that refuses (1008, 4003).
	CloseWith websocket.StatusCode
}

func (b Behavior) clone() Behavior {
	c := b
	if b.AllowedOrigins != nil {
		c.AllowedOrigins = append([]string{}, b.AllowedOrigins...)
	}
	if b.Headers != nil {
		c.Headers = b.Headers.Clone()
	}
	if b.Subprotocols != nil {
		c.Subprotocols = append([]string{}, b.Subprotocols...)
	}
	return c
}

// Request is what an Origin recorded about one request.
type Request struct {
	Time        time.Time
	Method      string
	Proto       string // "HTTP/1.1", "HTTP/1.0"
	Path        string
	Host        string // the Host header
	SNI         string // TLS ServerName from the ClientHello, "" on plain TCP
	RemoteIP    string
	Origin      string
	Traceparent string
	Header      http.Header
	Query       url.Values
	// UpgradeWebSocket: the Upgrade header names websocket.
	UpgradeWebSocket bool
	// ConnectionUpgrade: the Connection header holds the upgrade token.
	ConnectionUpgrade bool
	// Status answered; 0 while pending, and for a Hang.
	Status int
	// CloseCode the Origin closed an upgraded connection with (4003 for a
	// message without the token); 0 when the Origin did not close it.
	CloseCode int
}

// WantsUpgrade reports whether the request asked for a WebSocket upgrade
// (both Upgrade: websocket and Connection: upgrade).
func (r Request) WantsUpgrade() bool { return r.UpgradeWebSocket && r.ConnectionUpgrade }

func (r *Request) clone() Request {
	c := *r
	c.Header = r.Header.Clone()
	c.Query = url.Values(http.Header(r.Query).Clone())
	return c
}

// OriginOptions configure NewOrigin. The zero value serves plain ws:// on a
// free port of 127.0.0.1 and upgrades everything.
type OriginOptions struct {
	// Behavior is the initial behavior; change it later with Set or Update.
	Behavior Behavior
	// TLS, when set, serves wss:// with this config (cloned; NextProtos
	// defaults to http/1.1).
	TLS *tls.Config
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// Logger receives one debug line per request; default discards.
	Logger *slog.Logger
}

// Origin is a WebSocket origin server with switchable behavior. It is safe
// for concurrent use; behavior changes apply to the next request.
type Origin struct {
	behavior atomic.Pointer[Behavior]
	log      *slog.Logger
	srv      *http.Server
	ln       net.Listener
	tls      bool
	served   chan struct{}

	ctx    context.Context // canceled by Close: ends hangs, delays, upgraded conns
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	requests []*Request
}

// NewOrigin starts an Origin.
func NewOrigin(opts OriginOptions) (*Origin, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testbed: origin: %w", err)
	}
	o := &Origin{log: opts.Logger, ln: ln, served: make(chan struct{})}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.Set(opts.Behavior)
	o.ctx, o.cancel = context.WithCancel(context.Background())
	if opts.TLS != nil {
		cfg := opts.TLS.Clone()
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"http/1.1"}
		}
		o.ln = tls.NewListener(ln, cfg)
		o.tls = true
	}
	o.srv = &http.Server{
		Handler:           o,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(o.served)
		_ = o.srv.Serve(o.ln)
	}()
	return o, nil
}

// Addr is the host:port the Origin listens on.
func (o *Origin) Addr() string { return o.ln.Addr().String() }

// URL is "ws://ADDR/ws", or "wss://ADDR/ws" with TLS. Every path is served
// alike; the path is recorded.
func (o *Origin) URL() string {
	if o.tls {
		return "wss://" + o.Addr() + "/ws"
	}
	return "ws://" + o.Addr() + "/ws"
}

// Set replaces the behavior.
func (o *Origin) Set(b Behavior) {
	c := b.clone()
	o.behavior.Store(&c)
}

// Update changes the behavior atomically: f gets a copy of the current one.
func (o *Origin) Update(f func(*Behavior)) {
	for {
		old := o.behavior.Load()
		c := old.clone()
		f(&c)
		if o.behavior.CompareAndSwap(old, &c) {
			return
		}
	}
}

// Behavior returns a copy of the current behavior.
func (o *Origin) Behavior() Behavior { return o.behavior.Load().clone() }

// Requests returns a copy of the requests recorded since start or Reset,
// oldest first.
func (o *Origin) Requests() []Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Request, len(o.requests))
	for i, r := range o.requests {
		out[i] = r.clone()
	}
	return out
}

// Last returns the most recent request, false when none was recorded.
func (o *Origin) Last() (Request, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.requests) == 0 {
		return Request{}, false
	}
	return o.requests[len(o.requests)-1].clone(), true
}

// Reset forgets the recorded requests.
func (o *Origin) Reset() {
	o.mu.Lock()
	o.requests = nil
	o.mu.Unlock()
}

// Close stops listening, ends hanging and upgraded connections and waits for
// every handler to return.
func (o *Origin) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.mu.Unlock()
	o.cancel()
	err := o.srv.Close()
	<-o.served
	o.inflight.Wait()
	return err
}

func (o *Origin) record(r *http.Request) *Request {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	rec := &Request{
		Time:              time.Now(),
		Method:            r.Method,
		Proto:             r.Proto,
		Path:              r.URL.Path,
		Host:              r.Host,
		RemoteIP:          host,
		Origin:            r.Header.Get("Origin"),
		Traceparent:       r.Header.Get("Traceparent"),
		Header:            r.Header.Clone(),
		Query:             r.URL.Query(),
		UpgradeWebSocket:  headerHasToken(r.Header, "Upgrade", "websocket"),
		ConnectionUpgrade: headerHasToken(r.Header, "Connection", "upgrade"),
	}
	if r.TLS != nil {
		rec.SNI = r.TLS.ServerName
	}
	o.requests = append(o.requests, rec)
	return rec
}

func (o *Origin) setStatus(rec *Request, status, closeCode int) {
	o.mu.Lock()
	if status != 0 {
		rec.Status = status
	}
	if closeCode != 0 {
		rec.CloseCode = closeCode
	}
	o.mu.Unlock()
}

// ServeHTTP applies the current Behavior.
func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	o.inflight.Add(1)
	rec := o.record(r)
	o.mu.Unlock()
	defer o.inflight.Done()

	b := o.behavior.Load()
	sw := &statusWriter{ResponseWriter: w, onStatus: func(code int) { o.setStatus(rec, code, 0) }}
	closeCode := o.serve(sw, r, b)
	o.setStatus(rec, 0, closeCode)
	o.log.Debug("testbed origin", "method", r.Method, "host", r.Host, "remote", r.RemoteAddr,
		"origin", rec.Origin, "upgrade", rec.WantsUpgrade(), "status", sw.status, "close", closeCode)
}

// serve answers r; it returns the close code it sent on an upgraded
// connection, if any.
func (o *Origin) serve(w *statusWriter, r *http.Request, b *Behavior) int {
	// The request context ends when the client goes away (or, after a
	// hijack, never); o.ctx when the Origin closes.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(o.ctx, cancel)
	defer stop()

	if b.Hang {
		<-ctx.Done()
		return 0
	}
	if b.HeaderDelay > 0 {
		t := time.NewTimer(b.HeaderDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0
		}
	}
	if b.Status != 0 {
		for k, v := range b.Headers {
			w.Header()[k] = append([]string(nil), v...)
		}
		if b.Body != "" && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		w.WriteHeader(b.Status)
		_, _ = w.Write([]byte(b.Body))
		return 0
	}
	if b.CSRF {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Frame-Options", "DENY")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(CSRFPage))
		return 0
	}
	origin := r.Header.Get("Origin")
	if origin == "" && b.RequireOrigin {
		http.Error(w, BodyOriginRequired, http.StatusForbidden)
		return 0
	}
	if origin != "" && b.AllowedOrigins != nil && !containsFold(b.AllowedOrigins, origin) {
		http.Error(w, BodyOriginForbidden, http.StatusForbidden)
		return 0
	}
	if b.Token != "" && b.TokenIn != TokenInMessage {
		got, present := findToken(r, b)
		switch {
		case !present:
			w.Header().Set("WWW-Authenticate", WWWAuthenticate)
			http.Error(w, BodyMissingToken, http.StatusUnauthorized)
			return 0
		case got != b.Token:
			http.Error(w, BodyInvalidToken, http.StatusForbidden)
			return 0
		}
	}

	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // origin rules are ours, above
		Subprotocols:       b.Subprotocols,
	})
	if err != nil {
		return 0 // Accept has answered (426, 400...)
	}
	defer c.CloseNow()
	// After the hijack r.Context() is no longer tied to the connection:
	// only Close ends an upgraded conversation from this side.
	ctx = o.ctx

	if b.CloseWith != 0 {
		readCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, _, _ = c.Read(readCtx)
		cancel()
		_ = c.Close(b.CloseWith, "policy violation")
		return int(b.CloseWith)
	}
	if b.Token != "" && b.TokenIn == TokenInMessage {
		timeout := b.MessageTimeout
		if timeout <= 0 {
			timeout = 5 * time.Second
		}
		// A read deadline would make coder/websocket drop the TCP
		// connection; close properly with 4003 instead.
		var timedOut atomic.Bool
		fired := make(chan struct{})
		timer := time.AfterFunc(timeout, func() {
			defer close(fired)
			timedOut.Store(true)
			_ = c.Close(CloseCodeNoToken, CloseReasonNoToken)
		})
		typ, msg, err := c.Read(ctx)
		if !timer.Stop() {
			<-fired
		}
		switch {
		case timedOut.Load():
			return int(CloseCodeNoToken)
		case err != nil:
			return 0 // the client closed, or we are closing
		case !strings.Contains(string(msg), b.Token):
			_ = c.Close(CloseCodeNoToken, CloseReasonNoToken)
			return int(CloseCodeNoToken)
		}
		if err := reply(ctx, c, typ, msg); err != nil {
			return 0
		}
	}
	for {
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return 0
		}
		if err := reply(ctx, c, typ, msg); err != nil {
			return 0
		}
	}
}

func reply(ctx context.Context, c *websocket.Conn, typ websocket.MessageType, msg []byte) error {
	if string(msg) == "ping" {
		msg = []byte("pong")
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.Write(wctx, typ, msg)
}

// findToken returns the credential the request carries for rule b.
func findToken(r *http.Request, b *Behavior) (value string, present bool) {
	name := b.TokenName
	switch b.TokenIn {
	case TokenInHeader:
		if name == "" || strings.EqualFold(name, "Authorization") {
			v := r.Header.Get("Authorization")
			if v == "" {
				return "", false
			}
			if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				return strings.TrimSpace(v[7:]), true
			}
			return "", true // another scheme, or none: present but wrong
		}
		v := r.Header.Values(name)
		if len(v) == 0 {
			return "", false
		}
		return v[0], true
	case TokenInCookie:
		if name == "" {
			name = "token"
		}
		ck, err := r.Cookie(name)
		if err != nil {
			return "", false
		}
		return ck.Value, true
	default: // query
		if name == "" {
			name = "token"
		}
		q := r.URL.Query()
		if !q.Has(name) {
			return "", false
		}
		return q.Get(name), true
	}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// headerHasToken reports whether a comma-separated header holds token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// statusWriter reports the status written through it as it is written (an
// upgraded connection's handler runs long after its 101); Unwrap lets
// coder/websocket and http.ResponseController reach the Hijacker.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onStatus func(int)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.onStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
