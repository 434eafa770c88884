package probe

import (
	"bytes"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	utls "github.com/refraction-networking/utls"
	"golang.org/x/net/http2"

	"github.com/wscanary/wscanary/monitor/report"
)

// Client names a client profile (report.Client). Bot rules and WAFs judge
// what a handshake looks like on the wire (the User-Agent, the header set
// and its order, the TLS ClientHello), so a canary that does not look like
// its users' browsers sees other answers than they do. A browser profile
// sends that browser's request head (names, case, order, values) and TLS
// ClientHello, offering permessage-deflate; wscanary's own is a minimal,
// identifiable request (User-Agent wscanary/<version>, Go's TLS, no
// extension).
type Client = report.Client

const (
	ClientChrome   = report.ClientChrome
	ClientFirefox  = report.ClientFirefox
	ClientWscanary = report.ClientWscanary
)

// Clients are the known profiles, the default first.
var Clients = report.Clients

// field is one request header line of a profile: its name as the browser
// writes it and its value; an empty value takes the request's own (Host,
// Origin, the key, the subprotocols: what changes per request).
type field struct{ name, value string }

// profile is a client's opening handshake.
type profile struct {
	client Client
	// head is the browser's header lines in its order. Headers of the
	// request that are not in it (the check's own) follow, in the order
	// configured; traceparent comes last.
	head []field
	// hello is the browser's TLS ClientHello, as edit makes it; nil is
	// Go's crypto/tls.
	hello *utls.ClientHelloID
	edit  func(spec *utls.ClientHelloSpec, h2 bool)
	// offer is its Sec-WebSocket-Extensions, "" for none.
	offer string
	// h2 is how it opens an HTTP/2 connection and a WebSocket stream.
	h2 h2Profile
}

// The browsers' heads, as the releases named send them (checked against
// the real browser by TestChromiumReference: Debian's Chromium 156;
// headless says HeadlessChrome in its User-Agent, so the profile carries
// that release's desktop string).
const (
	chromeUA  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
	firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:146.0) Gecko/20100101 Firefox/146.0"
	// deflateOffer is what both browsers offer.
	chromeDeflate  = "permessage-deflate; client_max_window_bits"
	firefoxDeflate = "permessage-deflate"
)

var profiles = map[Client]profile{
	ClientChrome: {client: ClientChrome, hello: &utls.HelloChrome_133, edit: chromeWebSocketHello, offer: chromeDeflate, head: []field{
		{"Host", ""}, {"Connection", "Upgrade"}, {"Pragma", "no-cache"}, {"Cache-Control", "no-cache"},
		{"User-Agent", chromeUA}, {"Upgrade", "websocket"}, {"Origin", ""}, {"Sec-WebSocket-Version", "13"},
		{"Accept-Encoding", "gzip, deflate, br, zstd"}, {"Accept-Language", "en-US,en;q=0.9"}, {"Cookie", ""},
		{"Sec-WebSocket-Key", ""}, {"Sec-WebSocket-Extensions", chromeDeflate}, {"Sec-WebSocket-Protocol", ""},
	}, h2: h2Profile{
		// As Chromium 156 opens a page's connection and the WebSocket's
		// stream on it (TestChromiumH2Reference reads them off a Go server
		// run with GODEBUG=http2debug=2). The stream's priority values are
		// Chrome's for a request of the highest priority, not read here.
		settings: []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 65536}, {ID: http2.SettingEnablePush, Val: 0},
			{ID: http2.SettingInitialWindowSize, Val: 6291456}, {ID: http2.SettingMaxHeaderListSize, Val: 262144}},
		window:   15663105,
		pseudo:   []string{":method", ":authority", ":scheme", ":path", ":protocol"},
		priority: &http2.PriorityParam{Exclusive: true, Weight: 255},
		head: []field{{"Pragma", "no-cache"}, {"Cache-Control", "no-cache"}, {"User-Agent", chromeUA}, {"Origin", ""},
			{"Sec-WebSocket-Version", "13"}, {"Accept-Encoding", "gzip, deflate, br, zstd"}, {"Accept-Language", "en-US,en;q=0.9"},
			{"Cookie", ""}, {"Sec-WebSocket-Extensions", chromeDeflate}, {"Sec-WebSocket-Protocol", ""}},
	}},
	// Firefox's order and values from its network monitor (Firefox 146 on
	// Linux); no Firefox runs here to compare with.
	ClientFirefox: {client: ClientFirefox, hello: &utls.HelloFirefox_Auto, edit: firefoxWebSocketHello, offer: firefoxDeflate, head: []field{
		{"Host", ""}, {"User-Agent", firefoxUA}, {"Accept", "*/*"}, {"Accept-Language", "en-US,en;q=0.5"},
		{"Accept-Encoding", "gzip, deflate, br, zstd"}, {"Sec-WebSocket-Version", "13"}, {"Origin", ""},
		{"Sec-WebSocket-Protocol", ""}, {"Sec-WebSocket-Extensions", firefoxDeflate}, {"Sec-WebSocket-Key", ""},
		{"Cookie", ""}, {"Connection", "keep-alive, Upgrade"}, {"Sec-Fetch-Dest", "empty"}, {"Sec-Fetch-Mode", "websocket"},
		{"Sec-Fetch-Site", "same-origin"}, {"Pragma", "no-cache"}, {"Cache-Control", "no-cache"}, {"Upgrade", "websocket"},
	}, h2: h2Profile{
		// Firefox's HTTP/2 SETTINGS, WINDOW_UPDATE and pseudo-header order
		// as published for its releases (no Firefox runs here); its
		// headers in the order of its HTTP/1.1 head.
		settings: []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 65536}, {ID: http2.SettingEnablePush, Val: 0},
			{ID: http2.SettingInitialWindowSize, Val: 131072}, {ID: http2.SettingMaxFrameSize, Val: 16384}},
		window: 12517377,
		pseudo: []string{":method", ":path", ":authority", ":scheme", ":protocol"},
		head: []field{{"User-Agent", firefoxUA}, {"Accept", "*/*"}, {"Accept-Language", "en-US,en;q=0.5"},
			{"Accept-Encoding", "gzip, deflate, br, zstd"}, {"Sec-WebSocket-Version", "13"}, {"Origin", ""},
			{"Sec-WebSocket-Protocol", ""}, {"Sec-WebSocket-Extensions", firefoxDeflate}, {"Cookie", ""},
			{"Sec-Fetch-Dest", "empty"}, {"Sec-Fetch-Mode", "websocket"}, {"Sec-Fetch-Site", "same-origin"},
			{"Pragma", "no-cache"}, {"Cache-Control", "no-cache"}},
	}},
	ClientWscanary: {client: ClientWscanary, head: []field{
		{"Host", ""}, {"User-Agent", ""}, {"Connection", "Upgrade"}, {"Upgrade", "websocket"}, {"Origin", ""},
		{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Key", ""}, {"Sec-WebSocket-Protocol", ""},
	}, h2: h2Profile{
		// Go's own HTTP/2 client's SETTINGS and order (x/net/http2).
		settings: []http2.Setting{{ID: http2.SettingEnablePush, Val: 0}, {ID: http2.SettingInitialWindowSize, Val: 4194304},
			{ID: http2.SettingMaxHeaderListSize, Val: 10485760}},
		window: 1073741824,
		pseudo: []string{":authority", ":method", ":path", ":scheme", ":protocol"},
		head:   []field{{"User-Agent", ""}, {"Origin", ""}, {"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Protocol", ""}},
	}},
}

// profileOf is the profile of c; an unknown or empty name is Chrome's.
func profileOf(c Client) profile {
	if p, ok := profiles[c]; ok {
		return p
	}
	return profiles[ClientChrome]
}

// writeHead writes the request line and header of an upgrade request the
// way the profile's browser does (headFields). net/http's Request.Write
// sorts the header, which no browser does.
func writeHead(w io.Writer, req *http.Request, p profile, ua string, written map[string]string) error {
	b := heads.Get().(*bytes.Buffer)
	defer heads.Put(b)
	b.Reset()
	b.WriteString("GET ")
	b.WriteString(req.URL.RequestURI())
	b.WriteString(" HTTP/1.1\r\n")
	for _, f := range headFields(req, p.head, ua, written) {
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(f.value)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	_, err := w.Write(b.Bytes()) // one write, as a browser's head goes out in one segment
	return err
}

// heads are the buffers request heads are written in: one per attempt in
// flight, not a new one for every attempt.
var heads = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 2048)) }}

// headFields are the request's header lines as the profile's browser
// sends them: its lines in its order (head), with values of its own; the
// request's other headers after them, traceparent last.
//
// written names the headers the check set itself (headers:, origin, its
// token), by canonical key, as the check wrote them: those are sent so,
// and their values win over the profile's. Other request headers (the
// library's key, version, subprotocols) take the profile's value when it
// has one. A header that would split the request is not sent.
func headFields(req *http.Request, head []field, ua string, written map[string]string) []field {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	var out []field
	line := func(name, value string) {
		if strings.ContainsAny(name+value, "\r\n") {
			return
		}
		out = append(out, field{name, value})
	}
	done := map[string]bool{}
	for _, f := range head {
		key := http.CanonicalHeaderKey(f.name)
		done[key] = true
		vs, ok := req.Header[key]
		name, configured := written[key]
		switch {
		case key == "Host":
			line(f.name, host)
		case ok && (configured || f.value == ""):
			if !configured {
				name = f.name
			}
			for _, v := range vs {
				line(name, v)
			}
		case f.value != "":
			line(f.name, f.value) // the browser's own, not the library's
		case key == "User-Agent":
			line(f.name, ua)
		}
	}
	keys := make([]string, 0, len(req.Header))
	for k := range req.Header {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var trace []string
	for _, k := range keys {
		if k == "Traceparent" || k == "Tracestate" {
			trace = append(trace, k)
			continue
		}
		name, ok := written[k]
		if !ok {
			name = k
		}
		for _, v := range req.Header[k] {
			line(name, v)
		}
	}
	for _, k := range trace {
		for _, v := range req.Header[k] {
			line(strings.ToLower(k), v)
		}
	}
	return out
}
