package config

import (
	"fmt"
	"os"
	"regexp"
)

var replicaNameRE = regexp.MustCompile(`^[A-Za-z0-9.\-_:@]{1,64}$`)

// replicaName checks server.replica_name.
func (v *validator) replicaName() {
	if n := v.c.Server.ReplicaName; n != "" && !replicaNameRE.MatchString(n) {
		v.add("server.replica_name", "", "%q: want 1 to 64 letters, digits and .-_:@", n)
	}
}

// ReplicaName returns the name of this process among the replicas:
// server.replica_name, else hostname:pid.
func (c Config) ReplicaName() string {
	if c.Server.ReplicaName != "" {
		return c.Server.ReplicaName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s:%d", host, os.Getpid())
}
