package config

import (
	"net"
	"strconv"
)

// MetricsScoped reports whether /metrics on the main listener requires
// the "metrics" (or "admin") scope: always with access "scope", never with
// "open", and with "auto" when anonymous access is off.
func (c Config) MetricsScoped() bool {
	switch c.Metrics.Access {
	case MetricsAccessScope:
		return true
	case MetricsAccessOpen:
		return false
	}
	return !c.Auth.Anonymous.Enabled
}

// metrics checks the metrics section.
func (v *validator) metrics() {
	m := v.c.Metrics
	if _, err := ParseMetricsAccess(string(m.Access)); err != nil {
		v.add("metrics.access", "", "%v", err)
	}
	if m.Listen == "" {
		return
	}
	_, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		v.add("metrics.listen", "", `%q is not host:port; write for example "127.0.0.1:9100"`, m.Listen)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("metrics.listen", "", "port %q in %q is not a number from 0 to 65535", port, m.Listen)
	}
	if m.Listen == v.c.Listen && port != "0" {
		v.add("metrics.listen", "", "%q is also listen; leave metrics.listen empty to serve /metrics there", m.Listen)
	}
}
