// Package probe performs one WebSocket opening handshake the way a browser
// would and keeps everything that came back as evidence: status, reason,
// headers, the start of the body, timings, the close code. It never decides
// why an attempt failed (that is package diagnose); it makes sure the
// evidence is complete, bounded and free of secrets.
package probe

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wscanary/wscanary/monitor/redact"
	"github.com/wscanary/wscanary/monitor/report"
)

// Limits on what a target can make us read. A monitor must never be the
// thing that falls over.
const (
	// MaxBody is how much of a non-101 body is kept.
	MaxBody = 1024
	// MaxResponseHeaderBytes bounds the status line plus headers.
	MaxResponseHeaderBytes = 64 << 10
	// MaxReply bounds the first message read after open.
	MaxReply = 64 << 10
	// DefaultTimeout applies when Request.Timeout is 0.
	DefaultTimeout = 10 * time.Second
	// sendGrace is how long an exchange without expect waits for the server
	// to answer or close after our message: long enough to catch a
	// first-message auth rejection, short enough to keep healthy runs cheap.
	sendGrace = time.Second
)

// Egress is where an attempt leaves from. The zero value is this daemon with
// the system's default route.
type Egress struct {
	// Name is the vantage name recorded in the attempt.
	Name string
	// Proxy is an http:// (CONNECT) or socks5:// / socks5h:// proxy.
	Proxy *url.URL
	// SourceAddress is a local IP to bind before dialing.
	SourceAddress string
}

// Credential is a resolved token and where it goes.
type Credential struct {
	Value string
	// In is query, header, cookie or message.
	In string
	// Name is the parameter, header or cookie name. For a header named
	// Authorization the value is sent as "Bearer <value>".
	Name string
}

// Request is one fully resolved attempt. The monitor builds it from a check;
// `wscanary probe` builds it from flags.
type Request struct {
	// Check names the check for spans; "" for ad-hoc probes.
	Check   string
	URL     *url.URL
	Route   report.Route
	Variant report.Variant
	Vantage Egress
	// DirectAddress is host:port to dial on the direct route. The Host
	// header and TLS SNI stay those of URL.
	DirectAddress string
	// TLS is the client configuration (roots, server name); nil means
	// system roots and the URL's host as server name. It is cloned.
	TLS          *tls.Config
	Origin       string
	Header       http.Header
	Subprotocols []string
	Credential   *Credential
	// Send is written after open; "{token}" is replaced by the credential
	// when Credential.In is "message".
	Send string
	// Expect must match the first message after open.
	Expect *regexp.Regexp
	// Steps, when set, are the scripted exchange after open (Send and
	// Expect are then not used); Protocol names the application protocol
	// they speak, for the evidence; Answer replies to the protocol's own
	// keep-alives read meanwhile (Socket.IO's ping).
	Steps    []Step
	Protocol string
	Answer   func(msg []byte) (reply []byte, ok bool)
	// Negotiate, when set, is an HTTP exchange before the WebSocket (a
	// SignalR endpoint's negotiate): it gets the WebSocket URL and a
	// client that goes the attempt's way (route, vantage, TLS), and
	// returns the URL to open, or the answer that refused it.
	Negotiate func(ctx context.Context, c *http.Client, u *url.URL, h http.Header) (*url.URL, *http.Response, error)
	Timeout   time.Duration
	// Client is the profile to make the handshake as; "" is ClientChrome.
	Client Client
	// Transport is http1 (the default, "") or http2: RFC 8441's extended
	// CONNECT on an HTTP/2 connection of its own (wss only).
	Transport report.Transport
	// NoTraceHeader sends no traceparent (an endpoint that judges unknown
	// headers); otherwise it is the one header added to the profile's.
	NoTraceHeader bool
}

// Prober makes attempts. The zero value works: no tracing, system dialer.
// A Prober is safe for concurrent use.
type Prober struct {
	// Tracer records a websocket.handshake span per attempt with children
	// for its phases. nil means no spans (and no trace id).
	Tracer trace.Tracer
	// Propagator injects traceparent into the upgrade request so the
	// server's logs carry the trace id. nil means W3C TraceContext.
	Propagator propagation.TextMapPropagator
	// Resolver, when set, replaces the system resolver (a vantage with its
	// own DNS view; tests point it at a local DNS server).
	Resolver *net.Resolver
	// Edge, when set, names the CDN or gateway an answer came from or
	// through and the edge location that handled it (Attempt.Edge, .Pop).
	Edge func(headers map[string]string, body string) (vendor, pop string)
	// Hop, when set, says who answered an attempt (Attempt.Hop) and names
	// the sign-in gateway when it was one. The prober itself knows only
	// its vantage's proxy.
	Hop func(report.Attempt) (report.Hop, string)
	// Version is wscanary's, for the wscanary profile's User-Agent.
	Version string
}

// Attempt performs one handshake and returns its evidence. It never returns
// an error: every failure is evidence, classified in Attempt.Error.
func (p *Prober) Attempt(ctx context.Context, req Request) report.Attempt {
	att, end := p.AttemptSpan(ctx, req)
	end("")
	return att
}

// AttemptSpan is Attempt with its span left open, so the cause the run's
// diagnosis gives the attempt (computed once, from every attempt of the
// run) reaches the span: end sets wscanary.cause ("" sets none) and ends
// the span at the attempt's own end. The caller must call end once.
func (p *Prober) AttemptSpan(ctx context.Context, req Request) (report.Attempt, func(report.Cause)) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	u, header, written, send := shape(req)
	secrets, tokenNames := secretsOf(req)
	transport := req.Transport.OrHTTP1()
	att := report.Attempt{
		Vantage:   req.Vantage.Name,
		Route:     req.Route,
		Variant:   req.Variant,
		Transport: transport,
		URL:       redact.URLValue(u, tokenNames...),
		Origin:    req.Origin,
	}
	if req.Credential != nil && req.Credential.Value != "" {
		att.Credential = req.Credential.In
	}
	prof := profileOf(req.Client)
	att.Client = string(prof.client)
	att.Protocol = req.Protocol
	att.Extensions = prof.offer

	tracer := p.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	ctx, span := tracer.Start(ctx, "websocket.handshake", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() { // attributes are built only for a span that keeps them
		span.SetAttributes(attemptAttrs(req, att.URL)...)
	}
	if sc := span.SpanContext(); sc.HasTraceID() {
		att.TraceID = sc.TraceID().String()
		if !req.NoTraceHeader {
			prop := p.Propagator
			if prop == nil {
				prop = propagation.TraceContext{}
			}
			prop.Inject(ctx, propagation.HeaderCarrier(header))
		}
	}

	rec := newRecorder()
	ctx = rec.withTrace(ctx)
	ua := "wscanary"
	if p.Version != "" {
		ua += "/" + p.Version
	}
	guard := &upgradeGuard{base: p.transport(req, rec, prof, ua, written, transport == report.TransportHTTP2), protocols: req.Subprotocols, offered: att.Extensions != ""}
	client := &http.Client{
		Transport: guard,
		// A monitor reports a redirect; it does not follow it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	opts := &websocket.DialOptions{HTTPClient: client, HTTPHeader: header, Subprotocols: req.Subprotocols,
		CompressionMode: websocket.CompressionDisabled}
	if att.Extensions != "" {
		// Offered as the browser does. Our own messages stay uncompressed
		// (allowed by RFC 7692, and the only way to honour a server's
		// client_max_window_bits below 15); the server's are inflated.
		opts.CompressionMode, opts.CompressionThreshold = websocket.CompressionContextTakeover, MaxReply+1
	}
	conn, resp, err := p.negotiate(ctx, req, rec, u, header)
	if resp == nil && err == nil {
		conn, resp, err = websocket.Dial(ctx, u.String(), opts)
	}
	rec.done = time.Now()
	rec.mu.Lock()
	att.Peer, att.JA4 = rec.peer, rec.ja4
	rec.mu.Unlock()
	att.ExtensionsAnswer = guard.answered
	rec.mu.Lock()
	h2 := rec.h2
	rec.mu.Unlock()
	switch {
	case h2 != nil && err == nil:
		// The server's own answer to the extended CONNECT, not the 101
		// the library was shown; its body is the WebSocket.
		real := *h2
		real.Body = nil
		fillResponse(&att, &real, tokenNames, secrets)
	case resp != nil:
		fillResponse(&att, resp, tokenNames, secrets)
	}
	att.CertNotAfter = rec.certNotAfter(err)

	switch {
	case errors.Is(err, errH2NotOffered):
		att.NotOffered = redact.Secrets(trimWS(err), secrets...)
		att.OK = true
	case err == nil:
		att.Status = http.StatusSwitchingProtocols
		if h2 != nil {
			att.Status = h2.StatusCode
		}
		att.Subprotocol = conn.Subprotocol()
		if len(req.Steps) > 0 {
			runSteps(ctx, conn, req, &att, secrets)
		} else {
			exchange(ctx, conn, req, send, &att, secrets)
		}
		rec.done = time.Now()
		// The evidence is complete; how the close goes says nothing new,
		// and a close handshake would let a silent server hold us.
		_ = conn.CloseNow()
	case resp != nil && resp.StatusCode != http.StatusSwitchingProtocols:
		// The server answered, just not with an upgrade: that is the
		// evidence, not an error of ours.
	default:
		// No usable answer: classify why. A 101 that failed verification
		// counts as no answer (the handshake did not complete).
		att.Status = 0
		att.Error = redact.Secrets(classify(ctx, err, rec, resp), secrets...)
		if pr := (*proxyRefusal)(nil); errors.As(err, &pr) {
			// The vantage's proxy answered, not the target: its answer is
			// the evidence, and says who gave it.
			fillResponse(&att, pr.resp, tokenNames, secrets)
			att.Hop = report.HopVantageProxy
		} else if px := (*proxyError)(nil); errors.As(err, &px) && strings.Contains(px.err.Error(), "not allowed by ruleset") {
			// A SOCKS5 proxy's refusal (RFC 1928 reply 2) has no page.
			att.Hop = report.HopVantageProxy
		}
	}
	att.OK = att.OK || att.Opened() && att.Error == ""
	att.Outcome = report.OutcomeOf(att)
	att.DurationMS = ms(rec.done.Sub(rec.start))
	att.TimingsMS = rec.timings()
	rec.spans(ctx, tracer, req)
	if p.Edge != nil && len(att.Headers) > 0 && att.Hop != report.HopVantageProxy {
		att.Edge, att.Pop = p.Edge(att.Headers, att.Body)
	}
	if p.Hop != nil && att.Hop == "" {
		att.Hop, att.Gateway = p.Hop(att)
	}

	finishSpan(span, att)
	ended := time.Now()
	return att, func(cause report.Cause) {
		if cause != "" {
			span.SetAttributes(attribute.String("wscanary.cause", string(cause)))
		}
		span.End(trace.WithTimestamp(ended))
	}
}

// negotiate makes the request's exchange before the WebSocket, if it
// has one, and points u at the WebSocket it names. When the endpoint
// refuses, its answer is returned as an upgrade's refusal would be (the
// same evidence, the same diagnosis), with an error.
func (p *Prober) negotiate(ctx context.Context, req Request, rec *recorder, u *url.URL, header http.Header) (*websocket.Conn, *http.Response, error) {
	if req.Negotiate == nil {
		return nil, nil, nil
	}
	nu, resp, err := req.Negotiate(ctx, p.negotiateClient(req, rec), u, header)
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("negotiate: %w", err)
	case resp != nil:
		// Kept like a refused upgrade's body: its start, then closed.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil, resp, fmt.Errorf("negotiate answered %s", resp.Status)
	}
	*u = *nu
	return nil, nil, nil
}

// shape applies the credential and returns the URL, headers and message to
// send. The request's own fields are not modified. written names every
// header the check sets (headers:, origin, its token) by canonical key, as
// the check wrote it: those are sent as written and win over the
// profile's.
func shape(req Request) (*url.URL, http.Header, map[string]string, string) {
	u := *req.URL
	header := http.Header{}
	written := map[string]string{}
	for k, vs := range req.Header {
		key := http.CanonicalHeaderKey(k)
		header[key] = append(header[key], vs...)
		written[key] = k
	}
	set := func(name, value string, add bool) {
		key := http.CanonicalHeaderKey(name)
		if add {
			header.Add(key, value)
		} else {
			header.Set(key, value)
		}
		if _, ok := written[key]; !ok {
			written[key] = name
		}
	}
	if req.Origin != "" {
		set("Origin", req.Origin, false)
	}
	send := withToken(req.Send, req.Credential)
	c := req.Credential
	if c == nil || c.Value == "" {
		return &u, header, written, send
	}
	switch c.In {
	case "query":
		q := u.Query()
		q.Set(cmp.Or(c.Name, "token"), c.Value)
		u.RawQuery = q.Encode()
	case "header":
		name := cmp.Or(c.Name, "Authorization")
		if strings.EqualFold(name, "Authorization") {
			set(name, "Bearer "+c.Value, false)
		} else {
			set(name, c.Value, false)
		}
	case "cookie":
		set("Cookie", (&http.Cookie{Name: cmp.Or(c.Name, "token"), Value: c.Value}).String(), true)
	}
	return &u, header, written, send
}

// secretsOf lists the literal values that must never be shown, and the
// names whose values are credentials. A server may echo any part of the
// request back (debug pages, some WAFs), so every configured value that
// could be a secret is on the list: the credential, every configured
// header value and cookie, URL and proxy userinfo (and the Basic
// credentials built from them), and credential-like query values.
func secretsOf(req Request) (values, names []string) {
	if c := req.Credential; c != nil {
		if c.Value != "" {
			values = append(values, c.Value)
		}
		if c.Name != "" {
			names = append(names, c.Name)
		}
	}
	for _, vs := range req.Header {
		for _, v := range vs {
			values = append(values, v)
			for _, c := range strings.Split(v, ";") {
				if _, val, ok := strings.Cut(c, "="); ok {
					values = append(values, strings.TrimSpace(val))
				}
			}
		}
	}
	values = append(values, userinfoSecrets(req.URL.User)...)
	if px := req.Vantage.Proxy; px != nil {
		values = append(values, userinfoSecrets(px.User)...)
	}
	for name, vs := range req.URL.Query() {
		if redact.IsCredentialParam(name, names...) {
			values = append(values, vs...)
		}
	}
	return values, names
}

// userinfoSecrets are a URL's password and the Basic credential net/http
// builds from user:password.
func userinfoSecrets(u *url.Userinfo) []string {
	if u == nil {
		return nil
	}
	pw, ok := u.Password()
	if !ok {
		return nil
	}
	return []string{pw, base64.StdEncoding.EncodeToString([]byte(u.Username() + ":" + pw))}
}

// exchange runs the optional send/expect after open and records the reply
// and any close code.
func exchange(ctx context.Context, conn *websocket.Conn, req Request, send string, att *report.Attempt, secrets []string) {
	if send == "" && req.Expect == nil {
		return
	}
	conn.SetReadLimit(MaxReply)
	opened := time.Now()
	if send != "" {
		if err := conn.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
			recordReadErr(ctx, err, att, "send", secrets)
			return
		}
	}
	readCtx := ctx
	if req.Expect == nil {
		var cancel context.CancelFunc
		readCtx, cancel = context.WithTimeout(ctx, sendGrace)
		defer cancel()
	}
	_, msg, err := conn.Read(readCtx)
	if err != nil {
		if req.Expect == nil && readCtx.Err() != nil && ctx.Err() == nil {
			return // no answer within the grace period: fine when nothing is expected
		}
		recordReadErr(ctx, err, att, "waiting for the first message", secrets)
		return
	}
	reply := string(msg)
	if len(reply) > MaxBody {
		reply = reply[:MaxBody]
	}
	att.Reply = redact.Secrets(strings.ToValidUTF8(reply, "?"), secrets...)
	if req.Expect != nil && !req.Expect.Match(msg) {
		att.Error = fmt.Sprintf("%s: first message did not match %q", report.ErrExpect, req.Expect.String())
	} else if req.Expect != nil {
		att.ReplyMS = ms(time.Since(opened))
	}
}

func recordReadErr(ctx context.Context, err error, att *report.Attempt, doing string, secrets []string) {
	if code := websocket.CloseStatus(err); code != -1 {
		att.CloseCode = int(code)
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			att.CloseReason = redact.Secrets(strings.ToValidUTF8(ce.Reason, "?"), secrets...)
		}
		if code != websocket.StatusNormalClosure {
			att.Error = fmt.Sprintf("%s: server closed with %d while %s", report.ErrExpect, code, doing)
		} else if att.Error == "" {
			att.Error = fmt.Sprintf("%s: server closed normally while %s", report.ErrExpect, doing)
		}
		return
	}
	if ctx.Err() != nil {
		att.Error = fmt.Sprintf("%s: no message within the timeout while %s", report.ErrExpect, doing)
		return
	}
	att.Error = fmt.Sprintf("%s: %s: %v", report.ErrExpect, doing, trimWS(err))
}

func finishSpan(span trace.Span, att report.Attempt) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(resultAttrs(att)...)
	if !att.OK {
		msg := att.Error
		if msg == "" {
			msg = fmt.Sprintf("status %d", att.Status)
		}
		span.SetStatus(codes.Error, msg)
	}
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
