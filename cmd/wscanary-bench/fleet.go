package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wscanary/wscanary/monitor/testbed"
)

// FleetResults are the fleet's figures: three `wscanary run` members on
// one PostgreSQL, each with its checks, measured from outside.
type FleetResults struct {
	Members        int                `json:"members"`
	ChecksEach     int                `json:"checks_each"`
	IntervalS      float64            `json:"interval_s"`
	WindowS        float64            `json:"window_s"`
	LatenessP99ms  float64            `json:"lateness_p99_ms"`
	MaxCPUCorePct  float64            `json:"max_cpu_core_pct"`
	MaxRSSMB       float64            `json:"max_rss_mb"`
	DBCPUCorePct   float64            `json:"db_cpu_core_pct"`
	AlertMedianMS  float64            `json:"alert_median_ms"`
	AlertMaxMS     float64            `json:"alert_max_ms"`
	PerMemberCPU   map[string]float64 `json:"per_member_cpu_core_pct"`
	PerMemberRSSMB map[string]float64 `json:"per_member_rss_mb"`
}

var benchRegions = []struct{ name, addr string }{{"eu", "127.0.0.2"}, {"us", "127.0.0.3"}, {"ap", "127.0.0.4"}}

const benchSlackToken = "xoxb-bench-fleet"

type member struct {
	name, listen string
	cmd          *exec.Cmd
}

// fleetScale runs three members with sz.fleetChecks checks each on
// sz.fleetInterval against one local PostgreSQL for sz.window and measures
// each from /proc and its /metrics: tick lateness (the p99 is the upper
// bound of its histogram bucket), CPU and peak RSS per member, and the
// database's CPU (the postmaster and its backends). Then, with the load
// still on, it flips sz.flips checks with min_vantages 2 to failing: the
// incident is opened by the second member whose run fails, and the figure
// is from that run's end (its history row) to the Slack request.
func fleetScale(addr string, sz sizes, r *Results) error {
	pg, err := testbed.StartPostgres()
	if errors.Is(err, testbed.ErrNoPostgres) {
		return fmt.Errorf("fleet: %w (apt-get install postgresql, or make bench without the fleet: -only)", err)
	}
	if err != nil {
		return err
	}
	defer pg.Close()
	dsn, err := pg.NewDatabase()
	if err != nil {
		return err
	}
	slack := testbed.NewFakeSlack(benchSlackToken)
	defer slack.Close()
	var flipURLs []string
	var origins []*testbed.Origin
	for range sz.flips {
		o, err := testbed.NewOrigin(testbed.OriginOptions{})
		if err != nil {
			return err
		}
		defer o.Close()
		origins = append(origins, o)
		flipURLs = append(flipURLs, "ws://"+o.Addr()+"/ws")
	}
	dir, err := os.MkdirTemp("", "wscanary-bench-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchBinary(dir)
	if err != nil {
		return err
	}
	checks := filepath.Join(dir, "checks.d")
	os.MkdirAll(checks, 0o755)
	var b strings.Builder
	b.WriteString("checks:\n")
	for i := range sz.fleetChecks {
		fmt.Fprintf(&b, "  - {name: f%05d, url: \"ws://%s/?f=%d\", schedule: \"@every %s\"}\n", i, addr, i, sz.fleetInterval)
	}
	for i, u := range flipURLs {
		fmt.Fprintf(&b, "  - {name: flip%d, url: %q, schedule: \"@every 1s\", timeout: 2s, alert: {min_vantages: 2}}\n", i, u)
	}
	os.WriteFile(filepath.Join(checks, "fleet.yaml"), []byte(b.String()), 0o600)
	var members []*member
	defer func() {
		for _, m := range members {
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, m := range members {
			m.cmd.Wait()
		}
	}()
	for _, reg := range benchRegions {
		listen, err := testbed.FreeAddr()
		if err != nil {
			return err
		}
		main := fmt.Sprintf("vantage: %s\nsource_address: %s\nlisten: %s\nstate_dir: %s\nchecks_dir: %s\nstore: %s\nslack: {token: %s, channel: \"#bench\", api_url: %q}\n",
			reg.name, reg.addr, listen, filepath.Join(dir, reg.name), checks, dsn, benchSlackToken, slack.APIURL())
		path := filepath.Join(dir, reg.name+".yaml")
		os.WriteFile(path, []byte(main), 0o600)
		cmd := exec.Command(bin, "run", "--config", path)
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=", "OTEL_EXPORTER_OTLP_ENDPOINT=")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		if err := cmd.Start(); err != nil {
			return err
		}
		members = append(members, &member{name: reg.name, listen: listen, cmd: cmd})
	}
	// Warm up: every check has run and the first series are written.
	time.Sleep(sz.fleetInterval + 10*time.Second)
	type snap struct {
		cpu  time.Duration
		late map[float64]float64
	}
	take := func() ([]snap, time.Duration, error) {
		out := make([]snap, len(members))
		for i, m := range members {
			c, err := procCPU(m.cmd.Process.Pid, false)
			if err != nil {
				return nil, 0, err
			}
			l, _, err := scheduleMetrics(m.listen)
			if err != nil {
				return nil, 0, err
			}
			out[i] = snap{c, l}
		}
		db, err := treeCPU(pg.Pid())
		return out, db, err
	}
	s0, db0, err := take()
	if err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(sz.window)
	s1, db1, err := take()
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	f := FleetResults{Members: len(members), ChecksEach: sz.fleetChecks + sz.flips, IntervalS: sz.fleetInterval.Seconds(),
		WindowS: elapsed.Seconds(), PerMemberCPU: map[string]float64{}, PerMemberRSSMB: map[string]float64{}}
	for i, m := range members {
		pct := 100 * (s1[i].cpu - s0[i].cpu).Seconds() / elapsed.Seconds()
		rss, err := peakRSS(m.cmd.Process.Pid)
		if err != nil {
			return err
		}
		f.PerMemberCPU[m.name], f.PerMemberRSSMB[m.name] = pct, rss
		f.MaxCPUCorePct, f.MaxRSSMB = max(f.MaxCPUCorePct, pct), max(f.MaxRSSMB, rss)
		f.LatenessP99ms = max(f.LatenessP99ms, 1000*quantileBound(s0[i].late, s1[i].late, 0.99))
	}
	f.DBCPUCorePct = 100 * (db1 - db0).Seconds() / elapsed.Seconds()

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var lat []float64
	for i, o := range origins {
		name := fmt.Sprintf("flip%d", i)
		flipped := time.Now()
		o.Set(testbed.Behavior{Status: 403, Body: "forbidden"})
		var call testbed.SlackCall
		deadline := time.Now().Add(30 * time.Second)
		for call.Method == "" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			for _, c := range slack.Calls() {
				if strings.HasPrefix(c.Text, "FAILING  "+name+":") {
					call = c
					break
				}
			}
		}
		if call.Method == "" {
			return fmt.Errorf("fleet: no Slack message for %s within 30 s", name)
		}
		second, err := secondFailure(db, name, flipped)
		if err != nil {
			return err
		}
		ms := float64(call.At.Sub(second).Microseconds()) / 1000
		lat = append(lat, ms)
		fmt.Fprintf(os.Stderr, "   %s: opened %.0f ms after the second member's failing run\n", name, ms)
	}
	sort.Float64s(lat)
	f.AlertMedianMS, f.AlertMaxMS = lat[len(lat)/2], lat[len(lat)-1]
	r.Fleet = &f
	return nil
}

// benchBinary builds wscanary (or takes $WSCANARY_BIN, another build to
// compare with).
func benchBinary(dir string) (string, error) {
	if bin := os.Getenv("WSCANARY_BIN"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(dir, "wscanary")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/wscanary").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// secondFailure is when the second member to see the check fail finished
// that run: the run that completed the transition (min_vantages 2).
func secondFailure(db *sql.DB, check string, since time.Time) (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT k.member, MIN(h.at) FROM history h JOIN series_keys k ON k.id = h.series
		WHERE k.check_name = $1 AND h.outcome <> 'upgraded' AND h.at >= $2 GROUP BY k.member ORDER BY 2`, check, since.UnixMilli())
	if err != nil {
		return time.Time{}, err
	}
	defer rows.Close()
	var ats []int64
	for rows.Next() {
		var m string
		var at int64
		if err := rows.Scan(&m, &at); err != nil {
			return time.Time{}, err
		}
		ats = append(ats, at)
	}
	if len(ats) < 2 {
		return time.Time{}, fmt.Errorf("fleet: %s failed at %d members, want 2 or more", check, len(ats))
	}
	return time.UnixMilli(ats[1]), rows.Err()
}

// procCPU is a process's user+system CPU time, with its waited-for
// children's when children is set.
func procCPU(pid int, children bool) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	var ticks int64
	fields := []int{11, 12}
	if children {
		fields = append(fields, 13, 14)
	}
	for _, i := range fields {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	const clk = 100 // USER_HZ on Linux
	return time.Duration(ticks) * time.Second / clk, nil
}

// treeCPU is the CPU of a server and its live children (PostgreSQL's
// backends), and of the children it already reaped.
func treeCPU(pid int) (time.Duration, error) {
	total, err := procCPU(pid, true)
	if err != nil {
		return 0, err
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		_, rest, _ := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			c, err := procCPU(child, false)
			if err == nil {
				total += c
			}
		}
	}
	return total, nil
}

// peakRSS is a process's peak resident set (VmHWM) in MB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM")
}

// scheduleMetrics reads, from a daemon's /metrics, the cumulative buckets
// of its lateness histogram by upper bound in seconds, and the runs it
// skipped.
func scheduleMetrics(listen string) (map[float64]float64, float64, error) {
	client := http.Client{Timeout: 3 * time.Minute}
	resp, err := client.Get("http://" + listen + "/metrics")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	out := map[float64]float64{}
	skipped := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "wscanary_runs_skipped_total") {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			skipped += v
			continue
		}
		if !strings.HasPrefix(l, "wscanary_schedule_lateness_seconds_bucket{") {
			continue
		}
		_, after, ok := strings.Cut(l, `le="`)
		if !ok {
			continue
		}
		le, _, _ := strings.Cut(after, `"`)
		bound, err := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound, err = 1e9, nil
		}
		if err != nil {
			continue
		}
		v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		out[bound] += v
	}
	return out, skipped, sc.Err()
}

// quantileBound is the upper bound of the bucket that holds quantile q of
// the observations made between two readings of a histogram.
func quantileBound(before, after map[float64]float64, q float64) float64 {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	for _, b := range bounds {
		if after[b]-before[b] >= q*total {
			return b
		}
	}
	return bounds[len(bounds)-1]
}
