package telemetry

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// metricsHandler serves /metrics in the text format (0.0.4): the
// registry's families (Go runtime, process, and the OpenTelemetry
// instruments of a few series each), then the per-series families written
// straight from Metrics. Scrapers that prefer protobuf or OpenMetrics take
// text, as Prometheus does from any exporter that offers only text.
type metricsHandler struct {
	reg  prometheus.Gatherer
	m    *Metrics
	bufs sync.Pool // *bufio.Writer
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	if r.Method == http.MethodHead {
		return
	}
	// As promhttp did: a collector that fails fails the scrape, so the
	// scraper says so (up == 0) rather than missing series quietly.
	mfs, err := h.reg.Gather()
	if err != nil {
		http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out := &sticky{w: w}
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		// BestSpeed: 100,000 checks are 200 MB of text, and a scrape
		// must not take a core from the schedule for long.
		gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		defer gz.Close()
		out.w = gz
	}
	bw, _ := h.bufs.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(out, 64<<10)
	} else {
		bw.Reset(out)
	}
	defer func() { bw.Reset(nil); h.bufs.Put(bw) }()
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(bw, mf); err != nil {
			return // the scraper went away
		}
	}
	h.m.writeSeries(bw, out.failed)
	bw.Flush()
}

// sticky keeps the first write error, so that a scrape whose scraper went
// away stops walking 100,000 series.
type sticky struct {
	w   io.Writer
	err error
}

func (s *sticky) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}

func (s *sticky) failed() bool { return s.err != nil }

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and
// does not refuse it with q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		for param := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				return err == nil && q > 0
			}
		}
		return true
	}
	return false
}
