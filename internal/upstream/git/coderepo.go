package git

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// This file maps between module versions and repository revisions with the
// go command's rules (cmd/go/internal/modfetch/coderepo.go), which it
// follows closely, function by function, so that every answer is the one
// "GOPROXY=direct go mod download" computes: the same version list, the
// same pseudo-versions, the same go.mod. Only gopkg.in special cases are
// left out (a private Git server does not serve gopkg.in paths).

// A codeRepo is one module in one repository.
type codeRepo struct {
	repo    *repo
	modPath string
	// codeRoot is the import path of the repository root; codeDir the
	// directory of the module in the repository ("" at the root). When
	// pathMajor is not empty and codeRoot is not the module path, the
	// module may also live in codeDir/vN.
	codeRoot, codeDir string
	// pathMajor is the "/vN" suffix of modPath ("" for v0/v1), pathPrefix
	// modPath without it, pseudoMajor the major version pseudo-versions
	// must have ("" for either v0 or v1).
	pathMajor, pathPrefix, pseudoMajor string
}

// newCodeRepo returns the codeRepo of modPath in r, whose root has the
// import path codeRoot; subdir is an extra directory from a go-import tag.
func newCodeRepo(r *repo, codeRoot, subdir, modPath string) (*codeRepo, error) {
	if !hasPathPrefix(modPath, codeRoot) {
		return nil, notExist("mismatched repo: found %s for %s", codeRoot, modPath)
	}
	pathPrefix, pathMajor, ok := module.SplitPathVersion(modPath)
	if !ok {
		return nil, notExist("invalid module path %q", modPath)
	}
	if codeRoot == modPath {
		pathPrefix = modPath
	}
	codeDir := ""
	if codeRoot != modPath {
		if !hasPathPrefix(pathPrefix, codeRoot) {
			return nil, notExist("repository rooted at %s cannot contain module %s", codeRoot, modPath)
		}
		codeDir = strings.Trim(pathPrefix[len(codeRoot):], "/")
	}
	if subdir != "" && subdir != "." {
		codeDir = path.Join(codeDir, subdir)
	}
	return &codeRepo{
		repo:        r,
		modPath:     modPath,
		codeRoot:    codeRoot,
		codeDir:     codeDir,
		pathMajor:   pathMajor,
		pathPrefix:  pathPrefix,
		pseudoMajor: module.PathMajorPrefix(pathMajor),
	}, nil
}

// versions returns the module's tagged versions (no pseudo-versions),
// sorted, +incompatible ones included where the go command includes them.
func (c *codeRepo) versions(ctx context.Context) ([]string, error) {
	p := ""
	if c.codeDir != "" {
		p = c.codeDir + "/"
	}
	tags, err := c.repo.tags(ctx, p)
	if err != nil {
		return nil, err
	}
	var list, incompatible []string
	for _, t := range tags {
		v := t.name[len(p):]
		if v == "" || v != semver.Canonical(v) || module.IsPseudoVersion(v) {
			continue
		}
		if err := module.CheckPathMajor(v, c.pathMajor); err != nil {
			if c.codeDir == "" && c.pathMajor == "" && semver.Major(v) > "v1" {
				incompatible = append(incompatible, v)
			}
			continue
		}
		list = append(list, v)
	}
	semver.Sort(list)
	semver.Sort(incompatible)
	return c.appendIncompatibleVersions(ctx, list, incompatible)
}

// appendIncompatibleVersions appends the "+incompatible" versions the go
// command would list: none when the latest compatible version has a
// go.mod, and per major version only when its latest release has none.
func (c *codeRepo) appendIncompatibleVersions(ctx context.Context, list, incompatible []string) ([]string, error) {
	if len(incompatible) == 0 || c.pathMajor != "" {
		return list, nil
	}
	hasGoMod := func(v string) (bool, error) {
		_, ok, err := c.repo.readFileAt(ctx, v, "go.mod")
		return ok, err
	}
	if len(list) > 0 {
		ok, err := hasGoMod(list[len(list)-1])
		if err != nil {
			return nil, err
		}
		if ok {
			return list, nil
		}
	}
	var lastMajor string
	var lastMajorHasGoMod bool
	for i, v := range incompatible {
		if major := semver.Major(v); major != lastMajor {
			rem := incompatible[i:]
			j := sort.Search(len(rem), func(j int) bool { return semver.Major(rem[j]) != major })
			var err error
			lastMajor = major
			if lastMajorHasGoMod, err = hasGoMod(rem[j-1]); err != nil {
				return nil, err
			}
		}
		if !lastMajorHasGoMod {
			list = append(list, v+"+incompatible")
		}
	}
	return list, nil
}

// stat resolves rev (a canonical version, a pseudo-version, a branch, a
// tag, a commit hash) to the module version the go command would report.
func (c *codeRepo) stat(ctx context.Context, rev string) (*revInfo, error) {
	info, err := c.repo.stat(ctx, c.revToRev(rev))
	if err != nil {
		if isNotFound(err) {
			return nil, notExist("invalid version %s: %v", rev, err)
		}
		return nil, err
	}
	return c.convert(ctx, info, rev)
}

// latest is the version of the default branch's HEAD.
func (c *codeRepo) latest(ctx context.Context) (*revInfo, error) {
	info, err := c.repo.latest(ctx)
	if err != nil {
		return nil, err
	}
	return c.convert(ctx, info, "")
}

// convert turns a commit into a module version: its canonical tag when it
// has a usable one, else a pseudo-version based on the highest tag in its
// history. statVers is the version the caller asked for, if any.
func (c *codeRepo) convert(ctx context.Context, info *revInfo, statVers string) (*revInfo, error) {
	incompatibleOK := map[string]bool{}
	canUseIncompatible := func(v string) (bool, error) {
		if c.codeDir != "" || c.pathMajor != "" {
			return false, nil
		}
		ok, seen := incompatibleOK[""]
		if !seen {
			_, has, err := c.repo.readFile(ctx, info.Name, "go.mod")
			if err != nil {
				return false, err
			}
			ok = !has
			incompatibleOK[""] = ok
		}
		if !ok {
			return false, nil
		}
		if v != "" && !strings.HasSuffix(statVers, "+incompatible") {
			major := semver.Major(v)
			ok, seen = incompatibleOK[major]
			if !seen {
				_, has, err := c.repo.readFile(ctx, info.Name, path.Join(major, "go.mod"))
				if err != nil {
					return false, err
				}
				ok = !has
				incompatibleOK[major] = ok
			}
			if !ok {
				return false, nil
			}
		}
		return true, nil
	}

	checkCanonical := func(v string) (*revInfo, error) {
		if _, _, _, err := c.findDir(ctx, v); err != nil {
			return nil, err
		}
		invalidf := func(format string, args ...any) error {
			return notExist("invalid version %s: %s", v, fmt.Sprintf(format, args...))
		}
		if v == strings.TrimSuffix(statVers, "+incompatible") {
			v = statVers
		}
		base := strings.TrimSuffix(v, "+incompatible")
		var errIncompatible error
		if !module.MatchPathMajor(base, c.pathMajor) {
			ok, err := canUseIncompatible(base)
			if err != nil {
				return nil, err
			}
			if ok {
				v = base + "+incompatible"
			} else if c.pathMajor != "" {
				errIncompatible = invalidf("module path includes a major version suffix, so major version must match")
			} else {
				errIncompatible = invalidf("module contains a go.mod file, so module path must match major version (%q)", path.Join(c.pathPrefix, semver.Major(v)))
			}
		} else if strings.HasSuffix(v, "+incompatible") {
			errIncompatible = invalidf("+incompatible suffix not allowed: major version %s is compatible", semver.Major(v))
		}
		if statVers != "" && statVers == module.CanonicalVersion(statVers) {
			if statBase := strings.TrimSuffix(statVers, "+incompatible"); statBase != base {
				return nil, notExist("invalid version %s: resolves to version %v (%s is not a tag)", statVers, v, statBase)
			}
		}
		if errIncompatible != nil {
			return nil, errIncompatible
		}
		return &revInfo{Name: info.Name, Short: info.Short, Time: info.Time, Version: v, Ref: info.Ref}, nil
	}

	if module.IsPseudoVersion(statVers) {
		out, err := checkCanonical(statVers)
		if err != nil {
			return nil, err
		}
		if err := c.validatePseudoVersion(ctx, info, statVers); err != nil {
			return nil, err
		}
		return out, nil
	}

	tagPrefix := ""
	if c.codeDir != "" {
		tagPrefix = c.codeDir + "/"
	}
	isRetracted, err := c.retractedVersions(ctx)
	if err != nil {
		if !isNotFound(err) {
			return nil, err // a Git failure must not silently change the answer
		}
		isRetracted = func(string) bool { return false }
	}
	tagToVersion := func(tag string) (v string, tagIsCanonical bool) {
		if !strings.HasPrefix(tag, tagPrefix) {
			return "", false
		}
		trimmed := tag[len(tagPrefix):]
		if module.IsPseudoVersion(tag) {
			return "", false
		}
		v = semver.Canonical(trimmed)
		if v == "" || !strings.HasPrefix(trimmed, v) {
			return "", false
		}
		return v, v == trimmed
	}

	if v, tagIsCanonical := tagToVersion(info.Version); tagIsCanonical {
		if out, err := checkCanonical(v); err == nil {
			return out, nil
		} else if !isNotFound(err) {
			return nil, err
		}
	}

	var highestCanonical, pseudoBase string
	for _, pathTag := range info.Tags {
		v, tagIsCanonical := tagToVersion(pathTag)
		if statVers != "" && semver.Compare(v, statVers) == 0 {
			if tagIsCanonical {
				return checkCanonical(v)
			}
			pseudoBase = v
		}
		if tagIsCanonical && semver.Compare(highestCanonical, v) < 0 && !isRetracted(v) {
			ok := module.MatchPathMajor(v, c.pathMajor)
			if !ok {
				if ok, err = canUseIncompatible(v); err != nil {
					return nil, err
				}
			}
			if ok {
				highestCanonical = v
			}
		}
	}
	if highestCanonical != "" {
		return checkCanonical(highestCanonical)
	}

	var allowErr error
	tagAllowed := func(tag string) bool {
		v, _ := tagToVersion(tag)
		if v == "" {
			return false
		}
		if !module.MatchPathMajor(v, c.pathMajor) {
			ok, err := canUseIncompatible(v)
			if err != nil && allowErr == nil {
				allowErr = err
			}
			if !ok {
				return false
			}
		}
		return !isRetracted(v)
	}
	if pseudoBase == "" {
		tag, err := c.repo.recentTag(ctx, info.Name, tagPrefix, tagAllowed)
		if err != nil {
			return nil, err
		}
		if allowErr != nil {
			return nil, allowErr
		}
		if tag != "" {
			pseudoBase, _ = tagToVersion(tag)
		}
	}
	return checkCanonical(module.PseudoVersion(c.pseudoMajor, pseudoBase, info.Time, info.Short))
}

// validatePseudoVersion checks that version encodes info's commit and time
// and a base tag that is an ancestor of the commit.
func (c *codeRepo) validatePseudoVersion(ctx context.Context, info *revInfo, version string) error {
	invalid := func(format string, args ...any) error {
		return notExist("invalid pseudo-version %s: %s", version, fmt.Sprintf(format, args...))
	}
	rev, err := module.PseudoVersionRev(version)
	if err != nil {
		return invalid("%v", err)
	}
	if rev != info.Short {
		switch {
		case strings.HasPrefix(rev, info.Short):
			return invalid("revision is longer than canonical (expected %s)", info.Short)
		case strings.HasPrefix(info.Short, rev):
			return invalid("revision is shorter than canonical (expected %s)", info.Short)
		default:
			return invalid("does not match short name of revision (expected %s)", info.Short)
		}
	}
	t, err := module.PseudoVersionTime(version)
	if err != nil {
		return invalid("%v", err)
	}
	if !t.Equal(info.Time.Truncate(time.Second)) {
		return invalid("does not match version-control timestamp (expected %s)", info.Time.UTC().Format(module.PseudoVersionTimestampFormat))
	}
	tagPrefix := ""
	if c.codeDir != "" {
		tagPrefix = c.codeDir + "/"
	}
	base, err := module.PseudoVersionBase(strings.TrimSuffix(version, "+incompatible"))
	if err != nil {
		return invalid("%v", err)
	}
	if base == "" {
		if c.pseudoMajor == "" && semver.Major(version) == "v1" {
			return invalid("major version without preceding tag must be v0, not v1")
		}
		return nil
	}
	for _, tag := range info.Tags {
		if strings.TrimPrefix(tag, tagPrefix) == base {
			return invalid("tag (%s) found on revision %s is already canonical, so should not be replaced with a pseudo-version derived from that tag", tag, rev)
		}
	}
	tags, err := c.repo.tags(ctx, tagPrefix+base)
	if err != nil {
		return err
	}
	var lastTag string
	for _, t := range tags {
		if semver.Compare(strings.TrimPrefix(t.name, tagPrefix), base) != 0 {
			continue
		}
		lastTag = t.name
		ok, err := c.repo.descendsFrom(ctx, info.Name, t.name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	if lastTag == "" {
		return invalid("preceding tag (%s) not found", base)
	}
	return invalid("revision %s is not a descendent of preceding tag (%s)", rev, lastTag)
}

// revToRev turns a version into the revision to look up: the commit of a
// pseudo-version, the tag (with its directory prefix) of a version.
func (c *codeRepo) revToRev(rev string) string {
	if !semver.IsValid(rev) {
		return rev
	}
	if module.IsPseudoVersion(rev) {
		r, _ := module.PseudoVersionRev(rev)
		return r
	}
	if semver.Build(rev) == "+incompatible" {
		rev = rev[:len(rev)-len("+incompatible")]
	}
	if c.codeDir == "" {
		return rev
	}
	return c.codeDir + "/" + rev
}

// findDir locates the module's directory at version: codeDir, or
// codeDir/vN for a /vN module in the major-subdirectory layout. It returns
// the revision, the directory and the go.mod found there (nil when the
// module has none and may do without).
func (c *codeRepo) findDir(ctx context.Context, version string) (rev, dir string, gomod []byte, err error) {
	if !semver.IsValid(version) {
		return "", "", nil, notExist("invalid version %s: syntax error", version)
	}
	rev = c.revToRev(version)
	missing := func(format string, args ...any) error {
		return notExist("%s@%s: %s", c.modPath, version, fmt.Sprintf(format, args...))
	}

	file1 := path.Join(c.codeDir, "go.mod")
	gomod1, has1, err := c.repo.readFileAt(ctx, rev, file1)
	if err != nil {
		if isNotFound(err) {
			return "", "", nil, notExist("invalid version %s: %v", version, err)
		}
		return "", "", nil, err
	}
	mpath1 := modfile.ModulePath(gomod1)
	found1 := has1 && isMajor(mpath1, c.pathMajor)

	var file2 string
	if c.pathMajor != "" && c.codeRoot != c.modPath && !strings.HasPrefix(c.pathMajor, ".") {
		dir2 := path.Join(c.codeDir, c.pathMajor[1:])
		file2 = path.Join(dir2, "go.mod")
		gomod2, has2, err := c.repo.readFileAt(ctx, rev, file2)
		if err != nil {
			return "", "", nil, err
		}
		mpath2 := modfile.ModulePath(gomod2)
		found2 := has2 && isMajor(mpath2, c.pathMajor)
		if found1 && found2 {
			return "", "", nil, missing("%s/%s and ...%s/go.mod both have ...%s module paths at revision %s", c.pathPrefix, file1, c.pathMajor, c.pathMajor, rev)
		}
		if found2 {
			return rev, dir2, gomod2, nil
		}
		if has2 {
			if mpath2 == "" {
				return "", "", nil, missing("%s/%s is missing module path at revision %s", c.codeRoot, file2, rev)
			}
			return "", "", nil, missing("%s/%s has non-...%s module path %q at revision %s", c.codeRoot, file2, c.pathMajor, mpath2, rev)
		}
	}

	if found1 {
		return rev, c.codeDir, gomod1, nil
	}
	if has1 {
		suffix := ""
		if file2 != "" {
			suffix = fmt.Sprintf(" (and ...%s/go.mod does not exist)", c.pathMajor)
		}
		if mpath1 == "" {
			return "", "", nil, missing("%s is missing module path%s at revision %s", file1, suffix, rev)
		}
		if c.pathMajor != "" {
			return "", "", nil, missing("%s has non-...%s module path %q%s at revision %s", file1, c.pathMajor, mpath1, suffix, rev)
		}
		if _, _, ok := module.SplitPathVersion(mpath1); !ok {
			return "", "", nil, missing("%s has malformed module path %q%s at revision %s", file1, mpath1, suffix, rev)
		}
		return "", "", nil, missing("%s has post-%s module path %q%s at revision %s", file1, semver.Major(version), mpath1, suffix, rev)
	}
	if c.codeDir == "" && c.pathMajor == "" {
		return rev, "", nil, nil // no go.mod at the root of a v0/v1 module: allowed
	}
	if file2 != "" {
		return "", "", nil, missing("missing %s/go.mod and ...%s/go.mod at revision %s", c.pathPrefix, c.pathMajor, rev)
	}
	return "", "", nil, missing("missing %s/go.mod at revision %s", c.pathPrefix, rev)
}

// isMajor reports whether the versions allowed for mpath are compatible
// with the major version(s) implied by pathMajor.
func isMajor(mpath, pathMajor string) bool {
	if mpath == "" {
		return false
	}
	_, mpathMajor, ok := module.SplitPathVersion(mpath)
	if !ok {
		return false
	}
	if pathMajor == "" {
		switch module.PathMajorPrefix(mpathMajor) {
		case "", "v0", "v1":
			return true
		default:
			return false
		}
	}
	if mpathMajor == "" {
		return false
	}
	return pathMajor[1:] == mpathMajor[1:]
}

// goMod returns the go.mod of a canonical version, or the one the go
// command synthesizes for a module without one. The caller has checked
// the version with stat (which checks a pseudo-version's metadata).
func (c *codeRepo) goMod(ctx context.Context, version string) ([]byte, error) {
	if version != module.CanonicalVersion(version) {
		return nil, notExist("version %s is not canonical", version)
	}
	_, _, gomod, err := c.findDir(ctx, version)
	if err != nil {
		return nil, err
	}
	if gomod != nil {
		return gomod, nil
	}
	return legacyGoMod(c.modPath), nil
}

// legacyGoMod is the go.mod the go command synthesizes for a module
// without one.
func legacyGoMod(modPath string) []byte {
	return fmt.Appendf(nil, "module %s\n", modfile.AutoQuote(modPath))
}

// retractedVersions returns a function reporting whether a version is
// retracted by the go.mod of the highest release (else pre-release).
func (c *codeRepo) retractedVersions(ctx context.Context) (func(string) bool, error) {
	versions, err := c.versions(ctx)
	if err != nil {
		return nil, err
	}
	for i, v := range versions {
		if strings.HasSuffix(v, "+incompatible") {
			versions = versions[:i]
			break
		}
	}
	if len(versions) == 0 {
		return func(string) bool { return false }, nil
	}
	highest := versions[len(versions)-1]
	for _, v := range slices.Backward(versions) {
		if semver.Prerelease(v) == "" {
			highest = v
			break
		}
	}
	data, err := c.goMod(ctx, highest)
	if err != nil {
		return nil, err
	}
	f, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return nil, notExist("parsing go.mod of %s@%s: %v", c.modPath, highest, err)
	}
	var retractions []modfile.VersionInterval
	for _, r := range f.Retract {
		retractions = append(retractions, r.VersionInterval)
	}
	return func(v string) bool {
		for _, r := range retractions {
			if semver.Compare(r.Low, v) <= 0 && semver.Compare(v, r.High) <= 0 {
				return true
			}
		}
		return false
	}, nil
}
