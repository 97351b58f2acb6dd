package config

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/modgate/modgate/internal/upstream"
)

// redacted replaces credentials in URLs.
const redacted = "xxxxx"

// Redacted returns a deep copy of c with the credentials in URLs replaced by
// "xxxxx": in public_url, in every upstream.goproxy entry and in the URL of
// sumdb.gosumdb. A password is replaced as url.URL.Redacted does; a user
// name without a password is replaced too, because in a GOPROXY URL it is
// usually a token. This is the form to log or print.
func (c Config) Redacted() Config {
	r := c.Clone()
	r.PublicURL = upstream.RedactURL(c.PublicURL)
	r.Upstream.Direct.Proxy = upstream.RedactURL(c.Upstream.Direct.Proxy)
	r.Upstream.GOPROXY = upstream.RedactGOPROXY(c.Upstream.GOPROXY)
	r.SumDB.GOSUMDB = redactGOSUMDB(c.SumDB.GOSUMDB)
	return r
}

// redactGOSUMDB redacts the URL after the key, if any.
func redactGOSUMDB(s string) string {
	f := strings.Fields(s)
	if len(f) < 2 || !strings.Contains(s, "@") {
		return s
	}
	for i := 1; i < len(f); i++ {
		f[i] = upstream.RedactURL(f[i])
	}
	return strings.Join(f, " ")
}

// Where returns where key's value came from, with the file position for a
// value from the config file: "config file /etc/modgate.yaml:12",
// "env MODGATE_LISTEN", "go env GOPROXY", "default".
func (c Config) Where(key string) string {
	s := c.Source(key)
	if pos := c.pos[key]; pos != "" && s == SourceFile {
		return s + " " + pos
	}
	return s
}

// YAML returns the configuration as a YAML document, credentials redacted
// (see Redacted), derived defaults filled in (see Effective), every key
// present and followed by a comment saying where its value came from (see
// Where). It is what `modgate serve --print-config` prints, and Load reads
// it back to the values of c.Effective().
func (c Config) YAML() ([]byte, error) {
	r := c.Effective().Redacted()
	root := &yaml.Node{
		Kind: yaml.MappingNode,
		HeadComment: "modgate configuration in effect; passwords in URLs are replaced by " + redacted + ".\n" +
			"The comment after each value says where it came from.",
	}
	sections := map[string]*yaml.Node{"": root}
	rv := reflect.ValueOf(r)
	for _, f := range schema() {
		parentKey, name := "", f.key
		if i := strings.LastIndex(f.key, "."); i >= 0 {
			parentKey, name = f.key[:i], f.key[i+1:]
		}
		parent := sectionNode(sections, parentKey)
		var val yaml.Node
		if err := val.Encode(rv.FieldByIndex(f.index).Interface()); err != nil {
			return nil, fmt.Errorf("encoding %s: %w", f.key, err)
		}
		if val.Kind == yaml.SequenceNode && !isSectionList(f.typ) {
			val.Style = yaml.FlowStyle // one line, so the comment follows it
		}
		if isSectionList(f.typ) {
			val.HeadComment = r.Where(f.key)
		} else {
			val.LineComment = r.Where(f.key)
		}
		parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, &val)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encoding configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding configuration: %w", err)
	}
	return buf.Bytes(), nil
}

// sectionNode returns the mapping node for the dotted section key,
// creating it (and its parents) in root on first use.
func sectionNode(sections map[string]*yaml.Node, key string) *yaml.Node {
	if n, ok := sections[key]; ok {
		return n
	}
	parentKey, name := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		parentKey, name = key[:i], key[i+1:]
	}
	parent := sectionNode(sections, parentKey)
	n := &yaml.Node{Kind: yaml.MappingNode}
	parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, n)
	sections[key] = n
	return n
}
