//go:build unix

package buffer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// lockPIDFile flocks path exclusively (the lock lives as long as the open
// file, and a crash releases it) and, as owner, writes this process's pid
// into it. A reader (Inspect) modifies nothing: without a pid file there is
// nothing to take.
func lockPIDFile(dir, path string, owner bool) (io.Closer, error) {
	flag := os.O_RDWR | os.O_CREATE
	if !owner {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if !owner && errors.Is(err, os.ErrNotExist) {
		return io.NopCloser(nil), nil
	}
	if err != nil {
		return nil, fmt.Errorf("buffer: lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			return nil, &LockedError{Dir: dir, PID: parsePID(b[:n])}
		}
		return nil, fmt.Errorf("buffer: lock %s: %w", dir, err)
	}
	if !owner {
		return f, nil
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(pid, 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("buffer: lock %s: %w", dir, err)
	}
	return f, nil
}
