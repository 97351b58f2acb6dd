//go:build unix

package git

import (
	"os/exec"
	"syscall"
)

// setProcessGroup makes c the leader of a new process group and kills the
// whole group when c is cancelled: git runs helpers (git-remote-https,
// ssh) that would otherwise outlive a timed-out git.
func setProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
}
