package testbed

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// ErrNoPostgres: the PostgreSQL server binaries (Debian package postgresql)
// are not installed.
var ErrNoPostgres = errors.New("testbed: PostgreSQL server not found (Debian package postgresql: /usr/lib/postgresql/*/bin/postgres)")

// Postgres is a real PostgreSQL server of its own, on 127.0.0.1, in a
// temporary directory. PostgreSQL refuses to run as root, so as root it runs
// as the postgres user. It can be stopped and started again on the same
// port and data (a database that goes away and comes back).
type Postgres struct {
	dir  string
	bin  string
	port int
	cred *syscall.Credential

	mu   sync.Mutex
	proc *process
	n    int
}

func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "postgres")); err == nil {
			return dirs[i], nil
		}
	}
	return "", ErrNoPostgres
}

// StartPostgres initialises a cluster (trust authentication, user
// wscanary, no fsync: test data need not survive a power cut) and starts it.
func StartPostgres() (*Postgres, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wscanary-pg-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testbed: as root PostgreSQL needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "wscanary", "--no-sync", "-E", "UTF8")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testbed: initdb: %v\n%s", err, out)
	}
	if err := p.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// Start starts the server (again), on the port it had before.
func (p *Postgres) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil && p.proc.running() {
		return nil
	}
	for try := 0; ; try++ {
		port := p.port
		if port == 0 {
			var err error
			if port, err = FreePort(); err != nil {
				return err
			}
		}
		log := filepath.Join(p.dir, "postgres.log")
		args := []string{"-D", filepath.Join(p.dir, "data"), "-k", p.dir, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "log_min_messages=warning"}
		proc, err := startProcessAs("postgres", log, p.cred, filepath.Join(p.bin, "postgres"), args...)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = waitListening(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), proc.exited)
		cancel()
		if err == nil {
			err = p.ready(port, proc.exited)
		}
		if err == nil {
			p.proc, p.port = proc, port
			return nil
		}
		proc.stop(syscall.SIGQUIT, time.Second)
		if p.port == 0 && try < 3 && strings.Contains(tail(log, 2048), "already in use") {
			continue
		}
		return fmt.Errorf("testbed: postgres: %v\n%s", err, tail(log, 2048))
	}
}

// ready waits until the server answers queries: it listens a moment
// before it is done starting up.
func (p *Postgres) ready(port int, exited <-chan struct{}) error {
	dsn := fmt.Sprintf("postgres://wscanary@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", port)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	end := time.Now().Add(30 * time.Second)
	for {
		err := db.Ping()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres exited while starting: %w", err)
		default:
		}
		if time.Now().After(end) {
			return fmt.Errorf("postgres not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server at once (immediate shutdown), like a database host
// that went away. Start brings it back.
func (p *Postgres) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.proc.stop(syscall.SIGQUIT, 5*time.Second)
		p.proc = nil
	}
}

// Close stops the server and removes its files.
func (p *Postgres) Close() {
	p.Stop()
	os.RemoveAll(p.dir)
}

// Addr is host:port of the server.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// DSN is the URL of a database on the server.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://wscanary@%s/%s?sslmode=disable", p.Addr(), db)
}

// NewDatabase creates an empty database and returns its URL.
func (p *Postgres) NewDatabase() (string, error) {
	p.mu.Lock()
	p.n++
	name := fmt.Sprintf("test_%d", p.n)
	p.mu.Unlock()
	db, err := sql.Open("pgx", p.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		return "", fmt.Errorf("testbed: create database: %w", err)
	}
	return p.DSN(name), nil
}

// StartPostgresT starts a server for the test; without PostgreSQL it calls
// MissingTool.
func StartPostgresT(t TB) *Postgres {
	t.Helper()
	p, err := StartPostgres()
	if errors.Is(err, ErrNoPostgres) {
		MissingTool(t, err)
		return nil
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewDatabaseT creates a database for the test.
func (p *Postgres) NewDatabaseT(t TB) string {
	t.Helper()
	dsn, err := p.NewDatabase()
	if err != nil {
		t.Fatalf("%v", err)
	}
	return dsn
}

// Pid is the server's main process (the postmaster), 0 while stopped: its
// children are the database's backends.
func (p *Postgres) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.cmd.Process.Pid
}
