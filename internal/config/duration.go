package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written in the configuration as a Go
// duration string ("30s", "5m", "1h30m"). A bare number is rejected, even
// 0, so that "30" never silently means 30 nanoseconds.
//
// It implements yaml.Unmarshaler and yaml.Marshaler for the file and
// encoding.TextUnmarshaler and encoding.TextMarshaler, so it can also be
// used with flag.TextVar.
type Duration struct {
	time.Duration
}

// ParseDuration parses a Go duration string with a unit.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("%q is not a duration (write it like \"30s\", \"5m\" or \"1h\")", s)
	}
	return Duration{d}, nil
}

// String formats d as a Go duration without zero trailing units:
// "1m" rather than "1m0s", "1h" rather than "1h0m0s".
func (d Duration) String() string {
	s := d.Duration.String()
	s, _ = strings.CutSuffix(s, "m0s")
	if len(s) != len(d.Duration.String()) {
		s += "m"
		if t, ok := strings.CutSuffix(s, "h0m"); ok {
			s = t + "h"
		}
	}
	return s
}

// UnmarshalYAML decodes a scalar duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration string such as \"30s\", got %s", describeNode(n))
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML encodes d as its duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalText decodes a duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalText encodes d as its duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// describeNode names the kind of a YAML node for error messages:
// a list, a mapping, or the quoted scalar value.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		if n.Alias != nil {
			return describeNode(n.Alias)
		}
		return "an alias"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return fmt.Sprintf("%q", v)
}
