// Package report holds the evidence of handshake attempts and the verdict drawn
// from them. It is the one vocabulary every stage shares: the prober fills
// Attempts, the diagnosis reads them, state, notifier and the CLI print them.
// The JSON shape is a public contract (docs/report.schema.json, generated from these types); add fields, never
// rename them.
package report

import "time"

// Route says how an attempt reached the server.
type Route string

const (
	// RouteCDN dials the URL's host as DNS resolves it: what users do.
	RouteCDN Route = "cdn"
	// RouteDirect dials the configured origin address but keeps the URL's Host
	// header and TLS SNI, so the origin answers as if the CDN had asked.
	RouteDirect Route = "direct"
)

// Variant says how the request was shaped.
type Variant string

const (
	// VariantConfigured is the request as the check describes it. Only these
	// attempts feed alert series.
	VariantConfigured Variant = "configured"
	// VariantNoOrigin drops the Origin header, as curl or a server would.
	VariantNoOrigin Variant = "no-origin"
	// VariantSameOrigin sends the URL's own scheme and host as Origin.
	VariantSameOrigin Variant = "same-origin"
	// VariantNoToken drops the configured credential.
	VariantNoToken Variant = "no-token"
	// VariantBrowser is the request made as a browser: Chrome's profile
	// for a check made as wscanary, the other browser for one made as a
	// browser (refused through the CDN). It tells a bot rule from a broken
	// endpoint.
	VariantBrowser Variant = "browser"
)

// Transport is the HTTP version an attempt's WebSocket went over.
type Transport string

const (
	// TransportHTTP1 is the HTTP/1.1 Upgrade (RFC 6455), every client's.
	TransportHTTP1 Transport = "http1"
	// TransportHTTP2 is the extended CONNECT of RFC 8441, which Chrome and
	// Firefox use on an HTTP/2 connection to a host that advertises it.
	TransportHTTP2 Transport = "http2"
)

// OrHTTP1 is t, or http1 for evidence of a release before transports.
func (t Transport) OrHTTP1() Transport {
	if t == "" {
		return TransportHTTP1
	}
	return t
}

// Transports are the transports, the one every check has first.
var Transports = []Transport{TransportHTTP1, TransportHTTP2}

// Client names a client profile: what an attempt's opening handshake
// looks like on the wire (monitor/probe/profile.go makes it so).
type Client string

const (
	// ClientChrome is desktop Chrome's handshake, the default.
	ClientChrome Client = "chrome"
	// ClientFirefox is desktop Firefox's.
	ClientFirefox Client = "firefox"
	// ClientWscanary is wscanary's own minimal, identifiable request.
	ClientWscanary Client = "wscanary"
)

// Clients are the client profiles, the default first.
var Clients = []Client{ClientChrome, ClientFirefox, ClientWscanary}

// Browser reports whether the profile is a browser's.
func (c Client) Browser() bool { return c == ClientChrome || c == ClientFirefox }

// Error classes: the prefix of Attempt.Error, before ": detail".
const (
	ErrDNS      = "dns"
	ErrConnect  = "connect"
	ErrTLS      = "tls"
	ErrTimeout  = "timeout"
	ErrProtocol = "protocol"
	// ErrExpect marks a handshake that opened but whose send/expect exchange
	// failed; Status stays 101.
	ErrExpect = "expect"
)

// Outcome is what an attempt came to, the unit alert rules and incidents
// speak in (README, "What a failure means").
type Outcome string

const (
	// OutcomeUpgraded: 101, and the send/expect exchange passed if any.
	OutcomeUpgraded Outcome = "upgraded"
	// OutcomeRefused: an HTTP answer other than 101.
	OutcomeRefused Outcome = "refused"
	// OutcomeRejectedAfterOpen: 101, then a 1008/4000-4999 close or the
	// first reply did not match expect. Never a recovery.
	OutcomeRejectedAfterOpen Outcome = "rejected_after_open"
	// OutcomeNoAnswer: no HTTP answer (dns, connect, tls, timeout, protocol).
	OutcomeNoAnswer Outcome = "no_answer"
	// OutcomeNotOffered: the server offers no WebSocket over this
	// transport (an HTTP/2 attempt whose server chose HTTP/1.1, or did not
	// advertise extended CONNECT). Not a failure: browsers use HTTP/1.1.
	OutcomeNotOffered Outcome = "not_offered"
)

// Opened reports whether the server accepted the WebSocket: a 101 over
// HTTP/1.1, a 200 to the extended CONNECT over HTTP/2.
func (a Attempt) Opened() bool {
	return a.Status == 101 || a.Transport == TransportHTTP2 && a.Status == 200
}

// OutcomeOf classifies an attempt.
func OutcomeOf(a Attempt) Outcome {
	switch {
	case a.NotOffered != "":
		return OutcomeNotOffered
	case a.Status == 0:
		return OutcomeNoAnswer
	case !a.Opened():
		return OutcomeRefused
	case a.OK:
		return OutcomeUpgraded
	}
	return OutcomeRejectedAfterOpen
}

// Timings are the phases of one attempt in milliseconds. A phase that did not
// happen (no DNS for an IP literal, no TLS for ws://) stays 0.
type Timings struct {
	DNS       float64 `json:"dns"`
	Connect   float64 `json:"connect"`
	TLS       float64 `json:"tls"`
	FirstByte float64 `json:"first_byte"`
}

// Attempt is the evidence of one handshake: check x vantage x route x variant.
// Everything in it has been redacted and bounded by the prober; it is safe to
// log, post and serve.
type Attempt struct {
	Vantage string  `json:"vantage"`
	Route   Route   `json:"route"`
	Variant Variant `json:"variant"`
	// Transport is http1 or http2 ("" in reports of older releases: http1).
	Transport Transport `json:"transport,omitempty"`
	// NotOffered says why an HTTP/2 attempt found no WebSocket to open
	// (Outcome not_offered); "" otherwise.
	NotOffered string `json:"not_offered,omitempty"`
	// URL is redacted: credential-like query parameters read REDACTED.
	URL string `json:"url"`
	// Status is the HTTP status of the upgrade answer, 0 when none came back.
	Status int `json:"status"`
	// OK is true for a 101 (a 200 over HTTP/2) whose send/expect exchange
	// (if any) passed, and for an HTTP/2 attempt not offered.
	OK bool `json:"ok"`
	// Outcome is OutcomeOf the attempt.
	Outcome Outcome `json:"outcome"`
	// Error is "" or "class: detail" with class one of the Err* constants.
	Error string `json:"error"`
	// CloseCode is the WebSocket close code the server sent after opening, 0
	// when it did not close or never opened.
	CloseCode  int     `json:"close_code"`
	DurationMS float64 `json:"duration_ms"`
	TimingsMS  Timings `json:"timings_ms"`
	// Headers are the response headers (multi-valued ones joined by ", "),
	// with cookies and credentials redacted.
	Headers map[string]string `json:"headers"`
	// Body is the first 1 KiB of the response body of a non-101 answer.
	Body    string `json:"body"`
	TraceID string `json:"trace_id"`

	// Reason is the reason phrase of the status line ("Forbidden"), which
	// some servers use to say why.
	Reason string `json:"reason,omitempty"`
	// Origin is the Origin header that was sent ("" for none).
	Origin string `json:"origin,omitempty"`
	// Credential says where a credential was sent (query, header, cookie,
	// message), "" when none was. Never the credential itself.
	Credential string `json:"credential,omitempty"`
	// Subprotocol is the one the server selected.
	Subprotocol string `json:"subprotocol,omitempty"`
	// CertNotAfter is the expiry of the server's leaf certificate when TLS
	// completed (or failed on an expired certificate).
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// Reply is the start of the first message after open when the check
	// sends or expects one, bounded like Body.
	Reply string `json:"reply,omitempty"`
	// Peer is the address the connection went to (the proxy's for a proxy
	// vantage).
	Peer string `json:"peer,omitempty"`
	// CloseReason is the reason text of the server's close frame after
	// open ("invalid token"), bounded like Body.
	CloseReason string `json:"close_reason,omitempty"`
	// Client is the client profile the handshake was made as (chrome,
	// firefox, wscanary), JA4 the fingerprint of the TLS ClientHello it
	// sent (wss only), Extensions the Sec-WebSocket-Extensions offered and
	// ExtensionsAnswer the server's (in the 101).
	Client           string `json:"client,omitempty"`
	JA4              string `json:"ja4,omitempty"`
	Extensions       string `json:"extensions,omitempty"`
	ExtensionsAnswer string `json:"extensions_answer,omitempty"`
	// Protocol is the application protocol the check speaks after the
	// upgrade (socket.io, graphql-ws), "" for none.
	Protocol string `json:"protocol,omitempty"`
	// Steps are the scripted exchange's steps as they ran, in order, until
	// the first that failed; Messages the messages read meanwhile (bounded
	// in count and bytes, redacted); Refusal the protocol's own refusal
	// read from them ("not authorized" from Socket.IO's 44 packet).
	Steps []Step `json:"steps,omitempty"`
	// ReplyMS is the time from the upgrade to the first expected message
	// (the first step's expect, or expect:), 0 when none was expected or
	// it never came.
	ReplyMS  float64  `json:"reply_ms,omitempty"`
	Messages []string `json:"messages,omitempty"`
	Refusal  string   `json:"refusal,omitempty"`
	// Edge is the CDN, WAF or gateway the answer came from or through (a
	// vendor id, README "Edges"), Pop the edge location that handled it
	// ("FRA"); "" when the headers do not tell.
	Edge string `json:"edge,omitempty"`
	Pop  string `json:"pop,omitempty"`
	// Hop is who produced the answer (target, edge, gateway or
	// vantage_proxy), "" when nothing answered; Gateway the sign-in
	// gateway's id when one answered (README, "Gateways").
	Hop     Hop    `json:"hop,omitempty"`
	Gateway string `json:"gateway,omitempty"`
}

// Hop is who answered an attempt: what the request reached.
type Hop string

const (
	// HopTarget is the application (or a proxy that merely relayed its
	// answer).
	HopTarget Hop = "target"
	// HopEdge is a CDN, WAF or load balancer that answered itself.
	HopEdge Hop = "edge"
	// HopGateway is an identity-aware gateway that answered for the
	// application (its sign-in page, a redirect to its identity provider).
	HopGateway Hop = "gateway"
	// HopVantageProxy is the vantage's own egress proxy, which refused the
	// tunnel: the target was not reached from there.
	HopVantageProxy Hop = "vantage_proxy"
)

// Hops are every hop, for the schema.
var Hops = []Hop{HopTarget, HopEdge, HopGateway, HopVantageProxy}

// Step is one step of a scripted exchange after the upgrade, as it ran.
type Step struct {
	Name string `json:"name"`
	// Result is ok, refused (the protocol's refusal), closed (the server
	// closed), no_match (messages came, none matched), timeout (nothing
	// matched within the step's time) or send_failed.
	Result StepResult `json:"result"`
	MS     float64    `json:"ms"`
}

// StepResult is how a step ended.
type StepResult string

const (
	StepOK         StepResult = "ok"
	StepRefused    StepResult = "refused"
	StepClosed     StepResult = "closed"
	StepNoMatch    StepResult = "no_match"
	StepTimeout    StepResult = "timeout"
	StepSendFailed StepResult = "send_failed"
)

// FailedStep is the step that failed, if one did.
func (a Attempt) FailedStep() (Step, bool) {
	for _, s := range a.Steps {
		if s.Result != StepOK {
			return s, true
		}
	}
	return Step{}, false
}

// ErrorClass returns the class of a.Error ("dns", "tls", ...) or "".
func (a Attempt) ErrorClass() string {
	for i := 0; i < len(a.Error); i++ {
		if a.Error[i] == ':' {
			return a.Error[:i]
		}
	}
	return a.Error
}

// Cause is a stable identifier of why a run looks the way it does
// (README, "What a failure means"). Scripts and alert routing match on it.
type Cause string

const (
	CauseOK                    Cause = "ok"
	CauseCDNBlocked            Cause = "cdn_blocked"
	CauseProxyStrippedUpgrade  Cause = "proxy_stripped_upgrade"
	CauseVantageBlocked        Cause = "vantage_blocked"
	CauseOriginRejected        Cause = "origin_rejected"
	CauseOriginRequired        Cause = "origin_required"
	CauseTokenExpired          Cause = "token_expired"
	CauseAuthMissing           Cause = "auth_missing"
	CauseAuthRejected          Cause = "auth_rejected"
	CauseCSRFRejected          Cause = "csrf_rejected"
	CauseRateLimited           Cause = "rate_limited"
	CausePostHandshakeRejected Cause = "post_handshake_rejected"
	CauseNotFound              Cause = "not_found"
	CauseRedirect              Cause = "redirect"
	CauseServerError           Cause = "server_error"
	CauseUnexpectedStatus      Cause = "unexpected_status"
	CauseDNSError              Cause = "dns_error"
	CauseConnectError          Cause = "connect_error"
	CauseTLSError              Cause = "tls_error"
	CauseTimeout               Cause = "timeout"
	// CauseClientBlocked: the edge refuses this client's signature (its
	// User-Agent, headers or TLS hello) and admits a browser's: users are
	// likely fine. A warning, not an incident, unless alert.on names it.
	CauseClientBlocked Cause = "client_blocked"
	// CauseUnexpectedReply: the upgrade and the exchange's sends worked,
	// and the reply the check expects did not come (another reply, or none
	// in time), with no refusal and no close: the application answered
	// something else.
	CauseUnexpectedReply Cause = "unexpected_reply"
	// CauseH2PathBroken: the HTTP/1.1 upgrade works and the WebSocket over
	// HTTP/2 the server advertised (RFC 8441) does not: browsers that take
	// that path fail.
	CauseH2PathBroken Cause = "h2_path_broken"
	// CauseGatewayAuthRequired: an identity-aware gateway (oauth2-proxy,
	// Cloudflare Access, IAP, ...) answered instead of the application:
	// its sign-in page, a redirect to its identity provider, or its 401.
	// The fix is a credential the gateway accepts for machines.
	CauseGatewayAuthRequired Cause = "gateway_auth_required"
	// CauseVantageProxyRefused: the vantage's own egress proxy refused the
	// tunnel (its 403 page, a 407 for credentials, a CONNECT answered 5xx):
	// the target was not reached from that vantage.
	CauseVantageProxyRefused Cause = "vantage_proxy_refused"
	// CauseRunError: the run could not start its attempts (the token command
	// failed, say). Report.Error says why.
	CauseRunError Cause = "run_error"
)

// Causes are every cause, for alert.on and the schema.
var Causes = []Cause{CauseOK, CauseCDNBlocked, CauseProxyStrippedUpgrade, CauseVantageBlocked, CauseOriginRejected,
	CauseOriginRequired, CauseTokenExpired, CauseAuthMissing, CauseAuthRejected, CauseCSRFRejected, CauseRateLimited,
	CausePostHandshakeRejected, CauseNotFound, CauseRedirect, CauseServerError, CauseUnexpectedStatus, CauseDNSError,
	CauseConnectError, CauseTLSError, CauseTimeout, CauseClientBlocked, CauseH2PathBroken, CauseUnexpectedReply,
	CauseGatewayAuthRequired, CauseVantageProxyRefused, CauseRunError}

// Diagnosis is the verdict on one run: the most likely cause, where it shows,
// and what to change.
type Diagnosis struct {
	Cause Cause `json:"cause"`
	Route Route `json:"route"`
	// Transport is the cell's transport when the cause is one path's
	// (h2_path_broken), "" otherwise.
	Transport Transport `json:"transport,omitempty"`
	Vantage   string    `json:"vantage"`
	Vendor    string    `json:"vendor"`
	// Hop is who answered the attempt the verdict is about (target, edge,
	// gateway, vantage_proxy); Gateway names the sign-in gateway when one
	// answered behind a named edge (Vendor is then the edge's).
	Hop     Hop      `json:"hop,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	Summary string   `json:"summary"`
	Hints   []string `json:"hints"`
}

// Token is what the run's credential says about itself when it is a JWT
// (decoded, never verified): never the credential, only where it went and
// its time claims.
type Token struct {
	// In is query, header, cookie or message.
	In  string `json:"in"`
	JWT bool   `json:"jwt"`
	// Zero when absent.
	IssuedAt  time.Time `json:"issued_at,omitzero"`
	NotBefore time.Time `json:"not_before,omitzero"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Report is one run of one check: its attempts and the diagnosis.
type Report struct {
	Check     string    `json:"check"`
	OK        bool      `json:"ok"`
	Diagnosis Diagnosis `json:"diagnosis"`
	Attempts  []Attempt `json:"attempts"`
	// Error is set when the run failed before any attempt (token command,
	// unreadable token file).
	Error string `json:"error,omitempty"`
	// TraceID is the run's trace (every attempt's span is its child).
	TraceID string    `json:"trace_id,omitempty"`
	Started time.Time `json:"started,omitzero"`
	// Token describes the run's credential, nil without one.
	Token *Token `json:"token,omitempty"`
}
