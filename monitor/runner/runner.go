// Package runner makes one run of a check: its credential, an attempt per
// vantage x route x transport (variants after a failure), and the diagnosis.
package runner

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/diagnose"
	"github.com/wscanary/wscanary/monitor/probe"
	"github.com/wscanary/wscanary/monitor/protocol"
	"github.com/wscanary/wscanary/monitor/redact"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/telemetry"
)

// Runner performs runs. It holds no per-run state and is safe for
// concurrent use; the daemon and `wscanary check` share it.
type Runner struct {
	Prober *probe.Prober
	// Tracer records the wscanary.run span; nil means none.
	Tracer trace.Tracer
	// Metrics may be nil.
	Metrics *telemetry.Metrics
	// Self is this daemon's vantage name, SelfSource the address it dials
	// from ("" for the system's choice); Vantages the extra egress points.
	Self       string
	SelfSource string
	Vantages   map[string]config.Vantage
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Limit, when set, bounds concurrent attempts across all runs that
	// share it (a token per attempt).
	Limit chan struct{}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Run performs one run of a check: the configured request from every
// vantage on every route, then, only for the attempts that failed with an
// HTTP answer, the diagnostic variants. A healthy check therefore costs one
// handshake per vantage, route and transport.
func (r *Runner) Run(ctx context.Context, c *config.Check) report.Report {
	tracer := r.Tracer
	if tracer == nil {
		tracer = noop.NewTracerProvider().Tracer("")
	}
	start := r.now()
	ctx, span := tracer.Start(ctx, "wscanary.run", trace.WithAttributes(
		attribute.String("wscanary.check", c.Name),
		attribute.String("wscanary.vantage", r.Self),
		attribute.String("url.full", redact.URLValue(c.URL, tokenName(c))),
	))
	defer span.End()
	rep := report.Report{Check: c.Name, Started: start}
	if sc := span.SpanContext(); sc.HasTraceID() {
		rep.TraceID = sc.TraceID().String()
	}

	value, err := fetchToken(ctx, c.Token)
	if err != nil {
		rep.Error = err.Error()
		rep.Diagnosis = report.Diagnosis{Cause: report.CauseRunError, Summary: "The run could not start: " + err.Error(),
			Hints: []string{"Fix the token source of check " + c.Name + " (file permissions, command exit status)."}}
		span.SetStatus(codes.Error, rep.Error)
		span.SetAttributes(attribute.String("wscanary.cause", string(report.CauseRunError)))
		return rep
	}
	var cred *probe.Credential
	var tok *diagnose.Token
	if c.Token != nil {
		cred = &probe.Credential{Value: value, In: string(c.Token.In), Name: c.Token.Name}
		tok = tokenFacts(string(c.Token.In), value)
		rep.Token = tok
	}

	// The attempts' spans stay open until the run's diagnosis names their
	// cause; they end at each attempt's own end.
	var ends []func(report.Cause)
	defer func() {
		for _, end := range ends {
			end("")
		}
	}()
	base := r.requests(c, cred)
	configured := r.attemptAll(ctx, base, &ends)
	var variants []probe.Request
	for i, att := range configured {
		if att.OK || att.Status == 0 || att.Transport == report.TransportHTTP2 {
			// Variants explain HTTP refusals, not network failures; the
			// HTTP/1.1 attempt's variants explain an h2 refusal too, and
			// one that only HTTP/2 meets is its path's (h2_path_broken).
			continue
		}
		variants = append(variants, variantsOf(base[i], att, c)...)
	}
	rep.Attempts = append(configured, r.attemptAll(ctx, variants, &ends)...)

	rep.Diagnosis = diagnose.Diagnose(diagnose.Input{
		Attempts: rep.Attempts, Token: tok, Timeout: c.Timeout, Now: r.now(),
		ExpectConfigured: c.Expect != nil || c.Send != "",
	})
	rep.OK = true
	for _, a := range configured {
		rep.OK = rep.OK && a.OK
	}
	span.SetAttributes(attribute.String("wscanary.cause", string(rep.Diagnosis.Cause)))
	for i, end := range ends {
		end(causeOf(rep.Attempts[i], rep.Diagnosis))
	}
	ends = nil
	if !rep.OK {
		span.SetStatus(codes.Error, rep.Diagnosis.Summary)
	}
	return rep
}

// causeOf is the cause an attempt's span carries: ok for an attempt that
// went as expected, the run's cause for one that did not.
func causeOf(a report.Attempt, d report.Diagnosis) report.Cause {
	if a.OK {
		return report.CauseOK
	}
	return d.Cause
}

// attemptAll runs requests concurrently and returns their attempts in the
// same order, and appends to ends the function that ends each attempt's
// span, in the same order. Each attempt is bounded by its own timeout.
func (r *Runner) attemptAll(ctx context.Context, reqs []probe.Request, ends *[]func(report.Cause)) []report.Attempt {
	out := make([]report.Attempt, len(reqs))
	end := make([]func(report.Cause), len(reqs))
	defer func() { *ends = append(*ends, end...) }()
	if len(reqs) == 0 {
		return out
	}
	one := func(i int) {
		if r.Limit != nil {
			select {
			case r.Limit <- struct{}{}:
				defer func() { <-r.Limit }()
			case <-ctx.Done():
				// The run ended while it waited for a slot: no attempt.
				out[i], end[i] = notAttempted(reqs[i], ctx.Err()), func(report.Cause) {}
				return
			}
		}
		out[i], end[i] = r.Prober.AttemptSpan(ctx, reqs[i])
		if r.Metrics != nil {
			a := out[i]
			r.Metrics.Attempt(ctx, reqs[i].Check, a.Vantage, string(a.Route), string(a.Transport), string(a.Variant), a.Status, a.DurationMS/1000)
		}
	}
	// The last attempt runs on this goroutine: a check with one vantage and
	// one route, the common case, then costs no goroutine hand-off at all.
	var wg sync.WaitGroup
	for i := range len(reqs) - 1 {
		wg.Go(func() { one(i) })
	}
	one(len(reqs) - 1)
	wg.Wait()
	return out
}

// notAttempted is the evidence of an attempt that never started.
func notAttempted(req probe.Request, err error) report.Attempt {
	return report.Attempt{Vantage: req.Vantage.Name, Route: req.Route, Variant: req.Variant, Outcome: report.OutcomeNoAnswer,
		URL: redact.URLValue(req.URL), Error: report.ErrTimeout + ": not started: " + err.Error()}
}

// requests builds the configured request for every vantage and route, in
// the order the report lists them.
func (r *Runner) requests(c *config.Check, cred *probe.Credential) []probe.Request {
	vantages := c.Vantages
	if len(vantages) == 0 {
		vantages = []string{r.Self}
	}
	var out []probe.Request
	for _, name := range vantages {
		eg := probe.Egress{Name: name}
		if name == r.Self {
			eg.SourceAddress = r.SelfSource
		}
		if v, ok := r.Vantages[name]; ok && name != r.Self {
			eg.Proxy, eg.SourceAddress = v.Proxy, v.SourceAddress
		}
		req := probe.Request{
			Check: c.Name, URL: c.URL, Route: report.RouteCDN, Variant: report.VariantConfigured,
			Vantage: eg, TLS: tlsConfig(c.TLS), Origin: c.Origin, Header: headerOf(c.Headers),
			Subprotocols: c.Subprotocols, Credential: cred, Send: c.Send, Expect: c.Expect, Timeout: c.Timeout,
			Client: probe.Client(c.Client), NoTraceHeader: c.NoTraceHeader,
		}
		withSession(&req, c)
		routes := []probe.Request{req}
		if c.Direct != nil {
			d := req
			d.Route = report.RouteDirect
			d.DirectAddress = c.Direct.Address
			if c.Direct.TLS != nil {
				d.TLS = tlsConfig(*c.Direct.TLS)
			}
			routes = append(routes, d)
		}
		for _, rq := range routes {
			for _, t := range transports(c) {
				rq.Transport = t
				out = append(out, rq)
			}
		}
	}
	return out
}

// withSession adds the check's scripted exchange to a request: the
// protocol's session first (its subprotocol offered), then the check's
// own steps. The configuration was checked when it loaded.
func withSession(req *probe.Request, c *config.Check) {
	if c.Protocol != "" {
		sess, err := protocol.Open(c.Protocol, c.ProtocolOptions, c.Token != nil && c.Token.In == config.TokenInMessage)
		if err == nil {
			req.Protocol, req.Answer, req.Steps, req.Negotiate = c.Protocol, sess.Answer, sess.Steps, sess.Negotiate
			if sess.Subprotocol != "" && !slices.Contains(req.Subprotocols, sess.Subprotocol) {
				req.Subprotocols = append(slices.Clone(req.Subprotocols), sess.Subprotocol)
			}
		}
	}
	for _, st := range c.Steps {
		req.Steps = append(req.Steps, probe.Step{Send: st.Send, Expect: st.Expect, Within: st.Within})
	}
}

// transports are the check's, HTTP/1.1 alone for a check built without
// the configuration's defaults.
func transports(c *config.Check) []report.Transport {
	if len(c.Transports) == 0 {
		return []report.Transport{report.TransportHTTP1}
	}
	return c.Transports
}

// variantsOf derives the diagnostic requests for a failed configured one:
// each changes one thing, so the one that succeeds names the culprit.
func variantsOf(req probe.Request, att report.Attempt, c *config.Check) []probe.Request {
	var out []probe.Request
	// A refusal may be of this client's signature rather than of the
	// request: the same request as a browser tells (client_blocked).
	if b, ok := browserOf(probe.Client(req.Client), req.Route); ok && att.Status >= 400 && att.Status < 500 {
		v := req
		v.Variant, v.Client, v.Header = report.VariantBrowser, b, withoutUserAgent(req.Header)
		out = append(out, v)
	}
	if req.Origin != "" {
		v := req
		v.Variant, v.Origin = report.VariantNoOrigin, ""
		out = append(out, v)
	}
	if so := sameOrigin(c.URL); req.Origin != so {
		v := req
		v.Variant, v.Origin = report.VariantSameOrigin, so
		out = append(out, v)
	}
	if req.Credential != nil {
		v := req
		v.Variant, v.Credential = report.VariantNoToken, nil
		out = append(out, v)
	}
	return out
}

// browserOf is the profile of the browser variant: Chrome for a check made
// as wscanary; for a check made as a browser, the other browser, through
// the CDN only (where bot rules live).
func browserOf(c probe.Client, route report.Route) (probe.Client, bool) {
	switch c {
	case probe.ClientWscanary:
		return probe.ClientChrome, true
	case probe.ClientFirefox:
		return probe.ClientChrome, route == report.RouteCDN
	}
	return probe.ClientFirefox, route == report.RouteCDN
}

// withoutUserAgent is h without a configured User-Agent: the browser
// variant says the browser's.
func withoutUserAgent(h http.Header) http.Header {
	out := http.Header{}
	for k, vs := range h {
		if !strings.EqualFold(k, "User-Agent") {
			out[k] = vs
		}
	}
	return out
}

// sameOrigin is the Origin a page served from the WebSocket's own host
// would send.
func sameOrigin(u *url.URL) string {
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

func tlsConfig(t config.TLS) *tls.Config {
	if t.Roots == nil && t.ServerName == "" && !t.InsecureSkipVerify {
		return nil
	}
	return &tls.Config{RootCAs: t.Roots, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
}

func headerOf(h map[string]string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = []string{v}
	}
	return out
}

func tokenName(c *config.Check) string {
	if c.Token == nil {
		return ""
	}
	return c.Token.Name
}

// New wires a Runner for a configuration. tel may be nil (no spans,
// no metrics).
func New(cfg *config.Config, tel *telemetry.Telemetry) *Runner {
	r := &Runner{Prober: &probe.Prober{}, Self: cfg.Vantage, SelfSource: cfg.SourceAddress, Vantages: cfg.Vantages}
	if tel != nil {
		tr := tel.TracerProvider.Tracer("github.com/wscanary/wscanary")
		r.Tracer, r.Prober.Tracer, r.Prober.Propagator = tr, tr, tel.Propagator
		r.Metrics, r.Prober.Version = tel.Metrics, tel.Version
	}
	r.Prober.Edge = func(headers map[string]string, body string) (string, string) {
		return diagnose.Vendor(headers, body), diagnose.EdgePop(headers)
	}
	r.Prober.Hop = diagnose.Answered
	return r
}

// RunAll runs checks once each, at most parallel at a time, and returns
// their reports in the order given.
func (r *Runner) RunAll(ctx context.Context, checks []*config.Check, parallel int) []report.Report {
	if parallel < 1 {
		parallel = 1
	}
	out := make([]report.Report, len(checks))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = r.Run(ctx, c)
		})
	}
	wg.Wait()
	return out
}
