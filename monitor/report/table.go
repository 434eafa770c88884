package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON prints reports as one JSON array: the `--output json` contract.
func WriteJSON(w io.Writer, reps []Report) error {
	if reps == nil {
		reps = []Report{}
	}
	for i := range reps {
		if reps[i].Attempts == nil {
			reps[i].Attempts = []Attempt{}
		}
		if reps[i].Diagnosis.Hints == nil {
			reps[i].Diagnosis.Hints = []string{}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(reps)
}

// TableOptions shape the table for people.
type TableOptions struct {
	// Color adds ANSI colors (only when writing to a terminal).
	Color bool
	// AllHints prints every hint instead of the first.
	AllHints bool
}

const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// WriteTable prints one row per attempt and, under each run, its diagnosis
// and first hint.
func WriteTable(w io.Writer, reps []Report, opts TableOptions) error {
	paint := func(code, s string) string {
		if !opts.Color || s == "" {
			return s
		}
		return code + s + ansiReset
	}
	for i, rep := range reps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		verdict := paint(ansiGreen, "OK")
		if !rep.OK {
			verdict = paint(ansiRed, "FAIL")
		}
		fmt.Fprintf(w, "%s %s\n", paint(ansiBold, rep.Check), verdict)
		if rep.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", rep.Error)
		}
		if len(rep.Attempts) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			edges, h2 := false, false
			for _, a := range rep.Attempts {
				edges = edges || a.Edge != "" || a.Pop != ""
				h2 = h2 || a.Transport == TransportHTTP2
			}
			// The HTTP and EDGE columns show only when a run has them.
			head := []string{"VANTAGE", "ROUTE"}
			if h2 {
				head = append(head, "HTTP")
			}
			head = append(head, "VARIANT", "STATUS", "TIME")
			if edges {
				head = append(head, "EDGE")
			}
			fmt.Fprintln(tw, "  "+strings.Join(append(head, "RESULT", "TRACE"), "\t"))
			for _, a := range rep.Attempts {
				// Pad before painting so escape codes do not skew columns.
				status := fmt.Sprintf("%-6s", statusText(a))
				switch {
				case a.OK:
					status = paint(ansiGreen, status)
				case a.Status == 401 || a.Status == 403:
					status = paint(ansiRed, status)
				default:
					status = paint(ansiYellow, status)
				}
				row := []string{a.Vantage, string(a.Route)}
				if h2 {
					row = append(row, httpVersion(a.Transport))
				}
				row = append(row, string(a.Variant), status, fmt.Sprintf("%.1fms", a.DurationMS))
				if edges {
					row = append(row, edgeText(a))
				}
				fmt.Fprintln(tw, "  "+strings.Join(append(row, result(a), paint(ansiDim, a.TraceID)), "\t"))
			}
			tw.Flush()
		}
		d := rep.Diagnosis
		if d.Cause != "" {
			cause := string(d.Cause)
			if d.Vendor != "" {
				cause += " (" + d.Vendor + ")"
			}
			if d.Cause == CauseOK {
				cause = paint(ansiGreen, cause)
			} else {
				cause = paint(ansiRed, cause)
			}
			fmt.Fprintf(w, "  cause: %s", cause)
			if d.Summary != "" {
				fmt.Fprintf(w, ": %s", d.Summary)
			}
			fmt.Fprintln(w)
			hints := d.Hints
			if !opts.AllHints && len(hints) > 1 {
				hints = hints[:1]
			}
			for _, h := range hints {
				fmt.Fprintf(w, "  hint:  %s\n", h)
			}
		}
	}
	return nil
}

// httpVersion is how the table names a transport.
func httpVersion(t Transport) string {
	if t == TransportHTTP2 {
		return "2"
	}
	return "1.1"
}

func statusText(a Attempt) string {
	if a.Status == 0 {
		return "-"
	}
	return fmt.Sprint(a.Status)
}

// result is the attempt's one-line outcome: the error, the close code, or
// the reason phrase and the most telling header.
func result(a Attempt) string {
	switch {
	case a.NotOffered != "":
		return OneLine(a.NotOffered, 70)
	case a.Error != "":
		return OneLine(a.Error, 70)
	case a.CloseCode != 0:
		return fmt.Sprintf("closed %d", a.CloseCode)
	case a.OK && a.Transport == TransportHTTP2:
		return "upgraded (h2 extended CONNECT)"
	case a.OK:
		return "upgraded"
	}
	s := a.Reason
	for _, h := range []string{"Cf-Mitigated", "Server", "Location", "Www-Authenticate"} {
		if v := a.Headers[h]; v != "" {
			s += " " + h + ": " + v
			break
		}
	}
	return OneLine(strings.TrimSpace(s), 70)
}

// OneLine folds s onto one line of at most n runes (an ellipsis ends a
// cut): text from a target or a person must not break a table's rows.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// edgeText is the edge an answer came through and where: "cloudflare@FRA".
func edgeText(a Attempt) string {
	switch {
	case a.Edge != "" && a.Pop != "":
		return a.Edge + "@" + a.Pop
	case a.Edge != "":
		return a.Edge
	case a.Pop != "":
		return "@" + a.Pop
	}
	return "-"
}

// Ago is a duration for a page or a table: "12m", "3h05m", "2d04h".
func Ago(d time.Duration) string {
	switch {
	case d < 0:
		return "–"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
