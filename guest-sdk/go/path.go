package kubewasm

import (
	"encoding/json"
	"strconv"
	"strings"
)

// segment is one step of a path: a key, or an index into a list.
type segment struct {
	key     string
	index   int
	isIndex bool
}

// GetPath follows a dotted path from a JSON value (as decoded into any:
// map[string]any, []any, strings, json.Number or float64, bools, nil) and
// reports whether every step existed.
//
// A path is segments separated by `.`: a key, an index in brackets (`[0]`),
// or a quoted key in brackets (`["app.kubernetes.io/name"]`) for keys with
// dots. A bare segment of digits also indexes a list:
//
//	GetPath(obj, "spec.template.spec.containers[0].image")
//	GetPath(obj, `metadata.labels["app.kubernetes.io/name"]`)
//
// A malformed path (empty segment, unclosed bracket) finds nothing.
func GetPath(value any, path string) (any, bool) {
	segments, ok := parsePath(path)
	if !ok {
		return nil, false
	}
	current := value
	for _, s := range segments {
		switch v := current.(type) {
		case map[string]any:
			if s.isIndex {
				return nil, false
			}
			next, found := v[s.key]
			if !found {
				return nil, false
			}
			current = next
		case []any:
			i := s.index
			if !s.isIndex {
				n, err := strconv.Atoi(s.key)
				if err != nil || !isDigits(s.key) {
					return nil, false
				}
				i = n
			}
			if i < 0 || i >= len(v) {
				return nil, false
			}
			current = v[i]
		default:
			return nil, false
		}
	}
	return current, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func parsePath(path string) ([]segment, bool) {
	var segments []segment
	rest := path
	afterSegment := false
	for rest != "" {
		if strings.HasPrefix(rest, "[") {
			s, tail, ok := parseBracket(rest[1:])
			if !ok {
				return nil, false
			}
			segments = append(segments, s)
			rest = tail
		} else {
			if afterSegment {
				if !strings.HasPrefix(rest, ".") {
					return nil, false
				}
				rest = rest[1:]
				if strings.HasPrefix(rest, "[") {
					continue
				}
			}
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			if end == 0 {
				return nil, false
			}
			segments = append(segments, segment{key: rest[:end]})
			rest = rest[end:]
		}
		afterSegment = true
	}
	return segments, true
}

// parseBracket parses what follows a `[`: `0]` or `"key"]`.
func parseBracket(inner string) (segment, string, bool) {
	if strings.HasPrefix(inner, `"`) {
		// A JSON string up to its closing quote, then `]`.
		for i := 1; i < len(inner); i++ {
			switch inner[i] {
			case '\\':
				i++
			case '"':
				var key string
				if err := json.Unmarshal([]byte(inner[:i+1]), &key); err != nil {
					return segment{}, "", false
				}
				if !strings.HasPrefix(inner[i+1:], "]") {
					return segment{}, "", false
				}
				return segment{key: key}, inner[i+2:], true
			}
		}
		return segment{}, "", false
	}
	end := strings.IndexByte(inner, ']')
	if end < 0 || !isDigits(inner[:end]) {
		return segment{}, "", false
	}
	i, err := strconv.Atoi(inner[:end])
	if err != nil {
		return segment{}, "", false
	}
	return segment{index: i, isIndex: true}, inner[end+1:], true
}

// EscapePointer escapes a key as one JSON Pointer (RFC 6901) segment, for
// JSON patch paths: `~` is `~0` and `/` is `~1`.
//
//	"/metadata/labels/" + EscapePointer("example.com/team")  // /metadata/labels/example.com~1team
func EscapePointer(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
