package relay

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/baton-relay/baton/buffer"
	"github.com/baton-relay/baton/relay/auth" // relay has its own type auth (SDK request auth)
)

// A StartupError is a start-up failure worded for the operator, printed by
// cmd/baton as one line: the resource (a config field and its value), what
// is wrong with it, and what to do.
type StartupError struct {
	Resource string // e.g. "buffer.dir ./baton-data"
	Problem  string
	Fix      string
	Err      error // the cause, for errors.Is and As
}

func (e *StartupError) Error() string { return e.Resource + ": " + e.Problem + "; " + e.Fix }
func (e *StartupError) Unwrap() error { return e.Err }

// listenError explains a listener that could not be bound to addr, the value
// of config field.
func listenError(field, addr string, err error) error {
	e := &StartupError{Resource: field + " " + addr, Err: err}
	if errors.Is(err, syscall.EADDRINUSE) {
		e.Problem = "the address is in use by another process"
		e.Fix = "stop that process, or set " + field + " to a free port"
	} else {
		e.Problem = "cannot listen (" + err.Error() + ")"
		e.Fix = "set " + field + " to an address of this host and a port Baton may bind"
	}
	return e
}

// bufferDirError explains why the buffer in dir did not open, when the
// reason is the directory itself: another Baton has it, or it cannot be
// written. Other errors (a corrupt store) pass through.
func bufferDirError(dir string, err error) error {
	e := &StartupError{Resource: "buffer.dir " + dir, Err: err}
	var locked *buffer.LockedError
	var pe *fs.PathError
	switch {
	case errors.As(err, &locked) && locked.PID > 0:
		e.Problem = fmt.Sprintf("in use by another Baton (pid %d)", locked.PID)
		e.Fix = "stop that one first, or set buffer.dir to another directory"
	case errors.As(err, &locked):
		e.Problem = "in use by another process"
		e.Fix = "stop it first, or set buffer.dir to another directory"
	case notWritable(err):
		cause := error(err)
		if errors.As(err, &pe) {
			cause = pe // the path and the syscall, without the wrapping
		}
		e.Problem = "cannot be written (" + cause.Error() + ")"
		e.Fix = "set buffer.dir to a directory Baton can create and write"
	default:
		return fmt.Errorf("relay: open buffer in %s: %w", dir, err)
	}
	return e
}

func notWritable(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ENOTDIR, syscall.EEXIST, syscall.EISDIR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// credentialsError explains a managed-mode credentials file that cannot be
// used.
func credentialsError(path string, err error) error {
	e := &StartupError{Resource: "managed.credentials " + path, Err: err}
	var cf *auth.FileError
	var pe *fs.PathError
	switch {
	case errors.As(err, &cf):
		e.Problem = cf.Err.Error()
		e.Fix = "fix the file, or replace it with `baton credentials generate --overwrite` (the upstream must then trust the new key)"
	case errors.As(err, &pe):
		e.Problem = "cannot be read or created (" + pe.Error() + ")"
		e.Fix = "make it readable by Baton, or set managed.credentials to another file"
	default:
		e.Problem = err.Error()
		e.Fix = "set managed.credentials to a file Baton can read and write"
	}
	return e
}
