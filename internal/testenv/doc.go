// Package testenv holds the hermetic helpers for modgate's tests: synthetic
// module versions loaded from txtar archives, a fake upstream that serves them
// over the GOPROXY protocol together with its own checksum database, and a
// runner for the real go command in a clean environment.
//
// It owns nothing that production code uses; only _test.go files import it.
// It deliberately does not start modgate itself: the tests of the server
// package wire modgate to an [Upstream] the way a user would configure it.
//
// A typical end-to-end test:
//
//	up := testenv.NewUpstream(t, testenv.Fixtures(t))
//	srv := startModgate(t, up.URL()) // the test's own wiring
//	env := testenv.GoEnv(t, srv.URL, up.VerifierKey())
//	_, stderr, err := testenv.RunGo(t, t.TempDir(), env, "mod", "download", "example.com/hello@v1.0.0")
//	if err != nil {
//		t.Fatalf("go mod download: %v\n%s", err, stderr)
//	}
//
// The go command finds the checksum database through the proxy: it asks
// <GOPROXY>/sumdb/sum.test/supported and, when that answers 200, fetches the
// database's tiles and lookups through the proxy too. A modgate in front of
// the Upstream therefore has to proxy /sumdb/ for GOSUMDB to verify anything.
//
// # Module fixtures
//
// One txtar archive holds one module version. The archive comment names it;
// the files are the module tree, plus two optional protocol files:
//
//	module example.com/hello
//	version v1.0.0
//	time 2024-01-02T15:04:05Z
//	-- .mod --
//	module example.com/hello
//	-- .info --
//	{"Version":"v1.0.0","Time":"2024-01-02T15:04:05Z"}
//	-- go.mod --
//	module example.com/hello
//	-- hello.go --
//	package hello
//
// .mod is the go.mod the proxy serves; without it the tree's go.mod is served,
// and without that "module <path>\n", as the go command synthesizes for
// modules that have no go.mod. .info defaults to the version and time. The
// zip and both hashes are computed with golang.org/x/mod, so they are exactly
// what the go command would compute from the same files.
//
// The starter set in testdata/mod is embedded and returned by [Fixtures]:
//
//	example.com/hello         v1.0.0, v1.1.0, v1.2.0-rc.1   package hello, func Hello() string
//	example.com/hello/v2      v2.0.0                        major-version suffix
//	example.com/greet         v1.0.0                        requires example.com/hello v1.0.0
//	example.com/legacy        v2.0.0+incompatible           no go.mod
//	example.com/Upper         v1.0.0                        escaped as example.com/!upper
//
// # Hermetic by default
//
// Every test package that starts servers or runs network code calls
// [GuardNetwork] from its TestMain: in-process dials and name lookups
// outside loopback then fail with [ErrNonLoopback], and the server tests
// hand modgate's own upstream client the same check, [LoopbackOnly]; the
// go command run with [GoEnv] sends everything but loopback to a dead
// proxy ([DeadProxy]). The
// one exception is the real-upstream test, which gets its client from
// [RealNetworkClient] and runs only with MODGATE_E2E_REAL=1. A test that
// needs something optional on the machine (sshd, root) calls
// [Unavailable] when it is missing: a skip that says so, or a failure
// under MODGATE_REQUIRE_SERVERS=1, which .ci/run sets.
//
// # Real servers
//
// [S3] gives a test a fresh bucket on a real versitygw (an S3-compatible
// server), started once per test process on 127.0.0.1 from the binary
// .ci/run builds into $HOME/.cache/modgate-ci/bin (or one on PATH); the
// package's TestMain calls [StopS3] after m.Run. [NewS3] starts a private
// one that the test can Stop and Start, to see what happens while S3 is
// down.
//
// [NewBalancer] starts a real HAProxy (Debian's haproxy) in front of
// replicas, checking their /readyz the way the README's "Running replicas"
// configures it; [Balancer.AddBackend] adds one while it runs and
// [Balancer.WaitState] waits for HAProxy to see a replica up or down. A
// process per test: it starts in about 60ms.
package testenv
