package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// The size table (issue 29): the `wscanary run` process measured from
// outside at several numbers of checks, in one run: its CPU time (from
// /proc) per handshake the target counted, against the raw floor measured
// in this process between the sizes; its peak RSS above an empty daemon's;
// and, from its own /metrics at the end, the schedule's lateness and the
// runs it skipped.

// SizeResult is one row of the size table.
type SizeResult struct {
	Checks    int     `json:"checks"`
	EveryS    float64 `json:"every_s"`
	WindowS   float64 `json:"window_s"`
	Attempts  int     `json:"attempts"`
	CPUus     float64 `json:"cpu_us"`
	Ratio     float64 `json:"ratio"`
	CorePct   float64 `json:"core_pct"`
	RSSMB     float64 `json:"rss_mb"`
	RSSPerChk float64 `json:"rss_kb_per_check"`
	// RSSScrapeMB is the peak RSS once /metrics was scraped twice.
	RSSScrapeMB float64 `json:"rss_scrape_mb"`
	// LatenessP99ms is the bucket bound under which 99% of the window's
	// runs started (the lateness histogram's), Skipped the runs the daemon
	// skipped in the window.
	LatenessP99ms float64 `json:"lateness_p99_ms"`
	Skipped       int     `json:"skipped"`
	// PacedCPUus is the raw floor's CPU per handshake when it runs at the
	// size's rate instead of in a tight loop, PacedRatio CPUus over it: at
	// 17 handshakes a second every one starts from an idle process and
	// cold caches, which a loop never sees. A diagnostic, not the target.
	PacedCPUus float64 `json:"paced_cpu_us"`
	PacedRatio float64 `json:"paced_ratio"`
}

// size is one row to measure: n checks every every; warm is how long the
// daemon runs after it is healthy and before the window (every check has
// run once, its series are in the store: the steady state).
type size struct {
	checks       int
	every        time.Duration
	warm, window time.Duration
}

func sizesFor(quick bool) []size {
	if quick {
		return []size{{200, time.Second, 8 * time.Second, 16 * time.Second},
			{1000, time.Minute, 65 * time.Second, 30 * time.Second},
			{10000, time.Minute, 65 * time.Second, 30 * time.Second},
			{30000, time.Minute, 90 * time.Second, 30 * time.Second}}
	}
	return []size{{200, time.Second, 10 * time.Second, 30 * time.Second},
		{1000, time.Minute, 70 * time.Second, 60 * time.Second},
		{10000, time.Minute, 70 * time.Second, 60 * time.Second},
		{30000, time.Minute, 90 * time.Second, 60 * time.Second},
		// Loading 100,000 checks and their first runs (new series, every
		// check decided once) take the first two minutes.
		{100000, time.Minute, 180 * time.Second, 60 * time.Second}}
}

// sizeTable measures every size, the floor between them, and an empty
// daemon's RSS first.
func sizeTable(addr string, quick bool, r *Results) error {
	dir, err := os.MkdirTemp("", "wscanary-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchBinary(dir)
	if err != nil {
		return err
	}
	empty, err := runSize(bin, dir, addr, size{checks: 0, every: time.Minute, warm: 3 * time.Second})
	if err != nil {
		return err
	}
	r.EmptyRSSMB = empty.RSSMB
	fmt.Fprintf(os.Stderr, "   empty daemon: %.1f MB peak RSS\n", empty.RSSMB)
	raw := rawAttempt(addr)
	var rawCPU time.Duration
	rawN := 0
	for _, sz := range sizesFor(quick) {
		res, err := runSize(bin, dir, addr, sz)
		if err != nil {
			return err
		}
		start := cpu()
		for range 2000 {
			if err := raw(); err != nil {
				return err
			}
		}
		rawCPU, rawN = rawCPU+cpu()-start, rawN+2000
		if res.Checks > 0 {
			if res.PacedCPUus, err = paced(raw, float64(sz.checks)/sz.every.Seconds()); err != nil {
				return err
			}
			res.PacedRatio = res.CPUus / res.PacedCPUus
			res.RSSPerChk = (res.RSSMB - empty.RSSMB) * 1024 / float64(res.Checks)
		}
		fmt.Fprintf(os.Stderr, "   %d checks @%s: %d attempts in %.0f s, %.0f us each, %.1f%% of a core, %.1f MB, lateness p99 <= %.0f ms, %d skipped\n",
			res.Checks, sz.every, res.Attempts, res.WindowS, res.CPUus, res.CorePct, res.RSSMB, res.LatenessP99ms, res.Skipped)
		r.Sizes = append(r.Sizes, res)
	}
	r.SizesRawCPUus = float64(rawCPU.Microseconds()) / float64(rawN)
	for i := range r.Sizes {
		r.Sizes[i].Ratio = r.Sizes[i].CPUus / r.SizesRawCPUus
	}
	// The 200 @1s row is the process figure of earlier runs.
	if len(r.Sizes) > 0 {
		r.ProcessCPUus, r.ProcessRawCPUus, r.ProcessRatio = r.Sizes[0].CPUus, r.SizesRawCPUus, r.Sizes[0].Ratio
	}
	return nil
}

// paced runs the raw floor at rate handshakes a second, for 10 s or 2,000
// handshakes, and gives its CPU per handshake.
func paced(raw func() error, rate float64) (float64, error) {
	n := int(min(2000, 10*rate))
	gap := time.Duration(float64(time.Second) / rate)
	start, next := cpu(), time.Now()
	for range n {
		if err := raw(); err != nil {
			return 0, err
		}
		next = next.Add(gap)
		time.Sleep(time.Until(next))
	}
	return float64((cpu() - start).Microseconds()) / float64(n), nil
}

// runSize runs `wscanary run` with sz.checks checks against the bench
// server for sz.warm, then measures it for sz.window.
func runSize(bin, parent, addr string, sz size) (SizeResult, error) {
	res := SizeResult{Checks: sz.checks, EveryS: sz.every.Seconds()}
	dir, err := os.MkdirTemp(parent, "size-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	listen, err := testbed.FreeAddr()
	if err != nil {
		return res, err
	}
	os.MkdirAll(filepath.Join(dir, "checks.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "wscanary.yaml"), []byte(fmt.Sprintf("vantage: bench\nlisten: %s\nstate_dir: %s/state\n", listen, dir)), 0o600)
	if err := writeChecks(filepath.Join(dir, "checks.d"), addr, sz); err != nil {
		return res, err
	}
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "wscanary.yaml"))
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_ENDPOINT=")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if err := waitHealthy(listen, 60*time.Second); err != nil {
		return res, fmt.Errorf("%d checks: %w\n%s", sz.checks, err, stderr.String())
	}
	time.Sleep(sz.warm)
	if sz.window == 0 {
		res.RSSMB, err = peakRSS(cmd.Process.Pid)
		return res, err
	}
	// Peak RSS of the daemon's own work, before the bench scrapes its
	// /metrics: a scrape of n checks' series is a transient of its own
	// (RSSScrapeMB, read at the end).
	if res.RSSMB, err = peakRSS(cmd.Process.Pid); err != nil {
		return res, err
	}
	// The schedule's figures are those of the window: the first minutes
	// (loading, every check's first run) are not the steady state.
	late0, skipped0, err := scheduleMetrics(listen)
	if err != nil {
		return res, err
	}
	c0, err := procCPU(cmd.Process.Pid, false)
	if err != nil {
		return res, err
	}
	n0, err := served(addr)
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	time.Sleep(sz.window)
	c1, err := procCPU(cmd.Process.Pid, false)
	if err != nil {
		return res, err
	}
	n1, err := served(addr)
	if err != nil {
		return res, err
	}
	elapsed := time.Since(t0)
	res.WindowS, res.Attempts = elapsed.Seconds(), int(n1-n0)
	if res.Attempts == 0 {
		return res, fmt.Errorf("%d checks: no attempt in %s\n%s", sz.checks, sz.window, stderr.String())
	}
	res.CPUus = float64((c1 - c0).Microseconds()) / float64(res.Attempts)
	res.CorePct = 100 * (c1 - c0).Seconds() / elapsed.Seconds()
	late, skipped, err := scheduleMetrics(listen)
	if err != nil {
		return res, err
	}
	res.LatenessP99ms, res.Skipped = 1000*quantileBound(late0, late, 0.99), int(skipped-skipped0)
	res.RSSScrapeMB, err = peakRSS(cmd.Process.Pid)
	return res, err
}

// perFile: a check file is at most 4 MiB (config.MaxFileBytes); 20,000
// checks of the bench's take 1.6 MB.
const perFile = 20000

// writeChecks writes sz.checks checks against addr into files of perFile.
func writeChecks(dir, addr string, sz size) error {
	for first := 0; first < max(sz.checks, 1); first += perFile {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("size-%06d.yaml", first)))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		w.WriteString("checks:\n")
		if sz.checks == 0 {
			w.WriteString("  []\n")
		}
		for i := first; i < min(sz.checks, first+perFile); i++ {
			fmt.Fprintf(w, "  - {name: s%06d, url: \"ws://%s/?s=%d\", schedule: \"@every %s\"}\n", i, addr, i, sz.every)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

func waitHealthy(listen string, within time.Duration) error {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get("http://" + listen + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("not healthy within %s", within)
}

// served is how many upgrades the bench server accepted.
func served(addr string) (int64, error) {
	resp, err := http.Get("http://" + addr + "/count")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// printSizes writes the size table: the table, measured again.
func printSizes(w io.Writer, r Results) {
	if len(r.Sizes) == 0 {
		return
	}
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Fprintf(w, "\nthe wscanary run process from outside (CPU per handshake the target counted; raw floor %.1f us, same run; empty daemon %.1f MB)\n",
		r.SizesRawCPUus, r.EmptyRSSMB)
	fmt.Fprintf(w, "(x paced: over the raw floor run at the size's rate, not in a loop; a diagnostic, the target is x raw)\n")
	fmt.Fprintf(w, "%8s %6s %10s %12s %9s %9s %8s %9s %11s %12s %8s %14s\n", "checks", "every", "attempts", "CPU/attempt", "x raw", "x paced", "CPU", "peak RSS", "KB/check",
		"late p99 <=", "skipped", "RSS w/ scrape")
	lo, hi := math.Inf(1), 0.0
	ok := true
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "%8d %5.0fs %10d %9.0f us %8.2fx %8.2fx %7.1f%% %6.1f MB %11.2f %9.0f ms %8d %11.1f MB\n", s.Checks, s.EveryS, s.Attempts, s.CPUus, s.Ratio,
			s.PacedRatio, s.CorePct, s.RSSMB, s.RSSPerChk, s.LatenessP99ms, s.Skipped, s.RSSScrapeMB)
		lo, hi = min(lo, s.Ratio), max(hi, s.Ratio)
		ok = ok && s.Ratio <= 2.5
	}
	last := r.Sizes[len(r.Sizes)-1]
	fmt.Fprintf(w, "%-44s %9.2f x %14s  %s\n", "  worst ratio", hi, "<= 2.5", verdict(ok))
	flat := r.Sizes[len(r.Sizes)-1].Ratio / r.Sizes[0].Ratio
	fmt.Fprintf(w, "%-44s %9.2f x %14s  %s\n", "  largest / smallest size", flat, "<= 1.3", verdict(flat <= 1.3))
	fmt.Fprintf(w, "%-44s %9.2f KB %13s  %s\n", fmt.Sprintf("  RSS per check above empty (%d checks)", last.Checks), last.RSSPerChk, "<= 8 KB",
		verdict(last.RSSPerChk <= 8))
	if last.Checks >= 100000 {
		fmt.Fprintf(w, "%-44s %9.0f ms %13s  %s\n", "  lateness p99 at 100k (bucket bound)", last.LatenessP99ms, "< 100 ms",
			verdict(last.LatenessP99ms <= 100 && last.Skipped == 0))
	}
}
