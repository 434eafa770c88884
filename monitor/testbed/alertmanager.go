package testbed

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNoAlertmanager: Debian's prometheus-alertmanager is not installed.
var ErrNoAlertmanager = errors.New("testbed: alertmanager not found (Debian package prometheus-alertmanager: /usr/bin/prometheus-alertmanager)")

// Alertmanager is a real Alertmanager on 127.0.0.1 with one receiver that
// sends nothing anywhere: its API is what tests read.
type Alertmanager struct {
	URL  string
	dir  string
	proc *process
}

// StartAlertmanagerT starts one for the test (clustering off, its own
// storage), or calls MissingTool.
func StartAlertmanagerT(t TB) *Alertmanager {
	t.Helper()
	bin := "/usr/bin/prometheus-alertmanager"
	if _, err := os.Stat(bin); err != nil {
		MissingTool(t, ErrNoAlertmanager)
		return nil
	}
	dir, err := os.MkdirTemp("", "wscanary-am-")
	if err != nil {
		t.Fatalf("%v", err)
	}
	conf := "route:\n  receiver: quiet\n  group_wait: 1s\nreceivers:\n  - name: quiet\n"
	os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(conf), 0o600)
	port, err := FreePort()
	if err != nil {
		t.Fatalf("%v", err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProcess("alertmanager", filepath.Join(dir, "alertmanager.log"), bin,
		"--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("%v", err)
	}
	am := &Alertmanager{URL: "http://" + addr, dir: dir, proc: p}
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 5*time.Second)
		os.RemoveAll(dir)
	})
	if err := WaitListening(addr, 15*time.Second); err != nil {
		t.Fatalf("alertmanager: %v\n%s", err, tail(filepath.Join(dir, "alertmanager.log"), 4<<10))
	}
	return am
}

// AMAlert is an alert as Alertmanager's API lists it.
type AMAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// Alerts lists the alerts Alertmanager holds (active ones; a resolved
// alert is gone from the list).
func (a *Alertmanager) Alerts() ([]AMAlert, error) {
	resp, err := http.Get(a.URL + "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []AMAlert
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
