package git

import (
	"context"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// This file answers questions about revisions of one repository, the way
// the go command's codehost/git.go does, from the server's ref list and the
// bare mirror.

// minHashDigits is the shortest hash prefix accepted as a revision.
const minHashDigits = 7

// A revInfo describes one commit.
type revInfo struct {
	Name    string    // full commit hash
	Short   string    // the 12-digit prefix used in pseudo-versions
	Time    time.Time // committer time, UTC
	Version string    // the tag the commit was asked for by, else Name
	Tags    []string  // tags pointing at the commit, sorted
	Ref     string    // the ref the revision was resolved through ("refs/tags/v1.0.0", "refs/heads/main", "HEAD"); "" for a hash
}

// A tag is a tag name and the commit it points at.
type tag struct{ name, hash string }

// tags returns the server's tags that start with prefix, sorted by name.
func (r *repo) tags(ctx context.Context, prefix string) ([]tag, error) {
	refs, err := r.loadRefs(ctx)
	if err != nil {
		return nil, err
	}
	var list []tag
	for ref, hash := range refs {
		if name, ok := strings.CutPrefix(ref, "refs/tags/"); ok && strings.HasPrefix(name, prefix) {
			list = append(list, tag{name, hash})
		}
	}
	slices.SortFunc(list, func(a, b tag) int { return strings.Compare(a.name, b.name) })
	return list, nil
}

// stat resolves rev (a tag, a branch, "HEAD", or a full or abbreviated
// commit hash) to a commit, fetching it into the mirror if needed. An
// unknown revision matches fs.ErrNotExist.
func (r *repo) stat(ctx context.Context, rev string) (*revInfo, error) {
	refs, err := r.loadRefs(ctx)
	if err != nil {
		return nil, err
	}
	var ref, want string
	switch {
	case len(rev) >= minHashDigits && len(rev) <= 40 && isHex(rev):
		// Like the go command with the commit in its cache: a hash is
		// looked up as a hash, not through a ref.
		want = rev
		var match string
		for _, h := range refs {
			if strings.HasPrefix(h, rev) {
				if match != "" && match != h {
					return nil, notExist("ambiguous revision %s", rev)
				}
				match = h
			}
		}
		if match != "" {
			want = match
		}
	case refs["refs/tags/"+rev] != "":
		ref = "refs/tags/" + rev
		want = refs[ref]
	case refs["refs/heads/"+rev] != "":
		ref = "refs/heads/" + rev
		want = refs[ref]
	case rev == "HEAD" && refs["HEAD"] != "":
		ref, want = "HEAD", refs["HEAD"]
	default:
		return nil, notExist("unknown revision %s", rev)
	}
	hash, err := r.ensure(ctx, refs, want)
	if err != nil {
		return nil, err
	}
	t, err := r.commitTime(ctx, hash)
	if err != nil {
		return nil, err
	}
	info := &revInfo{Name: hash, Short: hash[:12], Time: t, Version: hash, Ref: ref}
	for ref, h := range refs {
		if name, ok := strings.CutPrefix(ref, "refs/tags/"); ok && h == hash {
			info.Tags = append(info.Tags, name)
		}
	}
	slices.Sort(info.Tags)
	if slices.Contains(info.Tags, rev) {
		info.Version = rev
	}
	return info, nil
}

// latest resolves the server's HEAD (the default branch).
func (r *repo) latest(ctx context.Context) (*revInfo, error) {
	refs, err := r.loadRefs(ctx)
	if err != nil {
		return nil, err
	}
	if refs["HEAD"] == "" {
		return nil, notExist("no commits")
	}
	info, err := r.stat(ctx, refs["HEAD"])
	if err != nil {
		return nil, err
	}
	info.Ref = "HEAD"
	return info, nil
}

// readFileAt returns file at revision rev; ok is false when it does not
// exist there.
func (r *repo) readFileAt(ctx context.Context, rev, file string) (data []byte, ok bool, err error) {
	info, err := r.stat(ctx, rev)
	if err != nil {
		return nil, false, err
	}
	return r.readFile(ctx, info.Name, file)
}

// recentTag returns the highest tag reachable from rev that starts with
// prefix and is allowed, compared by the semantic version after prefix;
// "" when there is none.
func (r *repo) recentTag(ctx context.Context, rev, prefix string, allowed func(tag string) bool) (string, error) {
	info, err := r.stat(ctx, rev)
	if err != nil {
		return "", err
	}
	refs, err := r.loadRefs(ctx)
	if err != nil {
		return "", err
	}
	// The mirror's local tags must be the server's for "merged" to mean
	// what it means to the go command after its full fetch.
	if err := r.sync(ctx, refs); err != nil {
		return "", err
	}
	tags, err := r.mergedTags(ctx, info.Name)
	if err != nil {
		return "", err
	}
	var highest string
	for _, t := range tags {
		if !strings.HasPrefix(t, prefix) || !allowed(t) {
			continue
		}
		if semtag := t[len(prefix):]; semver.Compare(semtag, highest) > 0 {
			highest = semtag
		}
	}
	if highest == "" {
		return "", nil
	}
	return prefix + highest, nil
}

// descendsFrom reports whether rev is a descendant of the commit tag names.
func (r *repo) descendsFrom(ctx context.Context, rev, tagName string) (bool, error) {
	refs, err := r.loadRefs(ctx)
	if err != nil {
		return false, err
	}
	tagHash := refs["refs/tags/"+tagName]
	if tagHash == "" {
		return false, nil
	}
	info, err := r.stat(ctx, rev)
	if err != nil {
		return false, err
	}
	if _, err := r.ensure(ctx, refs, tagHash); err != nil {
		return false, err
	}
	return r.isAncestor(ctx, tagHash, info.Name)
}
