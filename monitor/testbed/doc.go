// Package testbed runs real servers on 127.0.0.1 for wscanary's integration
// tests and for the in-process `wscanary demo`:
//
//   - Origin: a WebSocket origin (net/http + github.com/coder/websocket) whose
//     Behavior (Origin allowlist, token rule, CSRF page, fixed answers, delays,
//     hangs) can be switched at runtime, and which records every request.
//   - CA: a throwaway certificate authority for valid and expired leaves.
//   - Nginx: a real nginx (Debian nginx-light) run unprivileged under its own
//     prefix directory, with EdgeConfig rendering the edge behaviors that
//     matter to a WebSocket handshake (pass, strip Upgrade, Cloudflare-like
//     WAF 403, per-address deny) and Reload applying a new config.
//   - Edge: the same edge modes in process (httputil.ReverseProxy), for the
//     demo on machines without nginx.
//   - Tinyproxy: a real HTTP CONNECT proxy as a vantage.
//
// Nothing here imports package testing: helpers for tests (NewOriginT,
// StartNginxEdgeT, ...) take the small TB interface, which *testing.T
// satisfies, so the demo binary does not grow test flags. Missing external
// tools are reported with the sentinel errors ErrNoNginx, ErrNoHeadersMore
// and ErrNoTinyproxy; the *T helpers turn them into a skip, or a failure
// when WSCANARY_REQUIRE_TOOLS=1.
//
// External processes run in their own process group, each watched by a small
// sh guardian that kills the group when this Go process dies, even by
// SIGKILL or a test timeout, so no nginx worker outlives its test binary.
// Nothing logs unless given a *slog.Logger.
package testbed
