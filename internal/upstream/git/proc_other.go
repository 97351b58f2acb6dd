//go:build !unix

package git

import "os/exec"

// setProcessGroup does nothing where process groups do not exist; the
// context still kills git itself.
func setProcessGroup(*exec.Cmd) {}
