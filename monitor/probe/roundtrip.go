package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
		tc := tls.Client(conn, cfg)
		err := tc.HandshakeContext(ctx)
		o.rec.set(&o.rec.tlsDone)
		st := tc.ConnectionState()
		o.rec.mu.Lock()
		o.rec.tlsErr = err
		if len(st.PeerCertificates) > 0 {
			o.rec.certs = st.PeerCertificates
		}
		o.rec.mu.Unlock()
		if err != nil {
			return fail(err)
		}
		conn = tc
	}
	if err := req.Write(conn); err != nil {
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
