package probe

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// JA4 is the JA4 fingerprint (FoxIO's JA4 TLS client fingerprint, the one
// Cloudflare Bot Management and AWS WAF match on) of a raw TLS record that
// holds a ClientHello: t, the TLS version, d or i (SNI or not), the counts
// of cipher suites and extensions, the first and last characters of the
// first ALPN value; then the truncated SHA-256 of the sorted cipher suites;
// then that of the sorted extensions (without SNI and ALPN) and the
// signature algorithms in their order. GREASE values are left out, as JA4
// does, so two hellos of one browser fingerprint alike.
func JA4(record []byte) (string, error) {
	h, err := parseHello(record)
	if err != nil {
		return "", err
	}
	version := "00"
	v := h.version
	for _, sv := range h.supportedVersions {
		if !grease(sv) && sv > v {
			v = sv
		}
	}
	switch v {
	case 0x0304:
		version = "13"
	case 0x0303:
		version = "12"
	case 0x0302:
		version = "11"
	case 0x0301:
		version = "10"
	}
	sni := "i"
	var ciphers, exts []string
	for _, c := range h.ciphers {
		if !grease(c) {
			ciphers = append(ciphers, fmt.Sprintf("%04x", c))
		}
	}
	n := 0
	for _, e := range h.extensions {
		if grease(e) {
			continue
		}
		n++
		switch e {
		case 0x0000:
			sni = "d"
		case 0x0010:
		default:
			exts = append(exts, fmt.Sprintf("%04x", e))
		}
	}
	alpn := "00"
	if len(h.alpn) > 0 && h.alpn[0] != "" {
		first := h.alpn[0]
		alpn = string(first[0]) + string(first[len(first)-1])
	}
	a := fmt.Sprintf("t%s%s%02d%02d%s", version, sni, min(len(ciphers), 99), min(n, 99), alpn)
	slices.Sort(ciphers)
	slices.Sort(exts)
	b := hash12(strings.Join(ciphers, ","))
	c := strings.Join(exts, ",")
	var sigs []string
	for _, s := range h.sigAlgs {
		if !grease(s) {
			sigs = append(sigs, fmt.Sprintf("%04x", s))
		}
	}
	if len(sigs) > 0 {
		c += "_" + strings.Join(sigs, ",")
	}
	return a + "_" + b + "_" + hash12(c), nil
}

func hash12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

// grease reports whether v is one of RFC 8701's GREASE values.
func grease(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

type hello struct {
	version           uint16
	ciphers           []uint16
	extensions        []uint16
	supportedVersions []uint16
	alpn              []string
	sigAlgs           []uint16
}

var errNotHello = errors.New("not a TLS ClientHello")

// parseHello reads the ClientHello in a TLS handshake record.
func parseHello(b []byte) (*hello, error) {
	if len(b) < 5 || b[0] != 0x16 {
		return nil, errNotHello
	}
	b = b[5:]
	if len(b) < 4 || b[0] != 0x01 {
		return nil, errNotHello
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	b = b[4:]
	if len(b) < n {
		return nil, fmt.Errorf("%w: truncated", errNotHello)
	}
	b = b[:n]
	r := reader{b: b}
	h := &hello{version: r.u16()}
	r.skip(32)                // random
	r.skip(int(r.u8()))       // session id
	cs := r.sub(int(r.u16())) // cipher suites
	for len(cs.b) >= 2 {
		h.ciphers = append(h.ciphers, cs.u16())
	}
	r.skip(int(r.u8())) // compression methods
	ext := r.sub(int(r.u16()))
	for len(ext.b) >= 4 && !ext.bad {
		typ := ext.u16()
		data := ext.sub(int(ext.u16()))
		h.extensions = append(h.extensions, typ)
		switch typ {
		case 0x002b: // supported_versions
			vs := data.sub(int(data.u8()))
			for len(vs.b) >= 2 {
				h.supportedVersions = append(h.supportedVersions, vs.u16())
			}
		case 0x0010: // ALPN
			list := data.sub(int(data.u16()))
			for len(list.b) > 0 && !list.bad {
				h.alpn = append(h.alpn, string(list.take(int(list.u8()))))
			}
		case 0x000d: // signature_algorithms
			list := data.sub(int(data.u16()))
			for len(list.b) >= 2 {
				h.sigAlgs = append(h.sigAlgs, list.u16())
			}
		}
	}
	if r.bad || ext.bad {
		return nil, fmt.Errorf("%w: malformed", errNotHello)
	}
	return h, nil
}

// reader reads big-endian fields, remembering a read past the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		out := r.b
		r.b = nil
		return out
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) skip(n int) { r.take(n) }

func (r *reader) u8() uint8 {
	b := r.take(1)
	if len(b) < 1 {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if len(b) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) sub(n int) *reader {
	b := r.take(n)
	return &reader{b: b, bad: r.bad}
}

// helloConn keeps what the client writes before it first reads: the
// ClientHello, for its JA4. The TLS client writes and reads on its
// handshake goroutine only, and record is asked after the handshake, so
// no lock is needed; past the hello the wrapper only passes calls on.
type helloConn struct {
	net.Conn
	buf   []byte
	ended bool
}

func (c *helloConn) Write(p []byte) (int, error) {
	if !c.ended && len(c.buf) < 16<<10 {
		c.buf = append(c.buf, p[:min(len(p), 16<<10-len(c.buf))]...)
	}
	return c.Conn.Write(p)
}

func (c *helloConn) Read(p []byte) (int, error) {
	if !c.ended {
		c.ended = true // the server speaks: the hello is complete
	}
	return c.Conn.Read(p)
}

// record is the first TLS record written.
func (c *helloConn) record() []byte {
	if len(c.buf) < 5 {
		return nil
	}
	n := 5 + int(binary.BigEndian.Uint16(c.buf[3:5]))
	if n > len(c.buf) {
		return nil
	}
	return slices.Clone(c.buf[:n])
}
