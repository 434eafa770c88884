package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	utls "github.com/refraction-networking/utls"
)

// errHeaderTooLarge is what a server that never ends its headers gets.
var errHeaderTooLarge = fmt.Errorf("server response headers exceeded %d bytes", MaxResponseHeaderBytes)

// oneShot performs exactly one upgrade request on a connection of its own.
// net/http's Transport would do the same with two goroutines per
// connection and a pool we never reuse; one attempt is one connection, so
// the request is written and the answer read right here, which keeps a
// healthy attempt's CPU close to that of a raw socket.
type oneShot struct {
	dial dialFunc
	tls  *tls.Config
	rec  *recorder
	// prof writes the request head and, for a browser, its ClientHello; ua
	// is wscanary's own User-Agent for its own profile.
	prof    profile
	ua      string
	written map[string]string
	// h2: the attempt goes over HTTP/2 (RFC 8441), h2.go.
	h2 bool
}

func (o *oneShot) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		port := "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(req.URL.Hostname(), port)
	}
	conn, err := o.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// Whatever the server does, the attempt's deadline ends the connection.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, err
	}
	if req.URL.Scheme == "https" {
		cfg := o.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		o.rec.set(&o.rec.tlsStart)
		hc := &helloConn{Conn: conn}
		tc, proto, certs, err := handshake(ctx, hc, cfg, o.prof, o.h2)
		o.rec.set(&o.rec.tlsDone)
		o.rec.mu.Lock()
		o.rec.tlsErr = err
		if len(certs) > 0 {
			o.rec.certs = certs
		}
		if j, jerr := JA4(hc.record()); jerr == nil {
			o.rec.ja4 = j
		}
		o.rec.mu.Unlock()
		if err != nil {
			return fail(err)
		}
		conn = tc
		if o.h2 && proto != "h2" {
			return fail(fmt.Errorf("%w: the server chose %s in ALPN", errH2NotOffered, alpnName(proto)))
		}
	}
	if o.h2 {
		if req.URL.Scheme != "https" {
			return fail(fmt.Errorf("%w: browsers take HTTP/2 over TLS only (wss://)", errH2NotOffered))
		}
		resp, err := h2Open(ctx, conn, req, o.prof, o.ua, o.written, o.rec, stop)
		if err != nil {
			return fail(err)
		}
		o.rec.mu.Lock()
		o.rec.h2 = resp
		o.rec.mu.Unlock()
		if resp.StatusCode == http.StatusOK {
			return asUpgrade(resp, req.Header.Get("Sec-WebSocket-Key")), nil
		}
		return resp, nil
	}
	if err := writeHead(conn, req, o.prof, o.ua, o.written); err != nil {
		return fail(fmt.Errorf("write request: %w", err))
	}
	o.rec.set(&o.rec.wrote)
	lim := &headerLimit{r: conn, left: MaxResponseHeaderBytes}
	br := bufio.NewReaderSize(lim, 4096)
	if _, err := br.Peek(1); err != nil {
		return fail(fmt.Errorf("read response: %w", err))
	}
	o.rec.set(&o.rec.firstByte)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		if lim.exceeded {
			err = errHeaderTooLarge
		}
		return fail(fmt.Errorf("malformed HTTP response: %w", err))
	}
	lim.left = -1 // headers done: the body and frames are not bounded here
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// coder/websocket takes the body as the connection itself.
		resp.Body = &upgraded{r: br, conn: conn, stop: stop}
	} else {
		resp.Body = &closing{ReadCloser: resp.Body, conn: conn, stop: stop}
	}
	return resp, nil
}

// headerLimit bounds what the header phase may read.
type headerLimit struct {
	r        io.Reader
	left     int // < 0: unlimited
	exceeded bool
}

func (h *headerLimit) Read(p []byte) (int, error) {
	if h.left < 0 {
		return h.r.Read(p)
	}
	if h.left == 0 {
		h.exceeded = true
		return 0, errHeaderTooLarge
	}
	if len(p) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.left -= n
	return n, err
}

// upgraded is the connection after a 101, as an io.ReadWriteCloser.
type upgraded struct {
	r    *bufio.Reader
	conn net.Conn
	stop func() bool
}

func (u *upgraded) Read(p []byte) (int, error)  { return u.r.Read(p) }
func (u *upgraded) Write(p []byte) (int, error) { return u.conn.Write(p) }
func (u *upgraded) Close() error {
	u.stop()
	return u.conn.Close()
}

// closing closes the connection with the body of a non-101 answer. The
// connection goes first: net/http's body drains whatever is left on Close
// (a 1 GiB Content-Length, an endless chunked stream, a drip), and it must
// find nothing left to read. Until then the attempt's deadline still holds.
type closing struct {
	io.ReadCloser
	conn net.Conn
	stop func() bool
}

func (c *closing) Close() error {
	err := c.conn.Close()
	c.stop()
	c.ReadCloser.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// handshake opens TLS on conn: with the profile's browser ClientHello
// (uTLS), offering ALPN http/1.1 alone as a browser does for a WebSocket
// over HTTP/1.1, or with Go's own for the wscanary profile. It returns the
// server's certificates also when verification refused them.
func handshake(ctx context.Context, conn net.Conn, cfg *tls.Config, p profile, h2 bool) (net.Conn, string, []*x509.Certificate, error) {
	if p.hello == nil {
		cfg.NextProtos = alpn(h2)
		tc := tls.Client(conn, cfg)
		err := tc.HandshakeContext(ctx)
		cs := tc.ConnectionState()
		return tc, cs.NegotiatedProtocol, cs.PeerCertificates, err
	}
	spec, err := utls.UTLSIdToSpec(*p.hello)
	if err != nil {
		return nil, "", nil, fmt.Errorf("tls: the %s hello: %w", p.client, err)
	}
	if p.edit != nil {
		p.edit(&spec, h2)
	}
	ucfg := &utls.Config{ServerName: cfg.ServerName, RootCAs: cfg.RootCAs, InsecureSkipVerify: cfg.InsecureSkipVerify,
		MinVersion: cfg.MinVersion, NextProtos: alpn(h2)}
	uc := utls.UClient(conn, ucfg, utls.HelloCustom)
	if err := uc.ApplyPreset(&spec); err != nil {
		return nil, "", nil, fmt.Errorf("tls: the %s hello: %w", p.client, err)
	}
	err = uc.HandshakeContext(ctx)
	cs := uc.ConnectionState()
	return uc, cs.NegotiatedProtocol, cs.PeerCertificates, err
}

// chromeWebSocketHello makes uTLS's Chrome 133 hello the one Chromium 156
// sends on a WebSocket connection over HTTP/1.1 (recorded from Debian's
// Chromium; TestChromiumReference compares the JA4): ALPN offers
// http/1.1 alone and ALPS (HTTP/2 settings) is left out, the signature
// algorithms start with ML-DSA-44/65/87 after a GREASE value, and the
// trust anchors extension (0xca34, its payload as Chromium sends it) goes
// before the final GREASE extension.
//
// For the HTTP/2 path it is the hello of the page's connection: ALPN h2
// and http/1.1, with ALPS, as Chromium opens it (TestChromiumH2Reference).
func chromeWebSocketHello(spec *utls.ClientHelloSpec, h2 bool) {
	var exts []utls.TLSExtension
	for _, e := range spec.Extensions {
		switch x := e.(type) {
		case *utls.ALPNExtension:
			x.AlpnProtocols = alpn(h2)
		case *utls.ApplicationSettingsExtension, *utls.ApplicationSettingsExtensionNew:
			if !h2 {
				continue
			}
		case *utls.SignatureAlgorithmsExtension:
			x.SupportedSignatureAlgorithms = append([]utls.SignatureScheme{utls.GREASE_PLACEHOLDER, 0x0904, 0x0905, 0x0906},
				x.SupportedSignatureAlgorithms...)
		}
		exts = append(exts, e)
	}
	if n := len(exts); n > 0 {
		last := exts[n-1]
		exts = append(exts[:n-1:n-1], &utls.GenericExtension{Id: 0xca34, Data: chromeTrustAnchors}, last)
	}
	spec.Extensions = exts
}

// firefoxWebSocketHello offers ALPN http/1.1 alone, as Firefox does for a
// WebSocket over HTTP/1.1; h2 and http/1.1 for the HTTP/2 path.
func firefoxWebSocketHello(spec *utls.ClientHelloSpec, h2 bool) {
	for _, e := range spec.Extensions {
		if x, ok := e.(*utls.ALPNExtension); ok {
			x.AlpnProtocols = alpn(h2)
		}
	}
}

// alpn is what a browser offers: http/1.1 alone for a WebSocket over
// HTTP/1.1, h2 first on the connection that may carry one over HTTP/2.
func alpn(h2 bool) []string {
	if h2 {
		return []string{"h2", "http/1.1"}
	}
	return []string{"http/1.1"}
}

// chromeTrustAnchors is the payload of Chromium 156's trust anchors
// extension (0xca34), byte for byte.
var chromeTrustAnchors = mustHex("00b80582df1302010582df1302060582df13020d0582df13020e0582df13020f0582df1302120582df1302130582df13021408839a648c9b2d010708839a648c9b2d010808839a648c9b2d010908839a648c9b2d010a08839a648c9b2d010b08839a648c9b2d010c08839a648c9b2d010d08839a648c9b2d011208839a648c9b2d011304d679090104d679090404d679090504d679090604d679090704d679090804d679090a04d679090b04d679090c04d679090d04d679090f")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
