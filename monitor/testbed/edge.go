package testbed

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EdgeOptions configure NewEdgeWith.
type EdgeOptions struct {
	// Upstream is the origin, host:port (plain HTTP); required.
	Upstream string
	// Mode and Deny are the initial mode and deny list (see SetMode).
	Mode EdgeMode
	Deny []string
	// TLS, when set, serves TLS with this config (cloned; NextProtos
	// defaults to http/1.1).
	TLS *tls.Config
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// Logger receives proxy errors at debug level; default discards.
	Logger *slog.Logger
}

// Edge is an in-process stand-in for the nginx edge, for the demo where
// nginx is not installed: an httputil.ReverseProxy (which tunnels upgrades)
// that answers like the configs EdgeConfig renders: Server: nginx on what it
// forwards and on its own pages (403 for a denied address, 502 when the
// upstream is down, byte for byte nginx's), the same challenge in WAF mode.
// One difference: in EdgeStripUpgrade mode it talks HTTP/1.1 to the upstream
// (nginx talks HTTP/1.0), so a WebSocket library there names the missing
// Connection header rather than the protocol version, with the same status.
type Edge struct {
	state  atomic.Pointer[edgeState]
	proxy  *httputil.ReverseProxy
	tr     *http.Transport
	srv    *http.Server
	ln     net.Listener
	tls    bool
	log    *slog.Logger
	served chan struct{}

	ctx    context.Context // canceled by Close: ends tunneled upgrades
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
}

type edgeState struct {
	mode EdgeMode
	deny []netip.Prefix
	raw  []string
}

// NewEdge starts an Edge on 127.0.0.1:0 in front of upstream (host:port).
func NewEdge(upstream string, mode EdgeMode) (*Edge, error) {
	return NewEdgeWith(EdgeOptions{Upstream: upstream, Mode: mode})
}

// NewEdgeWith starts an Edge.
func NewEdgeWith(opts EdgeOptions) (*Edge, error) {
	if _, _, err := net.SplitHostPort(opts.Upstream); err != nil {
		return nil, fmt.Errorf("testbed: edge upstream %q: %w", opts.Upstream, err)
	}
	e := &Edge{log: opts.Logger, served: make(chan struct{})}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := e.SetMode(opts.Mode, opts.Deny...); err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testbed: edge: %w", err)
	}
	e.ln = ln
	if opts.TLS != nil {
		cfg := opts.TLS.Clone()
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"http/1.1"}
		}
		e.ln = tls.NewListener(ln, cfg)
		e.tls = true
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	target := &url.URL{Scheme: "http", Host: opts.Upstream}
	e.tr = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   8,
		DisableCompression:    true, // no Accept-Encoding of our own, like nginx
	}
	e.proxy = &httputil.ReverseProxy{
		Transport: e.tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // like proxy_set_header Host $http_host
			pr.SetXForwarded()
			if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
				pr.Out.Header.Set("X-Real-IP", ip)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Set("Server", "nginx") // nginx replaces the upstream's Server
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			e.log.Debug("testbed edge: upstream error", "err", err)
			writeNginxError(w, http.StatusBadGateway)
		},
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.srv = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(e.served)
		_ = e.srv.Serve(e.ln)
	}()
	return e, nil
}

// Addr is the host:port the Edge listens on.
func (e *Edge) Addr() string { return e.ln.Addr().String() }

// URL is "ws://ADDR/ws", or "wss://ADDR/ws" with TLS.
func (e *Edge) URL() string {
	if e.tls {
		return "wss://" + e.Addr() + "/ws"
	}
	return "ws://" + e.Addr() + "/ws"
}

// SetMode switches mode and deny list (addresses or CIDR prefixes, used in
// EdgeDeny mode) atomically; requests already past the check are unaffected.
func (e *Edge) SetMode(mode EdgeMode, deny ...string) error {
	if mode < EdgePass || mode > EdgeDeny {
		return fmt.Errorf("testbed: unknown edge mode %v", mode)
	}
	st := &edgeState{mode: mode, raw: append([]string(nil), deny...)}
	for _, d := range deny {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			a, aerr := netip.ParseAddr(d)
			if aerr != nil {
				return fmt.Errorf("testbed: edge deny %q: not an address or prefix", d)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		st.deny = append(st.deny, p)
	}
	e.state.Store(st)
	return nil
}

// Mode returns the current mode and deny list.
func (e *Edge) Mode() (EdgeMode, []string) {
	st := e.state.Load()
	return st.mode, append([]string(nil), st.raw...)
}

// Close stops listening, ends tunneled connections and waits for every
// handler to return.
func (e *Edge) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	err := e.srv.Close()
	<-e.served
	e.inflight.Wait()
	e.tr.CloseIdleConnections()
	return err
}

// ServeHTTP applies the current mode.
func (e *Edge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		writeNginxError(w, http.StatusServiceUnavailable)
		return
	}
	e.inflight.Add(1)
	e.mu.Unlock()
	defer e.inflight.Done()

	st := e.state.Load()
	switch st.mode {
	case EdgeDeny:
		if denied(st.deny, r.RemoteAddr) {
			writeNginxError(w, http.StatusForbidden)
			return
		}
	case EdgeWAF403CloudflareLike:
		if strings.Contains(strings.ToLower(r.Header.Get("Upgrade")), "websocket") {
			writeChallenge(w)
			return
		}
	}
	// The upgrade tunnel ends when the request context does; tie it to
	// Close as well (after a hijack nothing else ends it).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()
	r = r.WithContext(ctx)
	if st.mode == EdgeStripUpgrade {
		// Without these ReverseProxy sees no upgrade and forwards a plain GET.
		r.Header = r.Header.Clone()
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
	}
	e.proxy.ServeHTTP(w, r)
}

func denied(deny []netip.Prefix, remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range deny {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func writeNginxError(w http.ResponseWriter, status int) {
	h := w.Header()
	h.Set("Server", "nginx")
	h.Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(nginxErrorPage(fmt.Sprintf("%d %s", status, http.StatusText(status)))))
}

func writeChallenge(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Server", challengeServer)
	h.Set("Cf-Ray", newRay())
	h.Set("Cf-Mitigated", challengeMitigated)
	h.Set("Content-Type", challengeContentType)
	h.Set("Cache-Control", challengeCacheControl)
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(ChallengePage))
}

// newRay makes a Cf-Ray value like the nginx config's: 16 hex digits, "-TST".
func newRay() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b) + "-TST"
}
