package main

import (
	"path"
	"regexp"
	"strconv"
	"strings"

	kubewasm "kubewasm.dev/sdk/go"
)

// Settings say which tier each Namespace gets.
//
//	{"rules": [{"tier": "gold", "namespaces": ["prod-*", "payments"]}],
//	 "defaultTier": "bronze", "exclude": ["kube-*"]}
type Settings struct {
	// Label is the label key the tier is written to.
	Label string
	// Rules are tried in order; the first whose glob matches the
	// Namespace's name gives its tier.
	Rules []Rule
	// DefaultTier is the tier of a Namespace no rule matches; "" leaves
	// such Namespaces alone.
	DefaultTier string
	// Exclude lists globs of Namespaces never labelled.
	Exclude []string
}

// Rule gives Namespaces matching one of its globs a tier.
type Rule struct {
	Tier       string   `settings:"required"`
	Namespaces []string `settings:"required"`
}

func defaultSettings() Settings {
	return Settings{Label: "kubewasm.dev/quota-tier", DefaultTier: "standard", Exclude: []string{"kube-*"}}
}

func parseSettings(text string) (Settings, error) {
	s := defaultSettings()
	return s, kubewasm.ParseSettings(text, &s)
}

var (
	labelName   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelPrefix = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

func validGlob(glob string) bool {
	_, err := path.Match(glob, "")
	return glob != "" && err == nil
}

// Validate checks what the types cannot: label syntax, tiers that are
// label values, globs that parse.
func (s *Settings) Validate() error {
	prefix, name, hasPrefix := strings.Cut(s.Label, "/")
	if !hasPrefix {
		prefix, name = "", s.Label
	}
	if !labelName.MatchString(name) || (hasPrefix && (len(prefix) > 253 || !labelPrefix.MatchString(prefix))) {
		return kubewasm.FieldError("label", "%s is not a label key", kubewasm.QuoteJSON(s.Label))
	}
	if s.DefaultTier != "" && !labelName.MatchString(s.DefaultTier) {
		return kubewasm.FieldError("defaultTier", "%s is not a label value", kubewasm.QuoteJSON(s.DefaultTier))
	}
	for i, glob := range s.Exclude {
		if !validGlob(glob) {
			return kubewasm.FieldError("exclude["+strconv.Itoa(i)+"]", "%s is not a name glob", kubewasm.QuoteJSON(glob))
		}
	}
	return nil
}

// Validate checks one rule (its field is reported under settings.rules[i]).
func (r *Rule) Validate() error {
	if !labelName.MatchString(r.Tier) {
		return kubewasm.FieldError("tier", "%s is not a label value", kubewasm.QuoteJSON(r.Tier))
	}
	if len(r.Namespaces) == 0 {
		return kubewasm.FieldError("namespaces", "must name at least one Namespace glob")
	}
	for i, glob := range r.Namespaces {
		if !validGlob(glob) {
			return kubewasm.FieldError("namespaces["+strconv.Itoa(i)+"]", "%s is not a name glob", kubewasm.QuoteJSON(glob))
		}
	}
	return nil
}

// tierOf is the tier of the Namespace called name, "" for none.
func (s Settings) tierOf(name string) string {
	for _, glob := range s.Exclude {
		if ok, _ := path.Match(glob, name); ok {
			return ""
		}
	}
	for _, rule := range s.Rules {
		for _, glob := range rule.Namespaces {
			if ok, _ := path.Match(glob, name); ok {
				return rule.Tier
			}
		}
	}
	return s.DefaultTier
}
