package cli

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/bundle"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/prefetch"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/sumdb"
)

const exportUsage = `usage: modgate export --key FILE -o BUNDLE [--since MANIFEST] [--all | go.mod|go.sum|DIR|PATTERN ...]
       modgate export --generate-key FILE

Export writes a bundle for an air-gapped site: one tar file with the module
files of the selection in GOPROXY layout, the checksum-database lookups and
tiles that prove them, the vulnerability database copy, and a manifest of
every file's SHA-256 and go.sum (h1:) hash signed with the operator's key.
A copy of the manifest is written to BUNDLE.manifest.

The selection is the module graph of each go.mod (as prefetch computes
it), every version in each go.sum, every stored module whose path matches
a PATTERN (example.com/corp/... or a path.Match pattern), or --all. Files
the selection needs that modgate has not stored are listed and nothing is
written: run modgate prefetch first. --since leaves out files a previous
bundle (its .manifest, or the bundle) already carried unchanged.

--generate-key FILE writes a new ed25519 key to FILE (keep it secret) and
its public key to FILE.pub (give it to the importing site).

Exit status: 0 written, 1 files missing or a write failed, 2 bad arguments.

Flags:
`

const importUsage = `usage: modgate import --public-key FILE BUNDLE
       modgate import --gomodcache DIR [--tiles BUNDLE]

Import stores a bundle made by modgate export in this modgate's data
directory (or store). The manifest's signature (with the exporter's public
key), every file's SHA-256 and go.sum hash, and every .mod and .zip with a
checksum-database lookup in the bundle (proved offline with the bundle's
tiles against sumdb.gosumdb's key) are checked before anything is stored;
one altered byte refuses the whole bundle, naming the file.

--gomodcache DIR seeds the store from a module cache (GOMODCACHE, its
cache/download directory): every .mod and .zip is verified against the
checksum database (online through the configured upstream, or offline
through the lookups and tiles of --tiles BUNDLE) and stored with the
lookups and tiles that prove it; modules matching sumdb.nosumdb are
skipped, as nothing can vouch for them.

Exit status: 0 imported, 1 refused or something failed, 2 bad arguments.

Flags:
`

// storeFlags are the flags that pick the modgate data to work on.
type storeFlags struct{ config, dataDir *string }

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		config:  fs.String("config", os.Getenv("MODGATE_CONFIG"), "YAML configuration file (also MODGATE_CONFIG)"),
		dataDir: fs.String("data-dir", "", "data directory (default: the configuration's)"),
	}
}

// open loads the configuration and opens the module store as serve does.
func (f storeFlags) open(ctx context.Context, stderr io.Writer) (config.Config, storage.Store, error) {
	cfg, err := loadConfig(ctx, *f.config, func(set func(key, value, source string) error) error {
		if *f.dataDir == "" {
			return nil
		}
		return set("data_dir", *f.dataDir, "flag --data-dir")
	}, stderr)
	if err != nil {
		return cfg, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	log, stop := newLogger(cfg.Log, stderr)
	defer stop()
	store, err := server.OpenStore(ctx, cfg, log)
	if err != nil {
		return cfg, nil, err
	}
	if err := os.MkdirAll(scratchDir(cfg), 0o755); err != nil {
		return cfg, nil, err
	}
	return cfg, store, nil
}

func scratchDir(cfg config.Config) string { return filepath.Join(cfg.DataDir, "tmp") }

// Export implements `modgate export`.
func Export(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modgate export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, exportUsage); fs.PrintDefaults() }
	sf := addStoreFlags(fs)
	keyFile := fs.String("key", "", "file holding the ed25519 signing key (see --generate-key)")
	genKey := fs.String("generate-key", "", "write a new signing key to FILE and its public key to FILE.pub, then exit")
	out := fs.String("o", "", "bundle file to write")
	since := fs.String("since", "", "a previous bundle's manifest (or the bundle): leave out what it carried")
	all := fs.Bool("all", false, "export every stored module")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *genKey != "" {
		if err := generateKey(*genKey); err != nil {
			fmt.Fprintf(stderr, "modgate export: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s (secret) and %s (public)\n", *genKey, *genKey+".pub")
		return 0
	}
	if *keyFile == "" || *out == "" {
		fmt.Fprintln(stderr, "modgate export: --key and -o are required")
		return 2
	}
	signer, err := readSigner(*keyFile)
	if err != nil {
		fmt.Fprintf(stderr, "modgate export: %v\n", err)
		return 2
	}
	sel := bundle.Selection{All: *all}
	for _, a := range fs.Args() {
		st, err := os.Stat(a)
		switch {
		case err == nil && st.IsDir():
			mods, sums, err := prefetch.FindProjects(a)
			if err != nil {
				fmt.Fprintf(stderr, "modgate export: %v\n", err)
				return 2
			}
			sel.GoMods, sel.GoSums = append(sel.GoMods, mods...), append(sel.GoSums, sums...)
		case err == nil && strings.HasSuffix(a, ".sum"):
			sel.GoSums = append(sel.GoSums, a)
		case err == nil:
			sel.GoMods = append(sel.GoMods, a)
		default:
			if err := module.CheckImportPath(strings.TrimSuffix(strings.ReplaceAll(a, "*", "x"), "/...")); err != nil {
				fmt.Fprintf(stderr, "modgate export: %s: neither a file, a directory nor a module pattern\n", a)
				return 2
			}
			sel.Patterns = append(sel.Patterns, a)
		}
	}
	if !sel.All && len(sel.GoMods)+len(sel.GoSums)+len(sel.Patterns) == 0 {
		fmt.Fprintln(stderr, "modgate export: nothing selected: give go.mod, go.sum, directories, module patterns or --all")
		return 2
	}
	var prev *bundle.Manifest
	if *since != "" {
		if prev, err = readManifest(*since); err != nil {
			fmt.Fprintf(stderr, "modgate export: --since: %v\n", err)
			return 2
		}
	}
	cfg, store, err := sf.open(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modgate export: %v\n", err)
		return 2
	}
	keys, missing, err := bundle.Select(ctx, store, sel)
	if err != nil {
		fmt.Fprintf(stderr, "modgate export: %v\n", err)
		return 1
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "modgate export: %d files the selection needs are not stored (run modgate prefetch first):\n", len(missing))
		for _, m := range missing {
			fmt.Fprintln(stderr, "  "+m)
		}
		return 1
	}

	start := time.Now()
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".bundle-*")
	if err != nil {
		fmt.Fprintf(stderr, "modgate export: %v\n", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	signed, st, err := bundle.Export(ctx, tmp, bundle.ExportConfig{
		Store: store, Keys: keys, VulnDir: cfg.Policy.VulnDB.Dir, Since: prev, Signer: signer, ScratchDir: scratchDir(cfg),
	})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644) // a bundle holds public modules; the key is what is secret
	}
	if err == nil {
		err = os.WriteFile(*out+".manifest", signed, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), *out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "modgate export: %v\n", err)
		return 1
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "exported %d files (%s) to %s in %s, %s/s; %d unchanged since the previous bundle left out; manifest %s\n",
		st.Files, humanBytes(st.Bytes), *out, d.Round(time.Millisecond), humanBytes(int64(float64(st.Bytes)/max(d.Seconds(), 0.001))), st.Skipped, *out+".manifest")
	return 0
}

// Import implements `modgate import`.
func Import(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modgate import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, importUsage); fs.PrintDefaults() }
	sf := addStoreFlags(fs)
	pubFile := fs.String("public-key", "", "file holding the exporter's public key")
	modCache := fs.String("gomodcache", "", "seed from this module cache instead of a bundle")
	tiles := fs.String("tiles", "", "with --gomodcache: verify through this bundle's checksum-database files, offline")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *modCache != "" {
		if fs.NArg() > 0 {
			fmt.Fprintln(stderr, "modgate import: --gomodcache takes no bundle argument (use --tiles BUNDLE)")
			return 2
		}
		return seedModCache(ctx, sf, *modCache, *tiles, stdout, stderr)
	}
	if fs.NArg() != 1 || *pubFile == "" {
		fmt.Fprintln(stderr, "modgate import: want --public-key FILE and one BUNDLE")
		return 2
	}
	verifier, err := readVerifier(*pubFile)
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 2
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 2
	}
	defer f.Close()
	cfg, store, err := sf.open(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 2
	}
	vulnDir := cfg.Policy.VulnDB.Dir
	if vulnDir == "" {
		vulnDir = filepath.Join(cfg.DataDir, "vulndb")
	}
	var sumdbKey string // "" with GOSUMDB=off: signature and hashes only
	if db, err := sumdb.ParseGOSUMDB(cfg.SumDB.GOSUMDB); err == nil && !db.Off() {
		sumdbKey = db.Key
	}
	start := time.Now()
	st, err := bundle.Import(ctx, f, bundle.ImportConfig{
		Store: store, Verifier: verifier, SumDB: sumdbKey, VulnDir: vulnDir, ScratchDir: scratchDir(cfg),
	})
	if err != nil {
		if errors.Is(err, bundle.ErrRejected) {
			fmt.Fprintf(stderr, "modgate import: %s: %v; nothing was stored\n", fs.Arg(0), err)
		} else {
			fmt.Fprintf(stderr, "modgate import: %s: %v\n", fs.Arg(0), err)
		}
		return 1
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "imported %d files (%s) in %s, %s/s; %d already stored; %d .mod/.zip proved against checksum database\n",
		st.Files, humanBytes(st.Bytes), d.Round(time.Millisecond), humanBytes(int64(float64(st.Bytes)/max(d.Seconds(), 0.001))), st.Skipped, st.SumDBVerified)
	return 0
}

// seedModCache implements import --gomodcache.
func seedModCache(ctx context.Context, sf storeFlags, dir, tiles string, stdout, stderr io.Writer) int {
	cfg, store, err := sf.open(ctx, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 2
	}
	db, err := sumdb.ParseGOSUMDB(cfg.SumDB.GOSUMDB)
	if err != nil || db.Off() {
		fmt.Fprintln(stderr, "modgate import: --gomodcache needs a checksum database (sumdb.gosumdb)")
		return 2
	}
	var remote func(string) ([]byte, error)
	if tiles != "" {
		remote, err = tarRemote(tiles, db.Name)
	} else {
		remote, err = onlineRemote(cfg, db.Name, db.URL)
	}
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 2
	}
	var putErrs []error
	checker, err := bundle.NewChecker(db.Key, remote, bundle.StoreSumDBFile(ctx, store, &putErrs))
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 2
	}
	start := time.Now()
	st, err := bundle.SeedModCache(ctx, bundle.SeedConfig{
		Store: store, Dir: dir, Checker: checker,
		Private: func(p string) bool { return module.MatchPrefixPatterns(strings.Join(cfg.SumDB.NoSumDB, ","), p) },
	})
	if err == nil && st.Files > 0 {
		err = store.Put(ctx, "sumdb/"+db.Name+"/supported", strings.NewReader(""))
	}
	if err == nil {
		err = errors.Join(putErrs...)
	}
	if err != nil {
		fmt.Fprintf(stderr, "modgate import: %v\n", err)
		return 1
	}
	d := time.Since(start)
	fmt.Fprintf(stdout, "seeded %d files (%s) from %s in %s, %s/s; %d already stored; %d private versions skipped; %d failed verification\n",
		st.Files, humanBytes(st.Bytes), dir, d.Round(time.Millisecond), humanBytes(int64(float64(st.Bytes)/max(d.Seconds(), 0.001))), st.Skipped, len(st.Private), len(st.Failed))
	for _, f := range st.Failed {
		fmt.Fprintln(stdout, "failed "+f)
	}
	if len(st.Failed) > 0 {
		return 1
	}
	return 0
}

// tarRemote serves checksum-database paths from a bundle's files (read
// whole: lookups and tiles are small).
func tarRemote(name, db string) (func(string) ([]byte, error), error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := make(map[string][]byte)
	tr := tar.NewReader(f)
	prefix := "modules/sumdb/" + db + "/"
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if rest, ok := strings.CutPrefix(hdr.Name, prefix); ok {
			data, err := io.ReadAll(io.LimitReader(tr, 64<<20))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			files["/"+rest] = data
		}
	}
	return func(p string) ([]byte, error) {
		if d, ok := files[p]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("%s%s: not in %s: %w", db, p, name, fs.ErrNotExist)
	}, nil
}

// onlineRemote reads the database through the first upstream proxy (as
// the go command does through GOPROXY), or from its own URL.
func onlineRemote(cfg config.Config, db, dbURL string) (func(string) ([]byte, error), error) {
	base := strings.TrimSuffix(dbURL, "/")
	if base == "" {
		for p := range strings.FieldsFuncSeq(cfg.Upstream.GOPROXY, func(r rune) bool { return r == ',' || r == '|' }) {
			if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
				base = strings.TrimSuffix(p, "/") + "/sumdb/" + db
				break
			}
		}
	}
	if base == "" {
		return nil, errors.New("no upstream proxy or database URL to reach the checksum database; use --tiles BUNDLE")
	}
	client := &http.Client{Timeout: 60 * time.Second}
	return func(p string) ([]byte, error) {
		resp, err := client.Get(base + p)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err := fmt.Errorf("%s%s: %s", db, p, resp.Status)
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
				err = fmt.Errorf("%w (%w)", err, fs.ErrNotExist)
			}
			return nil, err
		}
		return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	}, nil
}

// readManifest reads a signed manifest from a .manifest file or a bundle.
func readManifest(name string) (*bundle.Manifest, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if m, err := bundle.OpenManifest(data, nil); err == nil {
		return m, nil
	}
	tr := tar.NewReader(strings.NewReader(string(data)))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: neither a manifest nor a bundle", name)
		}
		if hdr.Name == "manifest" {
			d, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			return bundle.OpenManifest(d, nil)
		}
	}
}

func generateKey(file string) error {
	skey, vkey, err := note.GenerateKey(rand.Reader, "modgate-bundle")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(skey+"\n"), 0o600); err != nil {
		return err
	}
	return os.WriteFile(file+".pub", []byte(vkey+"\n"), 0o644)
}

func readSigner(file string) (note.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	s, err := note.NewSigner(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a signing key (make one with --generate-key): %w", file, err)
	}
	return s, nil
}

func readVerifier(file string) (note.Verifier, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a public key: %w", file, err)
	}
	return v, nil
}
