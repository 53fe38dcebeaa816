// Linux process handling for argoexec's emissary (package osspecific of
// github.com/argoproj/argo-workflows/v4). The module as served by the Go proxy at v4.0.2 and
// v4.0.7 has no Linux file defining these (only darwin and windows ones), so
// `go build ./cmd/argoexec` fails for GOOS=linux with "undefined: Setpgid". scripts/bed/build.sh
// adds this file to the package with `go build -overlay` (the module cache stays untouched).
//
// Written for svcbuild's test bed; the behaviour follows what emissary.go expects: the command
// runs in its own process group (signals go to the whole group), and Wait reaps every child
// like a container's PID 1 must, returning the command's exit status.

//go:build linux

package osspecific

import (
	"errors"
	"os"
	"syscall"

	argoerrors "github.com/argoproj/argo-workflows/v4/util/errors"
)

// Term is the signal that asks a process to terminate.
var Term = syscall.SIGTERM

// CanIgnoreSignal: signals that must not be forwarded to the command (child exits, and the
// Go runtime's preemption signal).
func CanIgnoreSignal(s os.Signal) bool {
	return s == syscall.SIGCHLD || s == syscall.SIGURG
}

// Kill sends s to the process group of pid (the command is a group leader), or to pid alone
// when its group cannot be found.
func Kill(pid int, s syscall.Signal) error {
	if pgid, err := syscall.Getpgid(pid); err == nil {
		return syscall.Kill(-pgid, s)
	}
	return syscall.Kill(pid, s)
}

// Setpgid makes the started command the leader of a new process group.
func Setpgid(a *syscall.SysProcAttr) {
	a.Setpgid = true
}

// Wait blocks until process exits, reaping any other child (orphans re-parented to us) on the
// way, and returns nil for exit status 0, an exit error otherwise (128+N for signal N).
func Wait(process *os.Process) error {
	pid := process.Pid
	if err := process.Release(); err != nil {
		return err
	}
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if wpid != pid {
			continue
		}
		switch {
		case ws.Exited():
			return argoerrors.NewExitErr(ws.ExitStatus())
		case ws.Signaled():
			return argoerrors.NewExitErr(128 + int(ws.Signal()))
		}
	}
}
