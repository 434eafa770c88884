package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNoNginx is returned when no nginx binary is found (Debian package
// nginx-light).
var ErrNoNginx = errors.New("testbed: nginx not found (Debian package nginx-light)")

// ErrNoHeadersMore is returned when the headers-more nginx module is missing
// (Debian package libnginx-mod-http-headers-more-filter) and a config needs it.
var ErrNoHeadersMore = errors.New("testbed: nginx headers-more module not found (Debian package libnginx-mod-http-headers-more-filter)")

// GenerationPath is served by the control server StartNginx adds to every
// config; it answers the config generation (1 at start, +1 per Reload).
const GenerationPath = "/__testbed_generation"

// startTimeout bounds StartNginx, Reload and StartTinyproxy.
const startTimeout = 10 * time.Second

// LookNginx returns the nginx binary: "nginx" on PATH, else /usr/sbin/nginx.
func LookNginx() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if st, err := os.Stat("/usr/sbin/nginx"); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return "/usr/sbin/nginx", nil
	}
	return "", ErrNoNginx
}

var headersMore = sync.OnceValues(findHeadersMore)

// HeadersMoreModule returns the absolute path of the headers-more filter
// module for load_module. It reads the module snippets the Debian package
// installs (/usr/share/nginx/modules-available, /etc/nginx/modules-enabled),
// resolving a relative path against the prefix from `nginx -V`, and falls
// back to the compiled --modules-path.
func HeadersMoreModule() (string, error) { return headersMore() }

var loadModuleRE = regexp.MustCompile(`(?m)^\s*load_module\s+([^;\s]+)\s*;`)

func findHeadersMore() (string, error) {
	bin, err := LookNginx()
	if err != nil {
		return "", err
	}
	prefix, modules := "/usr/share/nginx", "/usr/lib/nginx/modules"
	if out, err := exec.Command(bin, "-V").CombinedOutput(); err == nil {
		if m := regexp.MustCompile(`--prefix=(\S+)`).FindSubmatch(out); m != nil {
			prefix = string(m[1])
		}
		if m := regexp.MustCompile(`--modules-path=(\S+)`).FindSubmatch(out); m != nil {
			modules = string(m[1])
		}
	}
	var candidates []string
	for _, pattern := range []string{"/usr/share/nginx/modules-available/*.conf", "/etc/nginx/modules-enabled/*.conf"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, m := range loadModuleRE.FindAllSubmatch(b, -1) {
				p := string(m[1])
				if !strings.Contains(p, "headers_more") {
					continue
				}
				if !filepath.IsAbs(p) {
					p = filepath.Join(prefix, p)
				}
				candidates = append(candidates, p)
			}
		}
	}
	candidates = append(candidates, filepath.Join(modules, "ngx_http_headers_more_filter_module.so"))
	for _, p := range candidates {
		if abs, err := filepath.EvalSymlinks(p); err == nil {
			if st, err := os.Stat(abs); err == nil && st.Mode().IsRegular() {
				return abs, nil
			}
		}
	}
	return "", ErrNoHeadersMore
}

// Nginx is a running nginx master with its workers, all in one process
// group, configured and logging under Dir.
type Nginx struct {
	Dir  string
	bin  string
	proc *process
	ctrl string // control server address, serves GenerationPath

	mu   sync.Mutex // serializes Reload and Stop
	gen  int
	stop bool
}

// StartNginx writes conf to DIR/nginx.conf and runs
//
//	nginx -p DIR/ -c DIR/nginx.conf -e DIR/error.log -g 'daemon off;'
//
// as the current user (see NginxMain for a config that works unprivileged).
// conf must hold a line opening the `http {` block: StartNginx inserts a
// control server on a free 127.0.0.1 port there, serving GenerationPath.
// It returns once that server answers (at most 10s); nginx binds every
// listen address before any worker answers, so the config's own servers are
// up too. A failure carries the tail of the error log.
func StartNginx(dir, conf string) (*Nginx, error) {
	bin, err := LookNginx()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testbed: nginx: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: nginx: %w", err)
	}
	for attempt := 0; ; attempt++ {
		n, err := startNginx(bin, dir, conf)
		var busy *ctrlBusyError
		if errors.As(err, &busy) && attempt < 3 {
			continue // someone took the control port between FreeAddr and bind
		}
		return n, err
	}
}

type ctrlBusyError struct{ error }

func startNginx(bin, dir, conf string) (*Nginx, error) {
	ctrl, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	n := &Nginx{Dir: dir, bin: bin, ctrl: ctrl, gen: 1}
	full, err := injectControl(conf, ctrl, n.gen)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.confPath(), []byte(full), 0o644); err != nil {
		return nil, fmt.Errorf("testbed: nginx: %w", err)
	}
	logStart := fileSize(n.errorLog())
	n.proc, err = startProcess("nginx", filepath.Join(dir, "nginx.stderr"), bin,
		"-p", dir+"/", "-c", n.confPath(), "-e", n.errorLog(), "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := n.waitGeneration(ctx, logStart); err != nil {
		n.proc.stop(syscall.SIGTERM, 2*time.Second)
		if strings.Contains(err.Error(), "bind() to "+ctrl) {
			return nil, &ctrlBusyError{err}
		}
		return nil, err
	}
	return n, nil
}

func (n *Nginx) confPath() string { return filepath.Join(n.Dir, "nginx.conf") }
func (n *Nginx) errorLog() string { return filepath.Join(n.Dir, "error.log") }

// Pid is the master's process id (also the process group id).
func (n *Nginx) Pid() int { return n.proc.cmd.Process.Pid }

// Generation is the config generation currently served.
func (n *Nginx) Generation() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen
}

// ErrorLog returns the last 8 KiB of DIR/error.log.
func (n *Nginx) ErrorLog() string { return tail(n.errorLog(), 8<<10) }

// AccessLog is the end of nginx's access log (combined format: the
// User-Agent is its last field).
func (n *Nginx) AccessLog() string { return tail(filepath.Join(n.Dir, "access.log"), 64<<10) }

// Reload checks conf with `nginx -t`, swaps it in, signals the master
// (SIGHUP, what `nginx -s reload` sends) and waits until the control server
// answers the new generation, at most 10s. A config that fails the test or
// the reload leaves the old one serving and returns nginx's error.
func (n *Nginx) Reload(conf string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stop || !n.proc.running() {
		return errors.New("testbed: nginx is not running")
	}
	next := n.gen + 1
	full, err := injectControl(conf, n.ctrl, next)
	if err != nil {
		return err
	}
	candidate := filepath.Join(n.Dir, "nginx.conf.next")
	if err := os.WriteFile(candidate, []byte(full), 0o644); err != nil {
		return fmt.Errorf("testbed: nginx: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	test := exec.CommandContext(ctx, n.bin, "-t", "-q", "-p", n.Dir+"/", "-c", candidate, "-e", n.errorLog())
	if out, err := test.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: nginx -t: %v: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Rename(candidate, n.confPath()); err != nil {
		return fmt.Errorf("testbed: nginx: %w", err)
	}
	logStart := fileSize(n.errorLog())
	oldWorkers := children(n.Pid())
	if err := n.proc.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("testbed: nginx reload: %w", err)
	}
	prev := n.gen
	n.gen = next
	if err := n.waitGeneration(ctx, logStart); err != nil {
		n.gen = prev // the master keeps the old config on a failed reload
		return err
	}
	return waitRetired(ctx, oldWorkers)
}

// waitRetired waits until each old worker has exited or handled its
// shutdown order. A new worker answering the control server is not enough:
// until an old worker reads the order from the master, it still accepts
// connections on the shared sockets and answers them with the old config.
// The worker retitles itself "worker process is shutting down" right before
// it closes its listening sockets.
func waitRetired(ctx context.Context, pids []int) error {
	for _, pid := range pids {
		for {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil || len(b) == 0 || bytes.Contains(b, []byte("shutting down")) {
				break // gone (or a zombie), or retiring
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("testbed: nginx worker %d did not retire after reload: %w", pid, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	// The title comes a few instructions before the sockets close.
	time.Sleep(5 * time.Millisecond)
	return nil
}

// children lists the live child processes of pid from /proc (none where
// /proc is missing).
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(pid) {
			continue
		}
		if child, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			out = append(out, child)
		}
	}
	return out
}

// Stop shuts nginx down (SIGTERM, then SIGKILL to the process group after
// 5s) and waits for the master to exit. Calling it again does nothing.
func (n *Nginx) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stop {
		return nil
	}
	n.stop = true
	n.proc.stop(syscall.SIGTERM, 5*time.Second)
	return nil
}

// waitGeneration polls the control server until it answers n.gen, the
// process dies, an [emerg] line appears in the error log after logStart, or
// ctx ends.
func (n *Nginx) waitGeneration(ctx context.Context, logStart int64) error {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	defer client.CloseIdleConnections()
	want := strconv.Itoa(n.gen)
	u := "http://" + n.ctrl + GenerationPath
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			resp.Body.Close()
			last = strings.TrimSpace(string(b))
			if resp.StatusCode == http.StatusOK && last == want {
				return nil
			}
		} else {
			last = err.Error()
		}
		if emerg := emergSince(n.errorLog(), logStart); emerg != "" {
			return fmt.Errorf("testbed: nginx: %s", emerg)
		}
		select {
		case <-n.proc.exited:
			return n.proc.errExited(n.errorLog(), filepath.Join(n.Dir, "nginx.stderr"))
		case <-ctx.Done():
			return fmt.Errorf("testbed: nginx generation %s not served within %v (last: %s)\n%s",
				want, startTimeout, last, n.ErrorLog())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// emergSince returns the first [emerg] line written to the error log after
// offset: how nginx reports a config it could not apply.
func emergSince(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, "[emerg]") {
			return l
		}
	}
	return ""
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

var httpBlockRE = regexp.MustCompile(`(?m)^[ \t]*http[ \t]*\{[ \t]*$`)

// injectControl inserts the control server after the line opening the http
// block.
func injectControl(conf, ctrl string, gen int) (string, error) {
	loc := httpBlockRE.FindStringIndex(conf)
	if loc == nil {
		return "", errors.New("testbed: nginx config has no line opening the `http {` block")
	}
	server := fmt.Sprintf(`
    # testbed control server: answers the config generation.
    server {
        listen %s;
        access_log off;
        location = %s { default_type text/plain; return 200 "%d\n"; }
        location / { return 404; }
    }
`, ctrl, GenerationPath, gen)
	return conf[:loc[1]] + server + conf[loc[1]:], nil
}
