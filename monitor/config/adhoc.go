package config

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wscanary/wscanary/monitor/report"
)

// AdHocName is the name of the one check AdHoc builds.
const AdHocName = "probe"

// AdHoc describes one URL to probe now (`wscanary probe`): the same
// request shape a check file can describe, given as command-line values.
type AdHoc struct {
	URL    string
	Origin string
	// Headers are "Name: value" strings.
	Headers      []string
	Subprotocols []string
	// Token is the credential ("" for none); TokenIn and TokenName say
	// where it goes, with the same defaults as a file.
	Token, TokenIn, TokenName string
	// Direct is host:port of the origin; "" for no direct route.
	Direct string
	// Proxy is an egress proxy for the only vantage; "" for none.
	Proxy        string
	Send, Expect string
	CAFile       string
	Insecure     bool
	// Timeout bounds each attempt; 0 means DefaultTimeout.
	Timeout time.Duration
	// Client is the profile ("" chrome); Transports the transports (none:
	// a check file's default).
	Client     string
	Transports []string
}

// Flags binds the description to `wscanary probe`'s flags; the URL is the
// argument. The token's default, $WSCANARY_TOKEN, is the caller's.
func (a *AdHoc) Flags(fs *flag.FlagSet) {
	fs.StringVar(&a.Origin, "origin", "", "Origin header to send (default none, like curl)")
	fs.Var((*StringList)(&a.Headers), "header", "extra request header K:V (repeatable)")
	fs.Var((*StringList)(&a.Subprotocols), "subprotocol", "subprotocol to offer (repeatable)")
	fs.StringVar(&a.Token, "token", "", "credential to send (default $WSCANARY_TOKEN); never printed")
	fs.StringVar(&a.TokenIn, "token-in", "", "where the token goes: query (default), header, cookie or message")
	fs.StringVar(&a.TokenName, "token-name", "", "query parameter, header or cookie name (default token / Authorization: Bearer)")
	fs.StringVar(&a.Direct, "direct", "", "origin HOST:PORT to dial for the direct route")
	fs.StringVar(&a.Proxy, "proxy", "", "egress proxy: http://host:port (CONNECT) or socks5://host:port")
	fs.StringVar(&a.Send, "send", "", "message to send after open ({token} is replaced)")
	fs.StringVar(&a.Expect, "expect", "", "regexp the first reply must match")
	fs.StringVar(&a.CAFile, "ca-file", "", "PEM file of CA certificates to trust")
	fs.BoolVar(&a.Insecure, "insecure", false, "do not verify TLS certificates")
	fs.DurationVar(&a.Timeout, "timeout", DefaultTimeout, "bound on each attempt")
	fs.StringVar(&a.Client, "client", "", "client profile of the handshake: chrome (default), firefox, wscanary")
	fs.Var((*StringList)(&a.Transports), "transport", "http1 or http2 (repeatable; default both for wss://, http1 for ws://)")
}

// StringList is a repeatable flag's values.
type StringList []string

func (l *StringList) String() string     { return strings.Join(*l, ",") }
func (l *StringList) Set(v string) error { *l = append(*l, v); return nil }

// Build turns the description into a Config holding one check, by the same
// rules and defaults as a check file (the daemon's vantage name too), so
// probe and check cannot drift apart. Errors name the flag.
func (a AdHoc) Build(opts Options) (*Config, error) {
	lookup := opts.Lookup
	if lookup == nil {
		lookup = SystemLookup
	}
	u, err := ParseCheckURL(a.URL)
	if err != nil {
		return nil, fmt.Errorf("URL %w", err)
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if timeout < 0 || timeout > MaxTimeout {
		return nil, fmt.Errorf("--timeout %s must be positive and at most %s", timeout, MaxTimeout)
	}
	c := Check{Name: AdHocName, URL: u, Timeout: timeout, Origin: a.Origin, Subprotocols: a.Subprotocols, Send: a.Send,
		Alert: Alert{On: DefaultAlertOn(), After: DefaultAfter, RecoverAfter: 1, MinVantages: DefaultMinVant}, File: "command line"}
	if len(a.Headers) > 0 {
		c.Headers = map[string]string{}
		for _, h := range a.Headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("--header %q must be Name: value", h)
			}
			c.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if a.Token != "" {
		in := TokenInQuery
		if a.TokenIn != "" {
			if in, err = ParseTokenIn(a.TokenIn); err != nil {
				return nil, fmt.Errorf("--token-in %w", err)
			}
		}
		if err := CheckMessageToken(in, a.Send); err != nil {
			return nil, errors.New("--token-in message needs --send with {token} in it")
		}
		name := a.TokenName
		if name == "" {
			name = defaultTokenName(in)
		}
		c.Token = &Token{Value: a.Token, In: in, Name: name}
	}
	if a.Expect != "" {
		if c.Expect, err = ParseExpect(a.Expect); err != nil {
			return nil, fmt.Errorf("--expect: %w", err)
		}
	}
	if a.CAFile != "" || a.Insecure {
		if c.TLS, err = LoadTLS(a.CAFile, "", a.Insecure); err != nil {
			return nil, err
		}
	}
	if a.Direct != "" {
		if err := CheckAddress(a.Direct); err != nil {
			return nil, fmt.Errorf("--direct %w", err)
		}
		c.Direct = &Direct{Address: a.Direct}
	}
	c.Client = DefaultClient
	if a.Client != "" {
		if !slices.Contains(ClientNames, a.Client) {
			return nil, fmt.Errorf("--client %q is not a client profile (%s)", a.Client, strings.Join(ClientNames, ", "))
		}
		c.Client = a.Client
	}
	for _, t := range a.Transports {
		switch {
		case !slices.Contains(TransportNames, t):
			return nil, fmt.Errorf("--transport %q is not a transport (%s)", t, strings.Join(TransportNames, ", "))
		case t == string(report.TransportHTTP2) && u.Scheme != "wss":
			return nil, errors.New("--transport http2 needs a wss:// URL (browsers take HTTP/2 over TLS only)")
		case !slices.Contains(c.Transports, report.Transport(t)):
			c.Transports = append(c.Transports, report.Transport(t))
		}
	}
	if c.Transports == nil {
		c.Transports = []report.Transport{report.TransportHTTP1}
		if u.Scheme == "wss" {
			c.Transports = slices.Clone(report.Transports)
		}
	}
	cfg := &Config{Path: "command line", Vantage: defaultVantage(lookup), Vantages: map[string]Vantage{}, Listen: ""}
	if a.Proxy != "" {
		px, err := ParseProxy(a.Proxy)
		if err != nil {
			return nil, fmt.Errorf("--proxy %w", err)
		}
		cfg.Vantages["proxy"] = Vantage{Name: "proxy", Proxy: px}
		c.Vantages = []string{"proxy"}
	}
	cfg.Checks = []Check{c}
	return cfg, nil
}
