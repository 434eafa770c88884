package files_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/wscanary/wscanary/monitor/internal/files"
)

func TestReadRegular(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("hello"), 0o600)
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2048), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(small, link)
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    string
		wantErr error
	}{
		{small, "hello", nil},
		{link, "hello", nil},
		{big, "", &files.TooLargeError{}},
		{zero, "", files.ErrNotRegular},
		{fifo, "", files.ErrNotRegular},
		{dir, "", files.ErrNotRegular},
	}
	for _, tt := range tests {
		done := make(chan struct{})
		var b []byte
		var err error
		go func() { b, err = files.ReadRegular(tt.path, 1024); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: read hangs", tt.path)
		}
		switch want := tt.wantErr.(type) {
		case nil:
			if err != nil || string(b) != tt.want {
				t.Errorf("%s: %q, %v", tt.path, b, err)
			}
		case *files.TooLargeError:
			if !errors.As(err, &want) || want.Limit != 1024 {
				t.Errorf("%s: %v, want too large", tt.path, err)
			}
		default:
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: %v, want %v", tt.path, err, tt.wantErr)
			}
		}
	}
}
