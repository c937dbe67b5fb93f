package kubewasmtest

import (
	"fmt"
	"strings"
)

// parseSelector parses a Kubernetes label selector: `a=b`, `a==b`, `a!=b`,
// `a`, `!a`, `a in (x,y)`, `a notin (x)`, joined by commas.
func parseSelector(selector string) (func(map[string]string) bool, error) {
	var requirements []func(map[string]string) bool
	for _, req := range splitRequirements(selector) {
		req = strings.TrimSpace(req)
		if req == "" {
			continue
		}
		r, err := parseRequirement(req)
		if err != nil {
			return nil, fmt.Errorf("label selector %q: %w", selector, err)
		}
		requirements = append(requirements, r)
	}
	return func(labels map[string]string) bool {
		for _, r := range requirements {
			if !r(labels) {
				return false
			}
		}
		return true
	}, nil
}

// splitRequirements splits at commas outside parentheses.
func splitRequirements(selector string) []string {
	var parts []string
	depth, start := 0, 0
	for i, r := range selector {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, selector[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, selector[start:])
}

func parseRequirement(req string) (func(map[string]string) bool, error) {
	fields := strings.Fields(req)
	if len(fields) >= 3 && (fields[1] == "in" || fields[1] == "notin") {
		key, in := fields[0], fields[1] == "in"
		rest := strings.TrimSpace(strings.Join(fields[2:], " "))
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			return nil, fmt.Errorf("%q: values must be in parentheses", req)
		}
		values := map[string]bool{}
		for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
			values[strings.TrimSpace(v)] = true
		}
		return func(labels map[string]string) bool {
			value, ok := labels[key]
			return (ok && values[value]) == in
		}, nil
	}
	for _, op := range []string{"!=", "==", "="} {
		if key, value, found := strings.Cut(req, op); found {
			key, value = strings.TrimSpace(key), strings.TrimSpace(value)
			if key == "" {
				return nil, fmt.Errorf("%q: no key", req)
			}
			equal := op != "!="
			return func(labels map[string]string) bool {
				actual, ok := labels[key]
				return (ok && actual == value) == equal
			}, nil
		}
	}
	if key, negated := strings.CutPrefix(req, "!"); negated {
		key = strings.TrimSpace(key)
		return func(labels map[string]string) bool { _, ok := labels[key]; return !ok }, nil
	}
	return func(labels map[string]string) bool { _, ok := labels[req]; return ok }, nil
}
