package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// An EnvVar is an environment variable that overrides one key.
type EnvVar struct {
	Name string // "MODGATE_LISTEN"
	Key  string // "listen"
}

// EnvVars returns the environment variables Load reads, in the order they
// are applied. An empty variable counts as unset.
func EnvVars() []EnvVar {
	return []EnvVar{
		{"MODGATE_LISTEN", "listen"},
		{"MODGATE_PUBLIC_URL", "public_url"},
		{"MODGATE_DATA_DIR", "data_dir"},
		{"MODGATE_LOG_LEVEL", "log.level"},
		{"MODGATE_LOG_FORMAT", "log.format"},
		{"MODGATE_GOPROXY", "upstream.goproxy"},
		{"MODGATE_GOSUMDB", "sumdb.gosumdb"},
	}
}

// Load builds a configuration from the defaults, the YAML file at path
// (skipped when path is empty; a missing file is an error matching
// fs.ErrNotExist) and the MODGATE_* variables read through env (nil means
// os.Getenv). env is also what Resolve later uses to find the per-user data
// directory.
//
// The file is decoded strictly: unknown keys, duplicate keys, values of the
// wrong type and extra YAML documents are errors naming the key and its
// line. All problems in the file and the environment are reported at once,
// joined; each matches ErrInvalid. An empty file means all defaults.
//
// Load does not validate values that have the right type (a listen address
// without a port, a bad URL): call Resolve and then Validate.
//
// When the problems match ErrInvalid, the Config returned with them holds
// every value that did decode (a key with a problem keeps its default),
// and its Validate reports Load's problems again, together with its own:
// a caller that goes on to Validate shows the user every problem at once.
// Any other error (the file cannot be read) comes with a zero Config.
func Load(path string, env func(string) string) (Config, error) {
	if env == nil {
		env = os.Getenv
	}
	c := Default()
	c.env = env
	var problems []error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("reading config file: %w", err)
		}
		problems = append(problems, c.decodeFile(path, data)...)
		c.File = path
	}
	for _, v := range EnvVars() {
		val := env(v.Name)
		if val == "" {
			continue
		}
		if err := c.Set(v.Key, val, "env "+v.Name); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		c.loadProblems = problems
		return c, errors.Join(problems...)
	}
	return c, nil
}

// Set sets key (as in Keys, "upstream.retries") from its text form, the way
// an environment variable or a command-line flag spells it, and records
// source ("flag --listen") as where the value came from. Lists are
// comma-separated (empty elements dropped, spaces trimmed), durations are Go
// duration strings, log levels and formats are parsed. A value of the wrong
// type is a *Problem naming key and source; c is then unchanged.
//
// Package cli applies flags with Set. A caller that assigns a field
// directly should record its source in c.Sources itself.
func (c *Config) Set(key, value, source string) error {
	f, ok := lookupField(key)
	if !ok {
		return &Problem{Key: key, Source: source, Msg: "unknown key (known keys: " + strings.Join(Keys(), ", ") + ")"}
	}
	dst := reflect.ValueOf(c).Elem().FieldByIndex(f.index)
	bad := func(err error) error { return &Problem{Key: key, Source: source, Msg: err.Error()} }
	switch {
	case f.typ == durationType:
		d, err := ParseDuration(value)
		if err != nil {
			return bad(err)
		}
		dst.Set(reflect.ValueOf(d))
	case f.typ == reflect.TypeFor[LogLevel]():
		l, err := ParseLogLevel(value)
		if err != nil {
			return bad(err)
		}
		dst.Set(reflect.ValueOf(l))
	case f.typ == reflect.TypeFor[LogFormat]():
		lf, err := ParseLogFormat(value)
		if err != nil {
			return bad(err)
		}
		dst.Set(reflect.ValueOf(lf))
	case f.typ.Kind() == reflect.String:
		dst.SetString(value)
	case f.typ.Kind() == reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return bad(fmt.Errorf("%q is not a whole number", value))
		}
		dst.SetInt(int64(n))
	case f.typ == reflect.TypeFor[[]string]():
		dst.Set(reflect.ValueOf(splitList(value)))
	case f.typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(value))
		if err != nil {
			return bad(fmt.Errorf("%q is not true or false", value))
		}
		dst.SetBool(b)
	case isSectionList(f.typ):
		return bad(errors.New("a list of settings can only be written in the config file"))
	default:
		// schema() only yields the types above; a new field type needs a case.
		panic(fmt.Sprintf("config: key %s has unsupported type %s", key, f.typ))
	}
	c.setSource(key, source)
	return nil
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty elements, as the go command reads GOPRIVATE and friends.
func splitList(s string) []string {
	out := []string{}
	for elem := range strings.SplitSeq(s, ",") {
		if elem = strings.TrimSpace(elem); elem != "" {
			out = append(out, elem)
		}
	}
	return out
}

// decodeFile decodes the YAML document data (read from name) into c.
//
// It works in two passes. The first walks the document's node tree against
// the schema and reports every problem with its full dotted key and line,
// which yaml's own errors cannot do (they name only the last key element,
// and type errors name no key at all). If the walk finds nothing, the
// second pass decodes the document with a yaml.Decoder in KnownFields mode,
// so the values that reach the Config are exactly yaml's strict decoding,
// and anything the walk could have missed is still refused.
func (c *Config) decodeFile(name string, data []byte) []error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: all defaults
		}
		return []error{&Problem{Pos: name, Msg: err.Error()}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil || line == 0 {
			return []error{&Problem{Pos: name, Msg: "after the first YAML document: " + errString(err)}}
		}
		return []error{&Problem{Pos: fmt.Sprintf("%s:%d", name, line), Msg: "a second YAML document; put every setting in one document"}}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	top := doc.Content[0]
	if isNull(top) {
		return nil
	}
	w := walker{file: name, c: c}
	if top.Kind != yaml.MappingNode {
		w.problem(top, "", "want a mapping of keys (%s) at the top level, got %s", strings.Join(sectionKeys(reflect.TypeFor[Config]()), ", "), describeNode(top))
		return w.problems
	}
	w.mapping(top, reflect.TypeFor[Config](), "")
	if len(w.problems) > 0 {
		// Keep what did decode, so that Validate can report the
		// problems of those values in the same round.
		partial := c.Clone()
		if err := top.Decode(&partial); err == nil {
			*c = partial
			w.record(c, name)
		}
		return w.problems
	}

	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(c); err != nil {
		return []error{&Problem{Pos: name, Msg: err.Error()}}
	}
	w.record(c, name)
	return nil
}

// record notes in c the source and line of every key the file set.
func (w *walker) record(c *Config, name string) {
	if c.pos == nil {
		c.pos = make(map[string]string)
	}
	for key, line := range w.set {
		c.setSource(key, SourceFile)
		c.pos[key] = fmt.Sprintf("%s:%d", name, line)
	}
	for key, line := range w.lines {
		c.pos[key] = fmt.Sprintf("%s:%d", name, line)
	}
}

func errString(err error) string {
	if err == nil {
		return "unexpected content"
	}
	return err.Error()
}

// isNull reports whether n is an explicit or implicit YAML null ("key:",
// "key: ~", "key: null"). A null leaves the default in place.
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// A walker checks a YAML node tree against the schema.
type walker struct {
	file     string
	c        *Config
	problems []error
	set      map[string]int // key -> line, for keys the file sets
	lines    map[string]int // key -> line inside lists of sections ("private.sources[1].url")
}

func (w *walker) problem(n *yaml.Node, key, format string, args ...any) {
	w.problems = append(w.problems, &Problem{
		Key: key,
		Pos: fmt.Sprintf("%s:%d", w.file, n.Line),
		Msg: fmt.Sprintf(format, args...),
	})
}

// mapping checks the keys of mapping node n against struct type t; prefix
// is the dotted key of n ("upstream.") as the user wrote it. It removes
// from n every key with a problem (a section keeps its good keys), so that
// what is left decodes: Load still reports every problem with the values
// that did decode (see Config.Validate).
func (w *walker) mapping(n *yaml.Node, t reflect.Type, prefix string) {
	seen := make(map[string]int)
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		before := len(w.problems)
		if w.pair(n.Content[i], deref(n.Content[i+1]), t, prefix, seen) || len(w.problems) == before {
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
	}
	n.Content = kept
}

// pair checks one key k and its value v of a mapping of struct type t. It
// reports whether v is a section whose own bad keys mapping has removed,
// to be kept whatever problems it had.
func (w *walker) pair(k, v *yaml.Node, t reflect.Type, prefix string, seen map[string]int) (section bool) {
	if k.Kind != yaml.ScalarNode {
		w.problem(k, strings.TrimSuffix(prefix, "."), "keys must be plain names, got %s", describeNode(k))
		return false
	}
	key := prefix + k.Value
	if k.ShortTag() == "!!merge" {
		w.problem(k, key, "merge keys are not supported; write the keys out")
		return false
	}
	if first, dup := seen[k.Value]; dup {
		w.problem(k, key, "set twice (first on line %d); remove one", first)
		return false
	}
	seen[k.Value] = k.Line
	sf, ok := structField(t, k.Value)
	if !ok {
		w.problem(k, key, "unknown key%s", suggest(t, k.Value, prefix))
		return false
	}
	if isNull(v) {
		return false
	}
	if isSection(sf.Type) {
		if v.Kind != yaml.MappingNode {
			w.problem(v, key, "want a mapping with keys %s, got %s", strings.Join(sectionKeys(sf.Type), ", "), describeNode(v))
			return false
		}
		w.mapping(v, sf.Type, key+".")
		return true
	}
	if isSectionList(sf.Type) {
		if w.sectionList(v, sf.Type.Elem(), key) {
			if w.set == nil {
				w.set = make(map[string]int)
			}
			w.set[key] = k.Line
		}
		return false
	}
	if w.leaf(v, sf.Type, key) {
		if w.set == nil {
			w.set = make(map[string]int)
		}
		w.set[key] = k.Line
	}
	return false
}

// sectionList checks a list of sections ("private.sources", whose
// elements are mappings of struct type t); an element's keys are named
// "private.sources[1].url". It reports whether the list is well-formed.
func (w *walker) sectionList(v *yaml.Node, t reflect.Type, key string) bool {
	if v.Kind != yaml.SequenceNode {
		w.problem(v, key, "want a list of mappings with keys %s, got %s", strings.Join(sectionKeys(t), ", "), describeNode(v))
		return false
	}
	before := len(w.problems)
	for i, e := range v.Content {
		e = deref(e)
		elemKey := fmt.Sprintf("%s[%d]", key, i)
		if e.Kind != yaml.MappingNode {
			w.problem(e, elemKey, "want a mapping with keys %s, got %s", strings.Join(sectionKeys(t), ", "), describeNode(e))
			continue
		}
		// Keys inside list elements are not sources of their own (the
		// list as a whole comes from the file), but their lines make
		// Validate's messages point at the right place.
		set := w.set
		w.set = map[string]int{elemKey: e.Line}
		w.mapping(e, t, elemKey+".")
		if w.lines == nil {
			w.lines = make(map[string]int)
		}
		maps.Copy(w.lines, w.set)
		w.set = set
	}
	return len(w.problems) == before
}

// leaf checks that v can be decoded as a value of type t and reports
// whether it can.
func (w *walker) leaf(v *yaml.Node, t reflect.Type, key string) bool {
	switch {
	case t.Kind() == reflect.Bool:
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
			w.problem(v, key, "want true or false, got %s", describeNode(v))
			return false
		}
	case t == durationType:
		var d Duration
		if err := v.Decode(&d); err != nil {
			w.problem(v, key, "%v", err)
			return false
		}
		return true
	case t.Kind() == reflect.String:
		if v.Kind != yaml.ScalarNode {
			w.problem(v, key, "want a string, got %s", describeNode(v))
			return false
		}
	case t.Kind() == reflect.Int:
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
			w.problem(v, key, "want a whole number, got %s", describeNode(v))
			return false
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		if v.Kind != yaml.SequenceNode {
			w.problem(v, key, "want a list such as [\"corp.example/*\"], got %s", describeNode(v))
			return false
		}
		ok := true
		for i, e := range v.Content {
			if e = deref(e); e.Kind != yaml.ScalarNode || isNull(e) {
				w.problem(e, fmt.Sprintf("%s[%d]", key, i), "want a string, got %s", describeNode(e))
				ok = false
			}
		}
		if !ok {
			return false
		}
	}
	// The shape is right; let yaml have the last word on the value itself
	// (an int that overflows, invalid !!binary).
	if err := v.Decode(reflect.New(t).Interface()); err != nil {
		w.problem(v, key, "%v", err)
		return false
	}
	return true
}

// deref follows alias nodes to what they stand for.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// structField finds the field of struct type t whose key is name.
func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if yamlName(sf) == name {
			return sf, true
		}
	}
	return reflect.StructField{}, false
}

// suggest returns the hint for an unknown key: the known key it most
// likely means, or the list of keys allowed at its level.
func suggest(t reflect.Type, name, prefix string) string {
	fold := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	known := sectionKeys(t)
	for _, k := range known {
		if fold(k) == fold(name) {
			return fmt.Sprintf("; did you mean %q?", prefix+k)
		}
	}
	where := "at the top level"
	if prefix != "" {
		where = "in " + strings.TrimSuffix(prefix, ".")
	}
	return fmt.Sprintf(" (known keys %s: %s)", where, strings.Join(known, ", "))
}
