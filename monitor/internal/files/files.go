// Package files reads and writes the few files wscanary owns or is pointed
// at (configuration, CA bundles, token files, credentials) so that no path
// can make the daemon hang or run out of memory: only regular files are
// read, never more than a bound, and a FIFO or a device is an error at
// once instead of a read that never ends.
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is returned for a path that is not a regular file (a FIFO,
// a device such as /dev/zero, a socket, a directory).
var ErrNotRegular = errors.New("not a regular file")

// TooLargeError is returned when a file holds more than the bound.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string { return fmt.Sprintf("larger than %s", size(e.Limit)) }

// ReadRegular returns the content of the regular file at path, at most
// limit bytes. Symbolic links are followed (a Kubernetes ConfigMap is made
// of them), but what they lead to must be a regular file. Opening does not
// block on a FIFO.
func ReadRegular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(st.Mode()))}
	}
	if st.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{limit}}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // it grew while we read it
		return nil, &fs.PathError{Op: "read", Path: path, Err: &TooLargeError{limit}}
	}
	return b, nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return m.Type().String()
}

func size(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
