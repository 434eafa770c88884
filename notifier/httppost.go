package notifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// poster sends one JSON request per attempt to an HTTP receiver that is
// not Slack (Alertmanager, PagerDuty, a webhook) and classifies its answer
// like Slack's: 2xx is delivered; 429, 408 and 5xx are retried (Retry-After
// honoured); any other 4xx is permanent. Its secrets never reach an error.
type poster struct {
	service string
	client  *http.Client
	scrub   *scrubber
}

func newPoster(service string, client *http.Client, secrets ...string) *poster {
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	s := &scrubber{}
	for _, v := range secrets {
		if len(v) >= 4 {
			s.secrets = append(s.secrets, v)
		}
	}
	return &poster{service: service, client: client, scrub: s}
}

// post sends body to url with headers and returns nil on a 2xx.
func (p *poster) post(ctx context.Context, op, url string, headers map[string]string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return p.fail(op, 0, 0, "", err, true)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wscanary")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return p.fail(op, 0, 0, "", err, false)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	ra := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return p.fail(op, resp.StatusCode, ra, strings.TrimSpace(string(b)), nil, permanentStatus(resp.StatusCode))
}

func (p *poster) fail(op string, status int, retryAfter time.Duration, body string, err error, permanent bool) *Error {
	e := &Error{Op: op, HTTPStatus: status, RetryAfter: retryAfter, permanent: permanent, service: p.service}
	var msg string
	switch {
	case err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		msg = err.Error()
		e.err = err
	case err != nil:
		msg = "request failed: " + err.Error()
		e.err = p.scrub.sanitize(err)
	default:
		msg = fmt.Sprintf("HTTP %d", status)
		if body != "" {
			msg += ": " + oneLineBody(body)
		}
		if retryAfter > 0 {
			msg += ", retry after " + retryAfter.String()
		}
	}
	e.msg = p.scrub.scrub(msg)
	return e
}

func oneLineBody(s string) string {
	return truncate(strings.Join(strings.Fields(s), " "), 200)
}
