// Command wscanary-bench measures wscanary against the targets of
// the README's performance figures in one run, on this machine: CPU per attempt
// against a raw-socket floor, a daemon with thousands of checks, duration
// accuracy, and transition-to-Slack latency. The WebSocket server runs in
// a separate process so its CPU is not billed to wscanary.
//
//	go run ./cmd/wscanary-bench          # full size (make bench)
//	go run ./cmd/wscanary-bench -quick   # smaller, about 4 minutes (make bench QUICK=1)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/wscanary/wscanary/monitor"
	"github.com/wscanary/wscanary/monitor/config"
	"github.com/wscanary/wscanary/monitor/gctune"
	"github.com/wscanary/wscanary/monitor/report"
	"github.com/wscanary/wscanary/monitor/runner"
	"github.com/wscanary/wscanary/monitor/store"
	"github.com/wscanary/wscanary/monitor/telemetry"
	"github.com/wscanary/wscanary/monitor/testbed"
	"github.com/wscanary/wscanary/notifier"
)

// Results is the JSON written to $BENCH_OUT; the keys are a contract so
// runs can be compared.
type Results struct {
	AttemptCPUus  float64 `json:"attempt_cpu_us"`
	RawFloorCPUus float64 `json:"raw_floor_cpu_us"`
	// StdlibCPUus is informational, not a target: see stdlibAttempt.
	StdlibCPUus float64 `json:"stdlib_cpu_us"`
	// LibraryCPUus is informational, not a target: see libraryAttempt.
	LibraryCPUus   float64 `json:"library_cpu_us"`
	Ratio          float64 `json:"ratio"`
	LatenessP50ms  float64 `json:"lateness_p50_ms"`
	LatenessP99ms  float64 `json:"lateness_p99_ms"`
	CPUCorePct     float64 `json:"cpu_core_pct"`
	RSSMB          float64 `json:"rss_mb"`
	AccuracyMS     float64 `json:"accuracy_ms"`
	AlertLatencyMS float64 `json:"alert_latency_ms"`
	Checks         int     `json:"checks"`
	DurationS      float64 `json:"duration_s"`
	// HistoryCPUus and NoHistoryCPUus are the daemon's CPU per attempt
	// with the history on SQLite and without it, same run.
	HistoryCPUus   float64 `json:"history_cpu_us"`
	NoHistoryCPUus float64 `json:"no_history_cpu_us"`
	HistoryRatio   float64 `json:"history_ratio"`
	// ProcessCPUus is the whole `wscanary run` process per attempt,
	// measured from outside; ProcessRawCPUus the raw floor in that run.
	ProcessCPUus    float64 `json:"process_cpu_us"`
	ProcessRawCPUus float64 `json:"process_raw_cpu_us"`
	ProcessRatio    float64 `json:"process_ratio"`
	// Fleet is three members on one PostgreSQL (fleet.go); nil when not run.
	Fleet *FleetResults `json:"fleet,omitempty"`
	// Sizes is the size table (sizes.go): the process from outside at
	// 200 @1s and 1k, 10k, 30k (and 100k) @60s; SizesRawCPUus the raw
	// floor measured between them, EmptyRSSMB an empty daemon's peak RSS.
	Sizes         []SizeResult `json:"sizes,omitempty"`
	SizesRawCPUus float64      `json:"sizes_raw_cpu_us,omitempty"`
	EmptyRSSMB    float64      `json:"empty_rss_mb,omitempty"`
	// Storage is bytes on disk per raw row and per rollup row (storage.go).
	Storage []StorageResult `json:"storage,omitempty"`
}

type sizes struct {
	attempts, checks, slow, flips int
	interval, window              time.Duration
	// busy checks run @every 1s for the history and process figures,
	// turn long each.
	busy int
	turn time.Duration
	// fleetChecks run on each of three members every fleetInterval.
	fleetChecks   int
	fleetInterval time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve()
		return
	}
	quick := flag.Bool("quick", false, "smaller scale, same figures (about 4 minutes)")
	only := flag.String("only", "", "run one part: cpu, history, sizes, storage, daemon, accuracy, alert or fleet (for investigating a figure)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	sz := sizes{attempts: 3000, checks: 10000, interval: 60 * time.Second, window: 180 * time.Second, slow: 50, flips: 5,
		busy: 200, turn: 20 * time.Second, fleetChecks: 3000, fleetInterval: 60 * time.Second}
	if *quick {
		sz = sizes{attempts: 1000, checks: 2000, interval: 20 * time.Second, window: 45 * time.Second, slow: 20, flips: 3,
			busy: 200, turn: 8 * time.Second, fleetChecks: 1000, fleetInterval: 20 * time.Second}
	}
	if err := run(sz, *only, *quick); err != nil {
		fmt.Fprintln(os.Stderr, "wscanary-bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(sz sizes, only string, quick bool) error {
	raiseNoFile()
	defer gctune.New(sz.checks).Stop() // as `wscanary run` does: the daemon parts run in this process
	srv, addr, err := startServer()
	if err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var r Results
	fmt.Fprintf(os.Stderr, "server on %s (separate process)\n", addr)

	part := func(name string) bool { return only == "" || only == name }
	if part("cpu") {
		fmt.Fprintf(os.Stderr, "1/8 CPU per attempt: %d attempts each\n", sz.attempts)
		fmt.Fprintf(os.Stderr, "    in %d alternating turns: wscanary, raw socket, net/http, coder/websocket\n", rounds)
		wsc, stop, err := wscanaryAttempt(addr)
		if err != nil {
			return err
		}
		us, err := cpuPerAttempt(sz.attempts, wsc, rawAttempt(addr), stdlibAttempt(addr), libraryAttempt(addr))
		stop()
		if err != nil {
			return err
		}
		r.AttemptCPUus, r.RawFloorCPUus, r.StdlibCPUus, r.LibraryCPUus = us[0], us[1], us[2], us[3]
		r.Ratio = r.AttemptCPUus / r.RawFloorCPUus
	}
	if part("history") {
		fmt.Fprintf(os.Stderr, "2/8 the history's cost: %d checks on @every 1s, %d turns of %s with and without\n", sz.busy, rounds, sz.turn)
		if err := historyCost(addr, sz, &r); err != nil {
			return err
		}
	}
	if part("sizes") {
		fmt.Fprintf(os.Stderr, "3/8 the wscanary run process from outside, by number of checks (the raw floor between sizes)\n")
		if err := sizeTable(addr, quick, &r); err != nil {
			return err
		}
	}
	if part("storage") {
		fmt.Fprintf(os.Stderr, "4/8 storage: bytes on disk per raw and rollup row, SQLite and PostgreSQL\n")
		if err := storageCost(quick, &r); err != nil {
			return err
		}
	}
	if part("daemon") {
		fmt.Fprintf(os.Stderr, "5/8 daemon: %d checks on @every %s for %s\n", sz.checks, sz.interval, sz.window)
		if err := daemonScale(addr, sz, &r); err != nil {
			return err
		}
	}
	if part("accuracy") {
		fmt.Fprintf(os.Stderr, "6/8 accuracy against a 200 ms server delay: %d attempts\n", sz.slow)
		if r.AccuracyMS, err = accuracy(addr, sz.slow); err != nil {
			return err
		}
	}
	if part("alert") {
		fmt.Fprintf(os.Stderr, "7/8 transition to Slack request: %d flips\n", sz.flips)
		if r.AlertLatencyMS, err = alertLatency(sz.flips); err != nil {
			return err
		}
	}
	if part("fleet") {
		fmt.Fprintf(os.Stderr, "8/8 fleet: 3 members on one PostgreSQL, %d checks each on @every %s for %s, then %d incidents\n",
			sz.fleetChecks, sz.fleetInterval, sz.window, sz.flips)
		if err := fleetScale(addr, sz, &r); err != nil {
			return err
		}
	}
	printTable(os.Stdout, r)
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = "bench-results.json"
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", out)
	return nil
}

// serve is the WebSocket server process: / upgrades and closes at once,
// /slow waits 200 ms first.
func serve() {
	raiseNoFile()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	var upgrades atomic.Int64
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/count" { // the upgrades accepted so far: the handshakes the target counted
			fmt.Fprintln(w, upgrades.Load())
			return
		}
		if r.URL.Path == "/slow" {
			// Sleep most of it, then spin: a sleeping Go process wakes up
			// to a millisecond late, and the injected delay must be 200 ms,
			// not "200 ms or so".
			until := time.Now().Add(200 * time.Millisecond)
			time.Sleep(198 * time.Millisecond)
			for time.Now().Before(until) {
			}
		}
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
		if err != nil {
			return
		}
		upgrades.Add(1)
		c.CloseNow()
	}))
}

func startServer() (*exec.Cmd, string, error) {
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return nil, "", fmt.Errorf("server: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// cpu is this process's user+system CPU time.
func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func peakRSSMB() float64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func noEnv(string) string { return "" }

func load(checks string) (*config.Config, error) {
	return config.LoadBytes("bench.yaml", []byte("vantage: bench\nlisten: \"\"\n"), map[string][]byte{"bench.yaml": []byte(checks)},
		config.Options{Lookup: func(string) (string, bool) { return "", false }})
}

// rounds is how many turns the CPU contenders take: each runs n/rounds
// attempts per turn, so a machine whose speed drifts during the run (a VM,
// a noisy neighbour) bills the drift to all of them alike.
const rounds = 5

// cpuPerAttempt runs every contender n times in alternating turns, after a
// warm-up of n/10, and returns the CPU per attempt of each in microseconds.
func cpuPerAttempt(n int, contenders ...func() error) ([]float64, error) {
	spent := make([]time.Duration, len(contenders))
	for _, f := range contenders {
		for range n / 10 {
			if err := f(); err != nil {
				return nil, err
			}
		}
	}
	for range rounds {
		for i, f := range contenders {
			start := cpu()
			for range n / rounds {
				if err := f(); err != nil {
					return nil, err
				}
			}
			spent[i] += cpu() - start
		}
	}
	us := make([]float64, len(contenders))
	for i, d := range spent {
		us[i] = float64(d.Microseconds()) / float64(n/rounds*rounds)
	}
	return us, nil
}

// wscanaryAttempt is one successful run of one check through the Runner,
// tracing and metrics on: what the daemon pays per attempt.
func wscanaryAttempt(addr string) (func() error, func(), error) {
	cfg, err := load(fmt.Sprintf("checks:\n  - {name: bench, url: \"ws://%s/\", schedule: \"@every 1m\"}\n", addr))
	if err != nil {
		return nil, nil, err
	}
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "bench", Env: noEnv})
	if err != nil {
		return nil, nil, err
	}
	r := runner.New(cfg, tel)
	c := &cfg.Checks[0]
	one := func() error {
		if rep := r.Run(context.Background(), c); !rep.OK {
			return fmt.Errorf("attempt failed: %+v", rep.Attempts)
		}
		return nil
	}
	return one, func() { tel.Shutdown(context.Background()) }, nil
}

// benchKey is the Sec-WebSocket-Key of both floors (RFC 6455's sample):
// they measure the exchange, not the key's randomness.
const benchKey = "dGhlIHNhbXBsZSBub25jZQ=="

// rawAttempt is the floor: write the upgrade request on a raw TCP
// connection and read the 101, nothing else.
func rawAttempt(addr string) func() error {
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + benchKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	buf := make([]byte, 4096)
	return func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := io.WriteString(c, req); err != nil {
			return err
		}
		got := 0
		for !strings.Contains(string(buf[:got]), "\r\n\r\n") {
			k, err := c.Read(buf[got:])
			if err != nil {
				return err
			}
			got += k
		}
		if !strings.HasPrefix(string(buf[:got]), "HTTP/1.1 101") {
			return fmt.Errorf("raw: %q", buf[:got])
		}
		return nil
	}
}

// stdlibAttempt is what any Go client that bounds its time and parses the
// answer pays before it does anything of its own: a dial under a context
// deadline, and net/http writing the request and parsing the response. It
// is not a target; it splits the ratio into what the standard library
// costs and what wscanary adds on top.
func stdlibAttempt(addr string) func() error {
	var d net.Dialer
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Key", benchKey)
		req.Header.Set("Sec-WebSocket-Version", "13")
		if err := req.Write(c); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("stdlib: %s", resp.Status)
		}
		return nil
	}
}

// libraryAttempt is coder/websocket's Dial with its defaults (net/http's
// Transport) and a deadline: what a hand-rolled Go canary would pay. Not
// a target; it shows what wscanary's own round tripper saves.
func libraryAttempt(addr string) func() error {
	u := "ws://" + addr + "/"
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, u, nil)
		if err != nil {
			return err
		}
		return c.CloseNow()
	}
}

func daemonScale(addr string, sz sizes, r *Results) error {
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range sz.checks {
		fmt.Fprintf(&b, "  - {name: c%05d, url: \"ws://%s/?c=%d\", schedule: \"@every %s\"}\n", i, addr, i, sz.interval)
	}
	cfg, err := load(b.String())
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wscanary-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.StateDir = dir
	st, err := store.Open(context.Background(), store.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer st.Close()
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "bench", Env: noEnv})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	var mu sync.Mutex
	var late []time.Duration
	failed := 0
	d, err := monitor.NewDaemon(monitor.DaemonOptions{Config: cfg, Store: st, Telemetry: tel,
		Notifier: notifier.NewConsole(io.Discard, notifier.ConsoleOptions{}),
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		OnTick: func(_ string, l time.Duration) {
			mu.Lock()
			late = append(late, l)
			mu.Unlock()
		},
		OnReport: func(rep report.Report) {
			if !rep.OK {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		},
	})
	if err != nil {
		return err
	}
	startWall, startCPU := time.Now(), cpu()
	d.Start()
	time.Sleep(sz.window)
	elapsed, used := time.Since(startWall), cpu()-startCPU
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.Stop(ctx)
	mu.Lock()
	defer mu.Unlock()
	if len(late) == 0 {
		return fmt.Errorf("no tick in %s", sz.window)
	}
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	pct := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))].Microseconds()) / 1000 }
	r.LatenessP50ms, r.LatenessP99ms = pct(0.50), pct(0.99)
	r.CPUCorePct = 100 * used.Seconds() / elapsed.Seconds()
	r.RSSMB = peakRSSMB()
	r.Checks, r.DurationS = sz.checks, elapsed.Seconds()
	fmt.Fprintf(os.Stderr, "   %d ticks, %d failed runs\n", len(late), failed)
	return nil
}

func accuracy(addr string, n int) (float64, error) {
	cfg, err := load(fmt.Sprintf("checks:\n  - {name: slow, url: \"ws://%s/slow\", schedule: \"@every 1m\"}\n", addr))
	if err != nil {
		return 0, err
	}
	r := runner.New(cfg, nil)
	var ds []float64
	for range n {
		rep := r.Run(context.Background(), &cfg.Checks[0])
		if !rep.OK {
			return 0, fmt.Errorf("slow attempt failed: %+v", rep.Attempts)
		}
		ds = append(ds, rep.Attempts[0].DurationMS)
	}
	sort.Float64s(ds)
	return ds[len(ds)/2] - 200, nil
}

// alertLatency: from the run that completes a transition (OnReport) to the
// Slack request (the fake Slack's clock), median over flips.
func alertLatency(flips int) (float64, error) {
	origin, err := testbed.NewOrigin(testbed.OriginOptions{})
	if err != nil {
		return 0, err
	}
	defer origin.Close()
	slack := testbed.NewFakeSlack("xoxb-bench")
	defer slack.Close()
	cfg, err := load(fmt.Sprintf("checks:\n  - {name: flip, url: \"ws://%s/ws\", schedule: \"@every 1s\"}\n", origin.Addr()))
	if err != nil {
		return 0, err
	}
	dir, _ := os.MkdirTemp("", "wscanary-bench-")
	defer os.RemoveAll(dir)
	st, err := store.Open(context.Background(), store.Options{Dir: dir})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	n, err := notifier.NewSlack(notifier.SlackOptions{Token: "xoxb-bench", Channel: "#b", APIURL: slack.APIURL()})
	if err != nil {
		return 0, err
	}
	var mu sync.Mutex
	var firstBad time.Time
	d, err := monitor.NewDaemon(monitor.DaemonOptions{Config: cfg, Store: st, Notifier: n,
		OnReport: func(rep report.Report) {
			mu.Lock()
			defer mu.Unlock()
			if len(rep.Attempts) > 0 && rep.Attempts[0].Status == 403 && firstBad.IsZero() {
				firstBad = time.Now()
			}
		}})
	if err != nil {
		return 0, err
	}
	d.Start()
	defer d.Stop(context.Background())
	var lat []float64
	waitFor := func(cond func() bool) error {
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			if cond() {
				return nil
			}
		}
		return fmt.Errorf("alert latency: timed out")
	}
	// The first flip opens an incident, later ones reopen it (a flapping
	// check keeps its message): either way the first Slack request after
	// the failing run is what a person is waiting for.
	for range flips {
		time.Sleep(1500 * time.Millisecond)
		mu.Lock()
		firstBad = time.Time{}
		mu.Unlock()
		before := len(slack.Calls())
		origin.Set(testbed.Behavior{Status: 403})
		if err := waitFor(func() bool { return len(slack.Calls()) > before }); err != nil {
			return 0, err
		}
		first := slack.Calls()[before]
		mu.Lock()
		lat = append(lat, float64(first.At.Sub(firstBad).Microseconds())/1000)
		mu.Unlock()
		// Let the spacing of the incident's messages (store.ReplySpacing)
		// pass, so the next flip is not merged into a waiting reply.
		before = len(slack.Calls())
		origin.Set(testbed.Behavior{})
		if err := waitFor(func() bool { return len(slack.Calls()) > before }); err != nil {
			return 0, err
		}
		time.Sleep(store.ReplySpacing)
	}
	sort.Float64s(lat)
	return lat[len(lat)/2], nil
}

func printTable(w io.Writer, r Results) {
	verdict := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "MISS"
	}
	fmt.Fprintf(w, "\n%-44s %12s %14s  %s\n", "figure", "measured", "target", "")
	row := func(name string, v float64, unit, target string, ok bool) {
		fmt.Fprintf(w, "%-44s %9.2f %-3s %14s  %s\n", name, v, unit, target, verdict(ok))
	}
	fmt.Fprintf(w, "%-44s %9.1f us\n", "CPU per attempt, wscanary (traces+metrics)", r.AttemptCPUus)
	fmt.Fprintf(w, "%-44s %9.1f us\n", "CPU per attempt, raw socket floor", r.RawFloorCPUus)
	if r.RawFloorCPUus > 0 { // -only without cpu leaves them unmeasured
		ref := func(name string, v float64) {
			fmt.Fprintf(w, "%-44s %9.1f us %14s  (%.2f x raw)\n", name, v, "", v/r.RawFloorCPUus)
		}
		ref("  for reference: net/http with a deadline", r.StdlibCPUus)
		ref("  for reference: websocket.Dial, defaults", r.LibraryCPUus)
	}
	row("ratio", r.Ratio, "x", "<= 1.8", r.Ratio <= 1.8)
	fmt.Fprintf(w, "%-44s %9.1f us\n", "daemon CPU per attempt, history on SQLite", r.HistoryCPUus)
	fmt.Fprintf(w, "%-44s %9.1f us\n", "daemon CPU per attempt, no history", r.NoHistoryCPUus)
	row("history ratio", r.HistoryRatio, "x", "<= 1.15", r.HistoryRatio <= 1.15)
	row(fmt.Sprintf("lateness p50 (%d checks)", r.Checks), r.LatenessP50ms, "ms", "", true)
	row(fmt.Sprintf("lateness p99 (%d checks)", r.Checks), r.LatenessP99ms, "ms", "< 250 ms", r.LatenessP99ms < 250)
	row(fmt.Sprintf("average CPU over %.0f s", r.DurationS), r.CPUCorePct, "%", "< 30% core", r.CPUCorePct < 30)
	row("peak RSS", r.RSSMB, "MB", "< 200 MB", r.RSSMB < 200)
	row("reported - injected 200 ms delay", r.AccuracyMS, "ms", "within 2 ms", r.AccuracyMS >= -2 && r.AccuracyMS <= 2)
	row("transition to Slack request", r.AlertLatencyMS, "ms", "< 500 ms", r.AlertLatencyMS < 500)
	printSizes(w, r)
	printStorage(w, r)
	if f := r.Fleet; f != nil {
		fmt.Fprintf(w, "fleet: %d members x %d checks on @every %.0fs, one PostgreSQL, over %.0f s\n", f.Members, f.ChecksEach, f.IntervalS, f.WindowS)
		row("  lateness p99 (bucket bound, worst member)", f.LatenessP99ms, "ms", "< 250 ms", f.LatenessP99ms < 250)
		for _, reg := range benchRegions {
			fmt.Fprintf(w, "%-44s %9.2f %%   %9.1f MB peak RSS\n", "  member "+reg.name+" CPU (of one core)", f.PerMemberCPU[reg.name], f.PerMemberRSSMB[reg.name])
		}
		fmt.Fprintf(w, "%-44s %9.2f %%\n", "  PostgreSQL CPU (of one core)", f.DBCPUCorePct)
		row("  run to Slack, opened by a second member", f.AlertMedianMS, "ms", "< 1000 ms", f.AlertMaxMS < 1000)
		fmt.Fprintf(w, "%-44s %9.2f ms\n", "    (slowest)", f.AlertMaxMS)
	}
}

// busyConfig is n checks on @every 1s against the bench server.
func busyConfig(addr string, n int) string {
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: b%04d, url: \"ws://%s/?b=%d\", schedule: \"@every 1s\"}\n", i, addr, i)
	}
	return b.String()
}

// historyCost runs the daemon (scheduler, runner, store, metrics: all of
// it) with the history written to SQLite and without, in alternating
// turns, and compares their CPU per attempt.
func historyCost(addr string, sz sizes, r *Results) error {
	cfg, err := load(busyConfig(addr, sz.busy))
	if err != nil {
		return err
	}
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Vantage: "bench", Env: noEnv})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.Background())
	turn := func(noHistory bool) (time.Duration, int, error) {
		dir, err := os.MkdirTemp("", "wscanary-bench-")
		if err != nil {
			return 0, 0, err
		}
		defer os.RemoveAll(dir)
		st, err := store.Open(context.Background(), store.Options{Dir: dir})
		if err != nil {
			return 0, 0, err
		}
		defer st.Close()
		var attempts atomic.Int64
		d, err := monitor.NewDaemon(monitor.DaemonOptions{Config: cfg, Store: st, Telemetry: tel, NoHistory: noHistory,
			Notifier: notifier.NewConsole(io.Discard, notifier.ConsoleOptions{}),
			Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
			OnReport: func(rep report.Report) { attempts.Add(int64(len(rep.Attempts))) }})
		if err != nil {
			return 0, 0, err
		}
		d.Start()
		time.Sleep(2 * time.Second) // every check has run once: past the start
		a0, c0 := attempts.Load(), cpu()
		time.Sleep(sz.turn)
		used, n := cpu()-c0, int(attempts.Load()-a0)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return used, n, d.Stop(ctx)
	}
	var with, without time.Duration
	var nWith, nWithout int
	for range rounds {
		for _, off := range []bool{false, true} {
			used, n, err := turn(off)
			if err != nil {
				return err
			}
			if off {
				without, nWithout = without+used, nWithout+n
			} else {
				with, nWith = with+used, nWith+n
			}
		}
	}
	if nWith == 0 || nWithout == 0 {
		return fmt.Errorf("history cost: no attempts")
	}
	r.HistoryCPUus = float64(with.Microseconds()) / float64(nWith)
	r.NoHistoryCPUus = float64(without.Microseconds()) / float64(nWithout)
	r.HistoryRatio = r.HistoryCPUus / r.NoHistoryCPUus
	fmt.Fprintf(os.Stderr, "   %d and %d attempts\n", nWith, nWithout)
	return nil
}
