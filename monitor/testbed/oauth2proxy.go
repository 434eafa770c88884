package testbed

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OAuth2ProxyModule is the oauth2-proxy scripts/test builds.
const OAuth2ProxyModule = "github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6"

// OIDC is an OpenID Connect provider of the test's own, enough for a
// gateway to start and to verify tokens: discovery, keys, an authorization
// endpoint that hands a code back, and Mint for ID tokens it signed.
type OIDC struct {
	*httptest.Server
	key *rsa.PrivateKey
}

// NewOIDC starts a provider on 127.0.0.1; its issuer is its URL.
func NewOIDC() (*OIDC, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	o := &OIDC{key: key}
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := o.URL
		write(w, map[string]any{"issuer": iss, "authorization_endpoint": iss + "/authorize", "token_endpoint": iss + "/token",
			"jwks_uri": iss + "/jwks", "userinfo_endpoint": iss + "/userinfo", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		write(w, map[string]any{"keys": []map[string]string{{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "sign in here", http.StatusUnauthorized) // no browser comes this far in the tests
	})
	o.Server = httptest.NewServer(mux)
	return o, nil
}

// Mint is an ID token for the client id aud, expiring after ttl (negative:
// already expired), signed by the provider.
func (o *OIDC) Mint(aud string, ttl time.Duration) string {
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": o.URL, "aud": aud, "sub": "monitor",
		"email": "monitor@example.com", "email_verified": true, "iat": now.Unix(), "exp": now.Add(ttl).Unix()})
	t.Header["kid"] = "k1"
	s, err := t.SignedString(o.key)
	if err != nil {
		panic(err) // an RSA key of our own: cannot fail
	}
	return s
}

// OAuth2Proxy is a running oauth2-proxy in front of an upstream, signing
// users in with an OIDC provider.
type OAuth2Proxy struct {
	Addr     string
	ClientID string
	proc     *process
}

// OAuth2ProxyOptions shape the gateway: SkipProviderButton sends a client
// without a session straight to the provider (a 302) instead of the
// sign-in page (a 403); SkipJWTBearer admits a request whose Authorization
// carries an ID token of the provider for ClientID.
type OAuth2ProxyOptions struct {
	Upstream           string // http://host:port/
	Issuer             string
	SkipProviderButton bool
	SkipJWTBearer      bool
}

// StartOAuth2Proxy runs oauth2-proxy (built by scripts/test from
// OAuth2ProxyModule) on a free port, returning once it accepts connections.
func StartOAuth2Proxy(dir string, o OAuth2ProxyOptions) (*OAuth2Proxy, error) {
	bin, err := lookGoBin("oauth2-proxy", OAuth2ProxyModule)
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	g := &OAuth2Proxy{Addr: fmt.Sprintf("127.0.0.1:%d", port), ClientID: "wscanary-test"}
	args := []string{"--provider=oidc", "--oidc-issuer-url=" + o.Issuer, "--client-id=" + g.ClientID, "--client-secret=not-a-secret",
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false", "--email-domain=*",
		"--upstream=" + o.Upstream, "--http-address=" + g.Addr, "--redirect-url=http://" + g.Addr + "/oauth2/callback"}
	if o.SkipProviderButton {
		args = append(args, "--skip-provider-button=true")
	}
	if o.SkipJWTBearer {
		args = append(args, "--skip-jwt-bearer-tokens=true")
	}
	// The wait bounds a start (discovery from the provider), however busy
	// the machine.
	g.proc, err = startServing("oauth2-proxy", filepath.Join(dir, "oauth2-proxy.log"), exec.Command(bin, args...), g.Addr, time.Minute)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Stop ends it.
func (g *OAuth2Proxy) Stop() { g.proc.stop(syscall.SIGTERM, 5*time.Second) }
