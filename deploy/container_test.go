package deploy

import (
	"debug/elf"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/testenv"
)

const containerfile = "container/Containerfile"

// An instruction is one Containerfile instruction, continuation lines
// joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// A stage is the instructions from one FROM to the next.
type stage struct {
	from  string
	name  string
	instr []instruction
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.instr {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// env returns the stage's ENV settings (KEY=VALUE forms, quotes removed).
func (s stage) env() map[string]string {
	m := map[string]string{}
	for _, a := range s.all("ENV") {
		for _, f := range shellFields(a) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = v
			}
		}
	}
	return m
}

func parseContainerfile(t *testing.T) []stage {
	t.Helper()
	b, err := os.ReadFile(containerfile)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			return // ARG before the first FROM
		}
		stages[len(stages)-1].instr = append(stages[len(stages)-1].instr, in)
	}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// shellFields splits s like a POSIX shell would for simple words: single
// and double quotes group, backslashes escape outside single quotes.
func shellFields(s string) []string {
	var fields []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case quote == '"':
			if c == '"' {
				quote = 0
			} else if c == '\\' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote = c
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				fields = append(fields, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		fields = append(fields, cur.String())
	}
	return fields
}

// TestContainerfile checks the image definition for what matters without
// a container engine: a separate build stage making a static binary, a
// non-root user that owns the data volume, git and ssh, a health check,
// and a listener on the exposed port.
func TestContainerfile(t *testing.T) {
	stages := parseContainerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%s has %d stages, want a build stage and a run stage", containerfile, len(stages))
	}
	build, run := stages[0], stages[len(stages)-1]
	if build.name == "" || !strings.Contains(build.from, "golang") {
		t.Errorf("first stage FROM %s AS %q, want a named golang build stage", build.from, build.name)
	}
	if env := build.env(); env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage: CGO_ENABLED=%q, want 0 (a static binary)", env["CGO_ENABLED"])
	}
	if goBuild(t, build) == nil {
		t.Errorf("build stage has no RUN go build")
	}

	// The run stage: a non-root user, created with that uid.
	users := run.all("USER")
	if len(users) == 0 {
		t.Fatalf("run stage has no USER: the image would run as root")
	}
	user, group, _ := strings.Cut(users[len(users)-1], ":")
	if user == "0" || user == "root" || group == "0" || group == "root" || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(user) {
		t.Errorf("USER %s, want a numeric non-root uid (Kubernetes runAsNonRoot can only check a numeric one)", users[len(users)-1])
	}
	runs := strings.Join(run.all("RUN"), "\n")
	if !strings.Contains(runs, "--uid "+user) {
		t.Errorf("run stage does not create the user with uid %s (useradd --uid)", user)
	}
	for _, pkg := range []string{"git", "openssh-client", "ca-certificates"} {
		if !regexp.MustCompile(`apt-get install[^\n]*\s` + regexp.QuoteMeta(pkg) + `(\s|$)`).MatchString(runs) {
			t.Errorf("run stage does not install %s", pkg)
		}
	}
	if !strings.Contains(runs, "rm -rf /var/lib/apt/lists/*") {
		t.Errorf("run stage keeps apt's lists in the image")
	}

	env := run.env()
	dataDir := env["MODGATE_DATA_DIR"]
	if dataDir == "" {
		t.Errorf("run stage does not set MODGATE_DATA_DIR")
	}
	if vols := strings.Join(run.all("VOLUME"), " "); !strings.Contains(vols, `"`+dataDir+`"`) {
		t.Errorf("VOLUME %s does not hold MODGATE_DATA_DIR %s", vols, dataDir)
	}
	if !strings.Contains(runs, "chown "+user+":"+group+" "+dataDir) {
		t.Errorf("the data directory %s is not chowned to %s:%s", dataDir, user, group)
	}
	if env["HOME"] != dataDir {
		t.Errorf("HOME=%q, want the data directory (ssh and git write there, and / is not writable)", env["HOME"])
	}
	_, port, err := net.SplitHostPort(env["MODGATE_LISTEN"])
	if err != nil {
		t.Errorf("MODGATE_LISTEN=%q: %v", env["MODGATE_LISTEN"], err)
	}
	if exp := run.all("EXPOSE"); !slices.Contains(exp, port) {
		t.Errorf("EXPOSE %v, want the listen port %s", exp, port)
	}
	if hc := run.all("HEALTHCHECK"); len(hc) != 1 || !strings.Contains(hc[0], "/healthz") {
		t.Errorf("HEALTHCHECK %q, want one on /healthz", hc)
	}
	if ep := run.all("ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0], "/usr/local/bin/modgate") {
		t.Errorf("ENTRYPOINT %q, want modgate", ep)
	}
	if cfg := env["MODGATE_CONFIG"]; cfg == "" || !slices.ContainsFunc(run.all("COPY"), func(c string) bool { return strings.HasSuffix(c, " "+cfg) }) {
		t.Errorf("MODGATE_CONFIG=%q is not a file the image copies in", cfg)
	}
}

// goBuild returns the arguments of the build stage's go build command.
func goBuild(t *testing.T, build stage) []string {
	t.Helper()
	for _, r := range build.all("RUN") {
		f := shellFields(r)
		if len(f) > 2 && f[0] == "go" && f[1] == "build" {
			return f[1:]
		}
	}
	return nil
}

// TestContainerBinary builds modgate with the Containerfile's own flags and
// environment, checks that the result is a static, stripped executable,
// writes the default configuration the way the build stage does, starts
// the binary with the run stage's environment, and runs the image's
// HEALTHCHECK command against it: 0 while it serves, non-zero once it is
// gone.
func TestContainerBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds modgate (about a minute cold)")
	}
	stages := parseContainerfile(t)
	build, run := stages[0], stages[len(stages)-1]
	args := goBuild(t, build)
	if args == nil {
		t.Fatal("build stage has no RUN go build")
	}
	out := t.TempDir()
	bin := filepath.Join(out, "modgate")
	for i := range args {
		if args[i] == "-o" && i+1 < len(args) {
			args[i+1] = bin
		}
	}
	if !slices.Contains(args, "-trimpath") {
		t.Errorf("go build %v lacks -trimpath", args)
	}
	cmd := exec.CommandContext(t.Context(), testenv.GoBinary(t), args...)
	cmd.Dir = ".." // the repository root, the build context
	cmd.Env = os.Environ()
	for k, v := range build.env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("the binary keeps its symbol table (want -ldflags=-s -w, a smaller image)")
	}

	// The default configuration, written as the build stage writes it,
	// with go env pointing at a fake upstream.
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	var printf string
	for _, r := range build.all("RUN") {
		if strings.HasPrefix(r, "printf ") {
			printf = strings.ReplaceAll(r, "/out/", out+"/")
		}
	}
	if printf == "" {
		t.Fatal("build stage does not write the default configuration")
	}
	gen := exec.CommandContext(t.Context(), "sh", "-c", printf)
	gen.Env = append(os.Environ(), "GOPROXY="+up.URL(), "GOSUMDB="+up.VerifierKey(), "GOFLAGS=", "GOENV=off", "GOTOOLCHAIN=local")
	if b, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("the build stage's printf: %v\n%s", err, b)
	}

	port := freePort(t)
	env := run.env()
	env["MODGATE_CONFIG"] = filepath.Join(out, "modgate.yaml")
	env["MODGATE_DATA_DIR"] = filepath.Join(t.TempDir(), "data")
	env["HOME"] = env["MODGATE_DATA_DIR"]
	env["MODGATE_LISTEN"] = "127.0.0.1:" + port
	procEnv := []string{"PATH=/usr/bin:/bin", "HTTP_PROXY=" + testenv.DeadProxy, "HTTPS_PROXY=" + testenv.DeadProxy}
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	srv := exec.Command(bin, "serve")
	srv.Env = procEnv
	srv.Stdout, srv.Stderr = t.Output(), t.Output()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Process.Signal(os.Interrupt)
			srv.Wait()
		}
	}
	t.Cleanup(stop)

	health := healthcheck(t, run)
	check := func() error {
		c := exec.CommandContext(t.Context(), health[0], health[1:]...)
		c.Env = procEnv
		b, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, b)
		}
		return nil
	}
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if last = check(); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("HEALTHCHECK against the running binary: %v", last)
	}
	// The configuration came from the generated file: the fake upstream
	// serves a module through it.
	if code, body := get(t, "http://127.0.0.1:"+port+"/example.com/hello/@v/v1.0.0.mod"); code != 200 {
		t.Errorf("GET a module through the container's configuration = %d %s", code, body)
	}
	stop()
	if err := check(); err == nil {
		t.Errorf("HEALTHCHECK succeeded with modgate stopped")
	}
}

// healthcheck returns the exec form of the run stage's HEALTHCHECK CMD.
func healthcheck(t *testing.T, run stage) []string {
	t.Helper()
	hc := run.all("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("want one HEALTHCHECK, have %d", len(hc))
	}
	_, js, ok := strings.Cut(hc[0], "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc[0])
	}
	var argv []string
	if err := jsonUnmarshal(js, &argv); err != nil || len(argv) == 0 {
		t.Fatalf("HEALTHCHECK CMD %s: want the exec (JSON) form: %v", js, err)
	}
	return argv
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
