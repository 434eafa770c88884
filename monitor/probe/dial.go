package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// transport builds the one-shot round tripper for one attempt: every
// attempt pays its own DNS, connect and TLS, or the timings lie.
func (p *Prober) transport(req Request, rec *recorder, prof profile, ua string, written map[string]string, h2 bool) http.RoundTripper {
	tlsConf := tlsOf(req)
	// ALPN is the profile's (handshake): http/1.1 alone for the upgrade,
	// h2 first for the HTTP/2 path.
	return &oneShot{dial: p.dialer(req, rec), tls: tlsConf, rec: rec, prof: prof, ua: ua, written: written, h2: h2}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// upgradeGuard checks a 101 the way coder/websocket will, before it does.
// On a 101 it rejects, coder/websocket reads up to 1 KiB of the body with
// a 3 s timer, and the body of a 101 is the raw connection, which a silent
// server never ends: a broken 101 would cost 3 s. Ending that body at once
// keeps the verdict instant; the connection is closed with it.
type upgradeGuard struct {
	base      http.RoundTripper
	protocols []string
	// offered: permessage-deflate was offered. answered is the server's
	// Sec-WebSocket-Extensions in its 101.
	offered  bool
	answered string
}

func (g *upgradeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		return resp, err
	}
	g.answered = resp.Header.Get("Sec-WebSocket-Extensions")
	if g.offered && g.answered != "" {
		// coder/websocket knows every permessage-deflate parameter but
		// client_max_window_bits; our messages are not compressed, so the
		// window the server allows us does not matter.
		resp.Header.Set("Sec-WebSocket-Extensions", withoutParam(g.answered, "client_max_window_bits"))
	}
	if !validUpgrade(req, resp, g.protocols, g.offered) {
		resp.Body = eofBody{resp.Body}
	}
	return resp, nil
}

// withoutParam drops one parameter (with or without a value) from an
// extension header value.
func withoutParam(v, param string) string {
	parts := strings.Split(v, ";")
	out := parts[:0]
	for i, p := range parts {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
		if i > 0 && strings.EqualFold(name, param) {
			continue
		}
		out = append(out, strings.TrimSpace(p))
	}
	return strings.Join(out, "; ")
}

func validUpgrade(req *http.Request, resp *http.Response, protocols []string, offered bool) bool {
	h := resp.Header
	if !headerHasToken(h, "Connection", "upgrade") || !headerHasToken(h, "Upgrade", "websocket") {
		return false
	}
	sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if h.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return false
	}
	if p := h.Get("Sec-WebSocket-Protocol"); p != "" && !slices.Contains(protocols, p) {
		return false
	}
	ext := h.Get("Sec-WebSocket-Extensions")
	if offered {
		name, _, _ := strings.Cut(ext, ";")
		return ext == "" || strings.EqualFold(strings.TrimSpace(name), "permessage-deflate")
	}
	return ext == "" // none offered, none may be answered
}

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

// eofBody ends a rejected 101's body immediately and closes the connection
// under it.
type eofBody struct{ io.ReadCloser }

func (eofBody) Read([]byte) (int, error) { return 0, io.EOF }

// dialer returns the dial function for the request's route and vantage.
// TLS, when the URL is wss, is layered on top by the Transport, so a proxy
// tunnel carries TLS end to end exactly as a browser's would.
func (p *Prober) dialer(req Request, rec *recorder) dialFunc {
	base := &net.Dialer{KeepAlive: -1, Resolver: p.Resolver}
	if req.Vantage.SourceAddress != "" {
		base.LocalAddr = &net.TCPAddr{IP: net.ParseIP(req.Vantage.SourceAddress)}
	}
	target := func(addr string) string {
		if req.DirectAddress != "" {
			return req.DirectAddress
		}
		return addr
	}
	px := req.Vantage.Proxy
	switch {
	case px == nil:
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := base.DialContext(ctx, network, target(addr))
			if err == nil {
				rec.setPeer(c.RemoteAddr().String())
			}
			return c, err
		}
	case px.Scheme == "socks5" || px.Scheme == "socks5h":
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			var auth *proxy.Auth
			if px.User != nil {
				pw, _ := px.User.Password()
				auth = &proxy.Auth{User: px.User.Username(), Password: pw}
			}
			d, err := proxy.SOCKS5("tcp", px.Host, auth, base)
			if err != nil {
				return nil, fmt.Errorf("socks5 proxy %s: %w", px.Host, err)
			}
			rec.proxyStart = time.Now()
			c, err := d.(proxy.ContextDialer).DialContext(ctx, network, target(addr))
			rec.proxyDone = time.Now()
			if err != nil {
				return nil, &proxyError{proxy: px.Host, err: err}
			}
			rec.setPeer(px.Host)
			return c, nil
		}
	default: // http: CONNECT for ws:// and wss:// alike, as browsers do
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := base.DialContext(ctx, network, px.Host)
			if err != nil {
				return nil, err
			}
			rec.setPeer(c.RemoteAddr().String())
			rec.proxyStart = time.Now()
			tc, err := connectTunnel(ctx, c, px, target(addr))
			rec.proxyDone = time.Now()
			if err != nil {
				c.Close()
				return nil, &proxyError{proxy: px.Host, err: err}
			}
			return tc, nil
		}
	}
}

// proxyError marks a failure of the vantage's proxy rather than the target.
type proxyError struct {
	proxy string
	err   error
}

func (e *proxyError) Error() string { return fmt.Sprintf("proxy %s: %v", e.proxy, e.err) }
func (e *proxyError) Unwrap() error { return e.err }

// proxyRefusal is an HTTP proxy's answer other than 200 to CONNECT: the
// vantage's proxy refused the tunnel itself, and the target was not
// reached.
type proxyRefusal struct {
	resp *http.Response
	addr string
}

func (e *proxyRefusal) Error() string {
	return fmt.Sprintf("CONNECT %s answered %s", e.addr, e.resp.Status)
}

// connectTunnel asks an HTTP proxy for a CONNECT tunnel to addr on c.
func connectTunnel(ctx context.Context, c net.Conn, px *url.URL, addr string) (net.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
		defer c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: http.Header{},
	}
	if px.User != nil {
		pw, _ := px.User.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(px.User.Username() + ":" + pw))
		req.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if err := req.Write(c); err != nil {
		return nil, fmt.Errorf("send CONNECT: %w", err)
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("read CONNECT answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The proxy's own answer is the evidence (Squid's error page, a
		// 407's Proxy-Authenticate): kept like a refused upgrade's, its
		// body bounded. The caller closes c.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil, &proxyRefusal{resp: resp, addr: addr}
	}
	resp.Body.Close() // a 2xx to CONNECT has no body: nothing to drain
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

// bufferedConn keeps bytes the proxy sent right after its 200.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// negotiateClient is an HTTP client for an exchange before the WebSocket
// that goes the attempt's way: its dialer (route, vantage, proxy) and TLS.
func (p *Prober) negotiateClient(req Request, rec *recorder) *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: p.dialer(req, rec), TLSClientConfig: tlsOf(req), DisableKeepAlives: true,
			MaxResponseHeaderBytes: MaxResponseHeaderBytes},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// tlsOf is the attempt's TLS configuration, its own copy, TLS 1.2 at
// least.
func tlsOf(req Request) *tls.Config {
	c := &tls.Config{}
	if req.TLS != nil {
		c = req.TLS.Clone()
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}
