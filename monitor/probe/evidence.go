package probe

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/wscanary/wscanary/monitor/redact"
	"github.com/wscanary/wscanary/monitor/report"
)

// fillResponse copies status, reason, headers and the bounded body into att.
// coder/websocket has already cut the body to its first 1 KiB.
func fillResponse(att *report.Attempt, resp *http.Response, tokenNames, secrets []string) {
	att.Status = resp.StatusCode
	att.Reason = strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	hs := redact.Headers(resp.Header, tokenNames...)
	for k, v := range hs {
		hs[k] = redact.Secrets(v, secrets...)
	}
	att.Headers = hs
	if resp.Body == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		b = gunzipPrefix(b)
	}
	att.Body = redact.Secrets(strings.ToValidUTF8(string(b), "?"), secrets...)
}

// gunzipPrefix decodes as much of a truncated gzip body as it can: the
// first KiB of a compressed page is still worth reading.
func gunzipPrefix(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return b
	}
	out, _ := io.ReadAll(io.LimitReader(zr, MaxBody))
	if len(out) == 0 {
		return b
	}
	return out
}

// classify turns a dial error into "class: detail". The phase the recorder
// reached decides between a timeout and the thing that timed out.
func classify(ctx context.Context, err error, rec *recorder, resp *http.Response) string {
	if err == nil {
		return ""
	}
	if resp != nil && resp.StatusCode == http.StatusSwitchingProtocols {
		return report.ErrProtocol + ": 101 but " + trimWS(err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return report.ErrTimeout + ": resolving " + dnsErr.Name
		}
		return report.ErrDNS + ": " + dnsErr.Error()
	}
	var px *proxyError
	isProxy := errors.As(err, &px)
	if ctx.Err() != nil || isTimeout(err) {
		return report.ErrTimeout + ": " + rec.phase()
	}
	if t := tlsDetail(err); t != "" {
		return report.ErrTLS + ": " + t
	}
	if isProxy {
		return report.ErrConnect + ": " + px.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		// The inner error is a syscall's ("connect: connection refused"):
		// drop its name, the class already says it.
		return report.ErrConnect + ": " + strings.TrimPrefix(opErr.Err.Error(), "connect: ") + " (" + addrOf(opErr) + ")"
	}
	rec.mu.Lock()
	connected := !rec.connDone.IsZero()
	rec.mu.Unlock()
	if !connected {
		return report.ErrConnect + ": " + trimWS(err)
	}
	return report.ErrProtocol + ": " + trimWS(err)
}

func addrOf(e *net.OpError) string {
	if e.Addr != nil {
		return e.Addr.String()
	}
	return "?"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
}

// phase names what the attempt was waiting for when time ran out.
func (r *recorder) phase() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case !r.dnsStart.IsZero() && r.dnsDone.IsZero():
		return "resolving the host"
	case r.connDone.IsZero():
		return "connecting"
	case !r.proxyStart.IsZero() && r.proxyDone.IsZero():
		return "waiting for the proxy tunnel"
	case !r.tlsStart.IsZero() && r.tlsDone.IsZero():
		return "TLS handshake"
	case r.wrote.IsZero():
		return "sending the upgrade request"
	case r.firstByte.IsZero():
		return "waiting for the response headers"
	default:
		return "reading the response headers"
	}
}

// tlsDetail says why TLS failed in the words an operator acts on.
func tlsDetail(err error) string {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			if inv.Cert != nil {
				return fmt.Sprintf("certificate expired (not after %s)", inv.Cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
			}
			return "certificate expired"
		default:
			return "invalid certificate: " + inv.Error()
		}
	}
	var host x509.HostnameError
	if errors.As(err, &host) {
		return "name mismatch: " + host.Error()
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "unknown authority: certificate signed by an untrusted CA"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "not a TLS answer: " + rh.Msg
	}
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return "alert from server: " + ae.Error()
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return "certificate verification failed: " + cve.Err.Error()
	}
	if strings.Contains(err.Error(), "tls: ") {
		return trimWS(err)
	}
	return ""
}

// trimWS drops coder/websocket's and net/http's wrapping prefixes, which
// say nothing the class does not.
func trimWS(err error) string {
	s := err.Error()
	for _, p := range []string{"failed to WebSocket dial: ", "failed to send handshake request: "} {
		s = strings.ReplaceAll(s, p, "")
	}
	// net/http adds `Get "URL": ` which would repeat an unredacted URL.
	if i := strings.Index(s, `": `); i >= 0 && strings.HasPrefix(s, "Get \"") {
		s = s[i+3:]
	}
	return s
}
