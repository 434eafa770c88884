package testbed

// CSRFPage is the body of the Origin's CSRF rejection, modeled on Django's
// CSRF failure view (django/views/csrf.py, DEBUG off).
const CSRFPage = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta http-equiv="content-type" content="text/html; charset=utf-8">
  <meta name="robots" content="NONE,NOARCHIVE">
  <title>403 Forbidden</title>
</head>
<body>
  <div id="summary">
    <h1>Forbidden <span>(403)</span></h1>
    <p>` + CSRFFailure + `</p>
  </div>
  <div id="explanation">
    <p>You are seeing this message because this site requires a CSRF cookie when submitting forms. This cookie is required for security reasons, to ensure that your browser is not being hijacked by third parties.</p>
    <p>Reason given for failure:</p>
    <pre>CSRF cookie not set.</pre>
  </div>
</body>
</html>
`

// ChallengePage is the body of the Cloudflare-like managed challenge that the
// WAF edge modes (nginx and Go) answer a WebSocket upgrade with. It holds no
// '$' so that nginx can return it verbatim.
const ChallengePage = `<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>` +
	`<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">` +
	`<meta name="robots" content="noindex,nofollow"></head><body>` +
	`<div class="main-wrapper" role="main"><div class="main-content">` +
	`<h1 class="zone-name-title h1">Just a moment...</h1>` +
	`<h2 class="h2">Checking if the site connection is secure</h2>` +
	`<noscript><div>Enable JavaScript and cookies to continue</div></noscript>` +
	`</div></div><div class="footer">Performance &amp; security by Cloudflare</div></body></html>` + "\n"

// Headers of the WAF challenge answer, in both edges. Cf-Ray is added per
// request ("<16 hex>-TST").
const (
	challengeServer       = "cloudflare"
	challengeMitigated    = "challenge"
	challengeContentType  = "text/html; charset=UTF-8"
	challengeCacheControl = "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
)

// nginxErrorPage is the body nginx (server_tokens off) sends with its own
// error answers, e.g. "403 Forbidden" for a deny rule; the Go Edge sends the
// same bytes.
func nginxErrorPage(statusLine string) string {
	return "<html>\r\n<head><title>" + statusLine + "</title></head>\r\n<body>\r\n" +
		"<center><h1>" + statusLine + "</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
}
