package deploy

import (
	"fmt"
	"slices"
	"strings"
)

// A reference is what one PromQL expression needs from a scrape: the
// metric names it selects, the label names each selector matches on, and
// the label names of its by/without/on/ignoring clauses.
type reference struct {
	metrics  map[string][]string // metric name -> label names in its selectors
	grouping []string            // label names in by (...), without (...), on (...), ignoring (...)
}

// promqlKeywords are identifiers that are never metric names: operators,
// modifiers, and aggregations (which may be followed by a by clause
// rather than their parenthesis).
var promqlKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right",
	"and", "or", "unless", "bool", "offset", "inf", "nan",
	"sum", "min", "max", "avg", "count", "stddev", "stdvar", "group", "topk", "bottomk", "quantile", "count_values"}

// grafanaVariables replaces the dashboard's template variables with what
// they stand for in a query Prometheus itself can parse.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$instance", ".*")

// references scans a PromQL expression by hand: enough of the grammar to
// find selectors and grouping labels, not a parser. Whether the expression
// parses at all is promtool's job (TestPromtool, TestDashboardQueriesParse).
func references(expr string) (reference, error) {
	ref := reference{metrics: map[string][]string{}}
	s := grafanaVariables.Replace(expr)
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(s, i)
			if err != nil {
				return ref, err
			}
			i = end
		case c == '[': // a range or subquery duration
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return ref, fmt.Errorf("unclosed [ in %q", expr)
			}
			i += end + 1
		case c == '{': // a selector without a metric name: {__name__=...}
			labels, end, err := selectorLabels(s, i)
			if err != nil {
				return ref, err
			}
			ref.metrics[""] = append(ref.metrics[""], labels...)
			i = end
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && s[k] == ' ' {
				k++
			}
			switch {
			case slices.Contains([]string{"by", "without", "on", "ignoring", "group_left", "group_right"}, strings.ToLower(word)):
				if k < len(s) && s[k] == '(' {
					end := strings.IndexByte(s[k:], ')')
					if end < 0 {
						return ref, fmt.Errorf("unclosed ( after %s in %q", word, expr)
					}
					for _, l := range strings.Split(s[k+1:k+end], ",") {
						if l = strings.TrimSpace(l); l != "" {
							ref.grouping = append(ref.grouping, l)
						}
					}
					j = k + end + 1
				}
			case k < len(s) && s[k] == '(': // a function or aggregation
			case slices.Contains(promqlKeywords, strings.ToLower(word)):
			default:
				labels := ref.metrics[word]
				if labels == nil {
					labels = []string{}
				}
				if k < len(s) && s[k] == '{' {
					l, end, err := selectorLabels(s, k)
					if err != nil {
						return ref, err
					}
					labels = append(labels, l...)
					j = end
				}
				ref.metrics[word] = labels
			}
			i = j
		case c >= '0' && c <= '9' || c == '.':
			// A number, possibly 1e5 or 0x1f: skip it with its letters.
			for i < len(s) && (isIdent(s[i]) || s[i] == '.') {
				i++
			}
		default:
			i++
		}
	}
	return ref, nil
}

// selectorLabels reads the label matchers of the selector starting at
// s[open] == '{' and returns their label names and the index after '}'.
func selectorLabels(s string, open int) ([]string, int, error) {
	var names []string
	i := open + 1
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unclosed { in %q", s)
		}
		if s[i] == '}' {
			return names, i + 1, nil
		}
		j := i
		for j < len(s) && isIdent(s[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("bad label matcher at %q", s[i:])
		}
		names = append(names, s[i:j])
		for j < len(s) && strings.IndexByte(" =!~", s[j]) >= 0 {
			j++
		}
		end, err := skipString(s, j)
		if err != nil {
			return nil, 0, err
		}
		i = end
	}
}

// skipString returns the index after the quoted string starting at s[i].
func skipString(s string, i int) (int, error) {
	if i >= len(s) || strings.IndexByte("\"'`", s[i]) < 0 {
		return 0, fmt.Errorf("want a quoted string at %q", s[i:])
	}
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unclosed string in %q", s)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
