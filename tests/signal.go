package tests

import (
	"errors"
	"os"
)

// Signal sends sig to the running process (SIGHUP for a reload, SIGSTOP ...).
func (p *Process) Signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return errors.New("process not running")
	}
	return p.cmd.Process.Signal(sig)
}
