package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// A family is one metric family of a scrape: its type and the label names
// its samples carry, per sample name (name_bucket carries "le").
type family struct {
	typ     string
	samples map[string]map[string]bool // sample name -> label names
}

// parseScrape reads the Prometheus text format: families from # TYPE
// lines, label names from the samples. Label values are skipped as
// quoted strings, escapes included.
func parseScrape(text []byte) (map[string]*family, error) {
	fams := map[string]*family{}
	owner := map[string]string{} // sample name -> family
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			fams[name] = &family{typ: typ, samples: map[string]map[string]bool{}}
			for _, suf := range sampleSuffixes(typ) {
				owner[name+suf] = name
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end < 0 {
			return nil, fmt.Errorf("bad sample line %q", line)
		}
		name := line[:end]
		f := fams[owner[name]]
		if f == nil {
			return nil, fmt.Errorf("sample %q before its # TYPE line", name)
		}
		labels := f.samples[name]
		if labels == nil {
			labels = map[string]bool{}
			f.samples[name] = labels
		}
		if line[end] == '{' {
			names, _, err := selectorLabels(line, end)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				labels[n] = true
			}
		}
	}
	return fams, sc.Err()
}

// sampleSuffixes are the sample names a family of type typ writes.
func sampleSuffixes(typ string) []string {
	switch typ {
	case "histogram":
		return []string{"_bucket", "_sum", "_count"}
	case "summary":
		return []string{"", "_sum", "_count"}
	}
	return []string{""}
}

// sampleLabels returns the label names of the samples named name in
// fams, and whether any sample has that name.
func sampleLabels(fams map[string]*family, name string) (map[string]bool, bool) {
	for _, f := range fams {
		if l, ok := f.samples[name]; ok {
			return l, true
		}
	}
	return nil, false
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
