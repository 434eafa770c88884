package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/net/proxy"
)

// transport builds a fresh single-use Transport for one attempt: every
// attempt must pay its own DNS, connect and TLS, or the timings lie.
func (p *Prober) transport(req Request, rec *recorder) *http.Transport {
	tlsConf := &tls.Config{}
	if req.TLS != nil {
		tlsConf = req.TLS.Clone()
	}
	if tlsConf.MinVersion == 0 {
		tlsConf.MinVersion = tls.VersionTLS12
	}
	// The upgrade is HTTP/1.1 only; never negotiate h2.
	tlsConf.NextProtos = []string{"http/1.1"}
	return &http.Transport{
		DialContext:            p.dialer(req, rec),
		TLSClientConfig:        tlsConf,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		ForceAttemptHTTP2:      false,
		Proxy:                  nil,
	}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

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
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CONNECT %s answered %s", addr, resp.Status)
	}
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
