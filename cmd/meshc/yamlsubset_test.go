package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// parseYAMLSubset parses the part of YAML the starters' compose file uses,
// into map[string]any, []any and string values: block mappings and block
// sequences by indentation (spaces only), "- " items that are scalars,
// mappings or nested blocks, plain, single- and double-quoted scalars, flow
// sequences of scalars ([...]), and "#" comments. Everything else (anchors
// and aliases, block scalars | and >, flow mappings, several documents, tags,
// complex keys, duplicate keys) is an error naming the line, so a template
// change the parser does not understand fails the tests that use it instead
// of being misread. Scalars stay strings: the checks compare text.
func parseYAMLSubset(src []byte) (any, error) {
	var lines []yamlLine
	for i, raw := range strings.Split(string(src), "\n") {
		text := strings.TrimRight(stripComment(raw), " \r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		trimmed := strings.TrimLeft(text, " ")
		if strings.HasPrefix(trimmed, "\t") {
			return nil, fmt.Errorf("line %d: tab in indentation", i+1)
		}
		if trimmed == "---" || trimmed == "..." || strings.HasPrefix(trimmed, "? ") || strings.HasPrefix(trimmed, "%") {
			return nil, fmt.Errorf("line %d: %q is outside the supported YAML subset", i+1, trimmed)
		}
		lines = append(lines, yamlLine{number: i + 1, indent: len(text) - len(trimmed), text: trimmed})
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty document")
	}
	p := &yamlParser{lines: lines}
	v, err := p.block(lines[0].indent)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].number)
	}
	return v, nil
}

type yamlLine struct {
	number, indent int
	text           string
}

type yamlParser struct {
	lines []yamlLine
	i     int
}

func isSeqItem(text string) bool { return text == "-" || strings.HasPrefix(text, "- ") }

// block parses the mapping or sequence whose lines start at indent.
func (p *yamlParser) block(indent int) (any, error) {
	if isSeqItem(p.lines[p.i].text) {
		return p.sequence(indent)
	}
	return p.mapping(indent)
}

func (p *yamlParser) sequence(indent int) (any, error) {
	out := []any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		rest := strings.TrimLeft(strings.TrimPrefix(l.text, "-"), " ")
		switch {
		case rest == "":
			p.i++
			v, err := p.nested(l, indent)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		case yamlKeyEnd(rest) >= 0:
			// A mapping that starts on the item's line: continue it as if
			// its first key were on its own line, indented past the "- ".
			p.lines[p.i] = yamlLine{number: l.number, indent: l.indent + len(l.text) - len(rest), text: rest}
			v, err := p.mapping(p.lines[p.i].indent)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		default:
			v, err := yamlScalar(rest, l.number)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			p.i++
		}
	}
	return out, nil
}

// nested parses the block under line l (indented deeper than indent), or
// returns "" when there is none.
func (p *yamlParser) nested(l yamlLine, indent int) (any, error) {
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return p.block(p.lines[p.i].indent)
	}
	// Compose allows a sequence at the same indent as its key.
	if p.i < len(p.lines) && p.lines[p.i].indent == indent && isSeqItem(p.lines[p.i].text) && !isSeqItem(l.text) {
		return p.sequence(indent)
	}
	return "", nil
}

func (p *yamlParser) mapping(indent int) (any, error) {
	out := map[string]any{}
	for p.i < len(p.lines) && p.lines[p.i].indent == indent && !isSeqItem(p.lines[p.i].text) {
		l := p.lines[p.i]
		end := yamlKeyEnd(l.text)
		if end < 0 {
			return nil, fmt.Errorf("line %d: %q is not key: value", l.number, l.text)
		}
		key, err := yamlScalar(l.text[:end], l.number)
		if err != nil {
			return nil, err
		}
		k := key.(string)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: duplicate key %q", l.number, k)
		}
		value := strings.TrimSpace(l.text[end+1:])
		p.i++
		if value == "" {
			v, err := p.nested(l, indent)
			if err != nil {
				return nil, err
			}
			out[k] = v
			continue
		}
		v, err := yamlScalar(value, l.number)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	if p.i < len(p.lines) && p.lines[p.i].indent > indent {
		return nil, fmt.Errorf("line %d: unexpected indentation", p.lines[p.i].number)
	}
	return out, nil
}

// yamlKeyEnd is the index of the colon that ends a mapping key in text (a
// colon followed by a space or the end of the line, outside quotes), or -1.
func yamlKeyEnd(text string) int {
	var quote byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case (c == '"' || c == '\'') && i == 0:
			quote = c
		case c == '[' && i == 0:
			return -1
		case c == ':' && (i+1 == len(text) || text[i+1] == ' '):
			return i
		}
	}
	return -1
}

// yamlScalar parses a scalar or a flow sequence of scalars.
func yamlScalar(s string, line int) (any, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", nil
	case s[0] == '[':
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("line %d: unterminated flow sequence %q", line, s)
		}
		items, err := splitFlow(s[1:len(s)-1], line)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, it := range items {
			v, err := yamlScalar(it, line)
			if err != nil {
				return nil, err
			}
			if _, ok := v.(string); !ok {
				return nil, fmt.Errorf("line %d: nested flow collections are outside the supported subset", line)
			}
			out = append(out, v)
		}
		return out, nil
	case s[0] == '"':
		var v string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("line %d: double-quoted scalar %s: %v", line, s, err)
		}
		return v, nil
	case s[0] == '\'':
		if len(s) < 2 || s[len(s)-1] != '\'' {
			return nil, fmt.Errorf("line %d: unterminated single-quoted scalar %s", line, s)
		}
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'"), nil
	case strings.ContainsAny(s[:1], "&*!|>{@`"):
		return nil, fmt.Errorf("line %d: %q is outside the supported YAML subset", line, s)
	}
	return s, nil
}

// splitFlow splits the inside of a flow sequence at commas outside quotes.
func splitFlow(s string, line int) ([]string, error) {
	var out []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("line %d: unterminated quote in flow sequence", line)
	}
	if last := strings.TrimSpace(s[start:]); last != "" || len(out) > 0 {
		out = append(out, last)
	}
	return out, nil
}

func TestParseYAMLSubset(t *testing.T) {
	src := `# a comment
name: app
services:
  db:
    image: "postgres:16"   # trailing comment
    environment:
      USER: postgres
      EPOCH: "0"
      QUOTE: 'it''s # not a comment'
    test: ["CMD", "pg_isready -U x", 'a "b"']
    ports:
      - "8080:8080"
      - 127.0.0.1:4370:4370
    depends_on:
      x:
        condition: service_healthy
    items:
    - a
    - k: v
      j: w
volumes:
  pgdata:
`
	got, err := parseYAMLSubset([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "app",
		"services": map[string]any{"db": map[string]any{
			"image":       "postgres:16",
			"environment": map[string]any{"USER": "postgres", "EPOCH": "0", "QUOTE": "it's # not a comment"},
			"test":        []any{"CMD", "pg_isready -U x", `a "b"`},
			"ports":       []any{"8080:8080", "127.0.0.1:4370:4370"},
			"depends_on":  map[string]any{"x": map[string]any{"condition": "service_healthy"}},
			"items":       []any{"a", map[string]any{"k": "v", "j": "w"}},
		}},
		"volumes": map[string]any{"pgdata": ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	for _, bad := range []string{
		"a: 1\na: 2\n",
		"a:\n\tb: 1\n",
		"a: &x 1\nb: *x\n",
		"a: |\n  text\n",
		"a: {b: 1}\n",
		"a: 1\n    b: 2\n",
		"a: [\"x\"\n",
		"---\na: 1\n",
		"just a scalar line\n",
	} {
		if v, err := parseYAMLSubset([]byte(bad)); err == nil {
			t.Errorf("parsed %q as %#v, want an error", bad, v)
		}
	}
}
