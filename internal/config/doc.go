// Package config owns modgate's configuration: the YAML schema, its
// defaults, the environment variables and the go-env-derived settings that
// override them, and validation.
//
// # Layers
//
// A configuration is built in layers, each overriding the one before:
//
//  1. built-in defaults (Default);
//  2. one YAML file (Load), decoded strictly: an unknown key, a duplicate
//     key or a value of the wrong type is an error naming the key and line;
//  3. environment variables MODGATE_* (Load; see EnvVars);
//  4. command-line flags, applied by package cli with Config.Set;
//  5. settings left empty fall back to the operator's Go environment
//     (Resolve with the output of ReadGoEnv): upstream.goproxy from
//     GOPROXY, sumdb.gosumdb from GOSUMDB, upstream.noproxy from
//     GONOPROXY (else GOPRIVATE), sumdb.nosumdb from GONOSUMDB (else
//     GOPRIVATE), and data_dir from the per-user data directory.
//
// Zero configuration therefore works: modgate mirrors whatever the go
// command on the same machine would use. No registry host is written here.
//
// Every layer records where each value came from in Config.Sources, so
// `modgate explain` and `modgate serve --print-config` can tell an operator
// why a setting has the value it has, and Validate can point at the file
// line, variable or flag to fix.
//
// # Validation
//
// Validate reports every problem at once (errors.Join of *Problem values,
// each matching ErrInvalid), each naming the key as the user wrote it and
// what to write instead. The server does not start on an invalid
// configuration.
//
// What this package does not do: build components (package server), parse
// the GOPROXY list into fetchers (package upstream), or talk to a checksum
// database (package sumdb). It checks the syntax of those settings so that a
// mistake is reported before anything starts, not on the first request;
// upstream.goproxy is checked with package upstream's own parser
// (upstream.ParseGOPROXY). Leaving modgate itself out of the GOPROXY list
// is upstream.Build's job, not this package's.
package config
