package buffer

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrLocked is returned by Open and Inspect when another process (or another
// Buffer in this one) holds the directory. The error is a *LockedError, which
// names the holder's pid when it is known.
var ErrLocked = errors.New("buffer: directory in use")

// LockedError says which process holds a buffer directory.
type LockedError struct {
	Dir string
	PID int // 0 when unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("buffer: %s is in use by process %d", e.Dir, e.PID)
	}
	return fmt.Sprintf("buffer: %s is in use by another process", e.Dir)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// pidFile holds the pid of the process that has the directory open, under an
// exclusive flock taken before Pebble opens the store: Pebble's own LOCK file
// says only "resource temporarily unavailable", this one says who.
const pidFile = "OWNER"

// lockDir takes the pid file of dir on the real filesystem, as its owner
// (Open) or as a reader that writes nothing (Inspect); other filesystems
// (tests' MemFS) rely on Pebble's lock alone. The closer releases it.
func lockDir(fs vfs.FS, dir string, owner bool) (io.Closer, error) {
	if fs != vfs.Default {
		return io.NopCloser(nil), nil
	}
	return lockPIDFile(dir, filepath.Join(dir, pidFile), owner)
}

// lockedByPebble maps Pebble's lock failure (the LOCK file of a store opened
// by a process without a pid file) to a LockedError without a pid.
func lockedByPebble(dir string, err error) error {
	if errors.Is(err, syscall.EAGAIN) {
		return &LockedError{Dir: dir}
	}
	return err
}

func parsePID(b []byte) int {
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
