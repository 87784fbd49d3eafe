package pgtest

import (
	"fmt"
	"syscall"
	"time"
)

// Kill crashes the server as the nemesis's kill does: it stops the
// postmaster and its children (SIGSTOP to the server's process group, so
// none acts on the others' death), kills them all with SIGKILL, and waits
// until the postmaster was reaped. The backends' clients see their
// connections drop mid-request. Stop may still be called afterwards to
// remove the directory.
func (s *Server) Kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGSTOP)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("pgtest: postgres pid %d not reaped after SIGKILL", pid)
	}
	s.cmd = nil
	return nil
}
