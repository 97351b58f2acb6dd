package config

import (
	"fmt"
	"log/slog"
	"strings"
)

// A LogLevel is the least severe log level written.
type LogLevel string

// The log levels, from most to least verbose.
const (
	LogLevelDebug LogLevel = "debug"
	LogLevelInfo  LogLevel = "info"
	LogLevelWarn  LogLevel = "warn"
	LogLevelError LogLevel = "error"
)

var logLevels = map[LogLevel]slog.Level{
	LogLevelDebug: slog.LevelDebug,
	LogLevelInfo:  slog.LevelInfo,
	LogLevelWarn:  slog.LevelWarn,
	LogLevelError: slog.LevelError,
}

// ParseLogLevel parses a level name, ignoring case.
func ParseLogLevel(s string) (LogLevel, error) {
	l := LogLevel(strings.ToLower(s))
	if _, ok := logLevels[l]; !ok {
		return "", fmt.Errorf("%q is not a log level (want debug, info, warn or error)", s)
	}
	return l, nil
}

// UnmarshalText parses a level name (see ParseLogLevel), so that a file
// saying "DEBUG" yields LogLevelDebug and a bad level is reported with its
// key and line.
func (l *LogLevel) UnmarshalText(b []byte) error {
	v, err := ParseLogLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// A LogFormat is how log lines are written.
type LogFormat string

// The log formats.
const (
	LogFormatText LogFormat = "text" // slog.TextHandler: key=value pairs
	LogFormatJSON LogFormat = "json" // slog.JSONHandler: one object a line
)

// ParseLogFormat parses a format name, ignoring case.
func ParseLogFormat(s string) (LogFormat, error) {
	f := LogFormat(strings.ToLower(s))
	if f != LogFormatText && f != LogFormatJSON {
		return "", fmt.Errorf("%q is not a log format (want text or json)", s)
	}
	return f, nil
}

// UnmarshalText parses a format name (see ParseLogFormat).
func (f *LogFormat) UnmarshalText(b []byte) error {
	v, err := ParseLogFormat(string(b))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// SlogLevel returns the slog level for l.Level. A level Validate would
// reject yields slog.LevelInfo.
func (l Log) SlogLevel() slog.Level {
	lv, err := ParseLogLevel(string(l.Level))
	if err != nil {
		return slog.LevelInfo
	}
	return logLevels[lv]
}

// MetricsAccess says who may read /metrics on the main listener.
type MetricsAccess string

// The metrics access modes.
const (
	MetricsAccessAuto  MetricsAccess = "auto"  // open with anonymous access on, else the metrics scope
	MetricsAccessScope MetricsAccess = "scope" // the metrics (or admin) scope
	MetricsAccessOpen  MetricsAccess = "open"  // anyone who reaches the listener
)

// ParseMetricsAccess parses a metrics access mode, ignoring case.
func ParseMetricsAccess(s string) (MetricsAccess, error) {
	a := MetricsAccess(strings.ToLower(s))
	if a != MetricsAccessAuto && a != MetricsAccessScope && a != MetricsAccessOpen {
		return "", fmt.Errorf("%q is not a metrics access mode (want auto, scope or open)", s)
	}
	return a, nil
}

// UnmarshalText parses a metrics access mode (see ParseMetricsAccess).
func (a *MetricsAccess) UnmarshalText(b []byte) error {
	v, err := ParseMetricsAccess(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}
