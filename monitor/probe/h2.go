package probe

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A WebSocket over HTTP/2 (RFC 8441) is what Chrome and Firefox open on an
// HTTP/2 connection to a host that advertised SETTINGS_ENABLE_CONNECT_PROTOCOL:
// an extended CONNECT stream (":protocol: websocket") answered 200, then
// WebSocket frames in its DATA. This file speaks just enough HTTP/2 for
// that one stream, with x/net's framer and HPACK: its own connection
// preface, SETTINGS and WINDOW_UPDATE as the profile's browser sends them
// (edges fingerprint those too), the server's SETTINGS read before the
// stream opens, and the request's pseudo-headers and headers in the
// browser's order. net/http's HTTP/2 client sends headers in map order and
// Go's own SETTINGS, which no browser does.

// errH2NotOffered: the server has no WebSocket over HTTP/2 for us. Not a
// failure: a browser uses HTTP/1.1 then.
var errH2NotOffered = errors.New("h2 WebSocket not offered")

// h2Profile is how a client opens an HTTP/2 connection and stream.
type h2Profile struct {
	settings []http2.Setting
	// window is the connection WINDOW_UPDATE sent after SETTINGS (0: none).
	window uint32
	// pseudo is the order of the request's pseudo-headers.
	pseudo []string
	// priority, when set, goes in the HEADERS frame (Chrome sets it).
	priority *http2.PriorityParam
	// head is the order of the request's headers, as for HTTP/1.1.
	head []field
}

// h2Stream is the extended CONNECT stream once the server answered: the
// body of the response, and after a 200 the WebSocket's connection.
type h2Stream struct {
	conn net.Conn
	fr   *http2.Framer
	stop func() bool

	wmu sync.Mutex // frames are written by Write and by Read's acks
	// sendWindow is what the server lets us send on the stream; maxFrame
	// its largest DATA payload.
	mu         sync.Mutex
	sendWindow int64
	connWindow int64
	maxFrame   uint32

	// Read side, one reader at a time.
	buf []byte
	end error // io.EOF once the server ended the stream, or why it broke
}

const h2StreamID = 1

// h2Open sends the preface, SETTINGS and the extended CONNECT, and reads
// the server's answer. A server whose SETTINGS do not enable the CONNECT
// protocol gets no request: errH2NotOffered. The response's body is the
// stream (an h2Stream); after a 200 it is the WebSocket's connection.
func h2Open(ctx context.Context, conn net.Conn, req *http.Request, p profile, ua string, written map[string]string,
	rec *recorder, stop func() bool) (*http.Response, error) {
	st := &h2Stream{conn: conn, stop: stop, sendWindow: 65535, connWindow: 65535, maxFrame: 16384}
	st.fr = http2.NewFramer(conn, conn)
	st.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	st.fr.MaxHeaderListSize = MaxResponseHeaderBytes
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if err := st.fr.WriteSettings(p.h2.settings...); err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	if p.h2.window > 0 {
		if err := st.fr.WriteWindowUpdate(0, p.h2.window); err != nil {
			return nil, fmt.Errorf("write request: %w", err)
		}
	}
	// The server's SETTINGS come first, and say whether it takes extended
	// CONNECT at all.
	f, err := st.fr.ReadFrame()
	if err != nil {
		return nil, fmt.Errorf("read response: h2 SETTINGS: %w", err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		return nil, fmt.Errorf("malformed HTTP response: h2: the server's first frame is %s, not SETTINGS", f.Header().Type)
	}
	if err := st.settings(sf); err != nil {
		return nil, err
	}
	if v, ok := sf.Value(http2.SettingEnableConnectProtocol); !ok || v != 1 {
		return nil, fmt.Errorf("%w: its SETTINGS do not enable the CONNECT protocol (RFC 8441)", errH2NotOffered)
	}

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range h2Fields(req, p, ua, written) {
		enc.WriteField(hpack.HeaderField{Name: f.name, Value: f.value})
	}
	hp := http2.HeadersFrameParam{StreamID: h2StreamID, BlockFragment: block.Bytes(), EndHeaders: true}
	if p.h2.priority != nil {
		hp.Priority = *p.h2.priority
	}
	st.wmu.Lock()
	err = st.fr.WriteHeaders(hp)
	st.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("write request: %w", err)
	}
	rec.set(&rec.wrote)
	for first := true; ; first = false {
		f, err := st.fr.ReadFrame()
		if err != nil {
			if errors.Is(err, http2.ErrFrameTooLarge) {
				err = errHeaderTooLarge
			}
			return nil, fmt.Errorf("read response: %w", err)
		}
		if first {
			rec.set(&rec.firstByte)
		}
		mh, ok := f.(*http2.MetaHeadersFrame)
		if !ok {
			if err := st.control(f); err != nil {
				return nil, fmt.Errorf("read response: %w", err)
			}
			continue
		}
		if mh.StreamID != h2StreamID {
			continue
		}
		if mh.Truncated {
			return nil, errHeaderTooLarge
		}
		code, err := strconv.Atoi(mh.PseudoValue("status"))
		if err != nil || code < 100 || code > 999 {
			return nil, fmt.Errorf("malformed HTTP response: h2 :status %q", mh.PseudoValue("status"))
		}
		if code < 200 {
			continue // interim answers say nothing of the upgrade
		}
		resp := &http.Response{StatusCode: code, Status: strconv.Itoa(code) + " " + http.StatusText(code),
			Proto: "HTTP/2.0", ProtoMajor: 2, Header: http.Header{}, Request: req, Body: st, ContentLength: -1}
		for _, hf := range mh.RegularFields() {
			resp.Header.Add(hf.Name, hf.Value)
		}
		if mh.StreamEnded() {
			st.end = io.EOF
		}
		return resp, nil
	}
}

// h2Fields are the request's header fields as the profile's browser sends
// them over HTTP/2: its pseudo-headers in its order, then the headers of
// its HTTP/1.1 head that HTTP/2 keeps, lower case (RFC 9113 8.2.2 drops
// the connection-specific ones; RFC 8441 drops the key, which has nothing
// to answer).
func h2Fields(req *http.Request, p profile, ua string, written map[string]string) []field {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	pseudo := map[string]string{":method": http.MethodConnect, ":authority": host, ":scheme": "https",
		":path": req.URL.RequestURI(), ":protocol": "websocket"}
	var out []field
	for _, name := range p.h2.pseudo {
		out = append(out, field{name, pseudo[name]})
	}
	for _, f := range headFields(req, p.h2.head, ua, written) {
		switch http.CanonicalHeaderKey(f.name) {
		case "Host", "Connection", "Upgrade", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te",
			"Sec-Websocket-Key":
			continue
		}
		out = append(out, field{strings.ToLower(f.name), f.value})
	}
	return out
}

// settings applies the server's SETTINGS and acknowledges them.
func (s *h2Stream) settings(f *http2.SettingsFrame) error {
	err := f.ForeachSetting(func(st http2.Setting) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch st.ID {
		case http2.SettingInitialWindowSize:
			s.sendWindow = int64(st.Val)
		case http2.SettingMaxFrameSize:
			s.maxFrame = st.Val
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.fr.WriteSettingsAck()
}

// control handles a frame that is not the stream's data or headers.
func (s *h2Stream) control(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			return s.settings(f)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			s.wmu.Lock()
			defer s.wmu.Unlock()
			return s.fr.WritePing(true, f.Data)
		}
	case *http2.WindowUpdateFrame:
		s.mu.Lock()
		if f.StreamID == 0 {
			s.connWindow += int64(f.Increment)
		} else if f.StreamID == h2StreamID {
			s.sendWindow += int64(f.Increment)
		}
		s.mu.Unlock()
	case *http2.RSTStreamFrame:
		if f.StreamID == h2StreamID {
			return fmt.Errorf("h2: the server reset the stream (%v)", f.ErrCode)
		}
	case *http2.GoAwayFrame:
		if f.ErrCode != http2.ErrCodeNo || f.LastStreamID < h2StreamID {
			return fmt.Errorf("h2: the server sent GOAWAY (%v)", f.ErrCode)
		}
	}
	return nil
}

// Read returns the stream's DATA, crediting the server's flow-control
// windows as it goes.
func (s *h2Stream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.end != nil {
			return 0, s.end
		}
		f, err := s.fr.ReadFrame()
		if err != nil {
			s.end = err
			continue
		}
		switch f := f.(type) {
		case *http2.DataFrame:
			if f.StreamID != h2StreamID {
				continue
			}
			s.buf = append(s.buf[:0], f.Data()...)
			if n := f.Header().Length; n > 0 {
				s.wmu.Lock()
				err := s.fr.WriteWindowUpdate(0, n)
				if err == nil {
					err = s.fr.WriteWindowUpdate(h2StreamID, n)
				}
				s.wmu.Unlock()
				if err != nil && !f.StreamEnded() {
					s.end = err
				}
			}
			if f.StreamEnded() {
				s.end = io.EOF
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == h2StreamID && f.StreamEnded() {
				s.end = io.EOF // trailers end it
			}
		default:
			if err := s.control(f); err != nil {
				s.end = err
			}
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// Write sends p as DATA on the stream, within what the server allows: a
// monitor's messages are small, and one that would overrun the server's
// window is an error rather than a wait.
func (s *h2Stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	window, max := min(s.sendWindow, s.connWindow), int(s.maxFrame)
	if int64(len(p)) > window {
		s.mu.Unlock()
		return 0, fmt.Errorf("h2: the server's flow-control window (%d bytes) is smaller than a %d-byte write", window, len(p))
	}
	s.sendWindow -= int64(len(p))
	s.connWindow -= int64(len(p))
	s.mu.Unlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for sent := 0; sent < len(p); {
		n := min(len(p)-sent, max)
		if err := s.fr.WriteData(h2StreamID, false, p[sent:sent+n]); err != nil {
			return sent, err
		}
		sent += n
	}
	return len(p), nil
}

// Close ends the connection (and the attempt's watch of its deadline).
func (s *h2Stream) Close() error {
	s.stop()
	err := s.conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// asUpgrade presents a 200 to an extended CONNECT the way coder/websocket
// takes an HTTP/1.1 upgrade (a 101 with its Accept), so that its frames,
// compression and close run on the stream unchanged. Only the library
// sees it: the attempt's evidence is the server's own answer.
func asUpgrade(resp *http.Response, key string) *http.Response {
	up := *resp
	up.StatusCode, up.Status = http.StatusSwitchingProtocols, "101 Switching Protocols"
	up.Header = resp.Header.Clone()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	up.Header.Set("Upgrade", "websocket")
	up.Header.Set("Connection", "Upgrade")
	up.Header.Set("Sec-WebSocket-Accept", base64.StdEncoding.EncodeToString(sum[:]))
	return &up
}

// alpnName is how the evidence names the protocol a server chose in ALPN
// (its bytes, quoted: they come from the server).
func alpnName(proto string) string {
	switch proto {
	case "":
		return "no protocol"
	case "http/1.1", "h2":
		return proto
	}
	return strconv.Quote(proto)
}
