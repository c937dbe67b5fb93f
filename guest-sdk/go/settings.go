package kubewasm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"
)

// SettingsError is a settings document the plugin refuses. Field is the
// path of the offending field (`settings.labels[1]`), Problem what is
// wrong with it; the message is `settings.labels[1]: must be a string`.
type SettingsError struct {
	Field   string
	Problem string
}

func (e *SettingsError) Error() string { return e.Field + ": " + e.Problem }

// FieldError is a SettingsError for a Validate method to return: field is
// relative to the struct being validated (ParseSettings prefixes its path).
func FieldError(field, format string, args ...any) error {
	return &SettingsError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validator is a settings struct (or a nested one) with refinements
// ParseSettings cannot check from types alone. ParseSettings calls
// Validate once the fields are filled; return a FieldError naming the
// field.
type Validator interface {
	Validate() error
}

// Settings parses the host's settings document into `into` (see
// ParseSettings).
func Settings(into any) error { return ParseSettings(RawSettings(), into) }

// ParseSettings parses a settings document (JSON text) into `into`, a
// pointer to a struct. Fill the struct with defaults first: fields whose
// key is absent keep their value.
//
// JSON keys are the `json` tag's name, else the field name in lowerCamelCase
// (RequeueAfterMs is requeueAfterMs). Unknown keys are refused; a field
// tagged `settings:"required"` must be present. Checked types: string,
// bool, ints and uints (a whole number; 2.0 counts), floats, time.Duration
// (a string like "30s"), slices, maps with string keys, nested structs,
// pointers (null allowed) and `any`. Every error is a *SettingsError naming
// the first offending field:
//
//	settings.requiredKeys[1]: must be a string
func ParseSettings(text string, into any) error {
	target := reflect.ValueOf(into)
	if target.Kind() != reflect.Pointer || target.IsNil() || target.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("kubewasm.ParseSettings: want a pointer to a struct, got %T", into))
	}
	raw, err := decodeJSON([]byte(text))
	if err != nil {
		return &SettingsError{Field: "settings", Problem: "not valid JSON"}
	}
	object, ok := raw.(map[string]any)
	if !ok {
		return &SettingsError{Field: "settings", Problem: "must be a JSON object"}
	}
	return decodeStruct(object, target.Elem(), "settings")
}

// QuoteJSON is s as a JSON string, for messages that quote a value.
func QuoteJSON(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// settingsKey is a struct field's JSON key, or "" if it is skipped.
func settingsKey(field reflect.StructField) string {
	if !field.IsExported() {
		return ""
	}
	if tag, ok := field.Tag.Lookup("json"); ok {
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			return ""
		}
		if name != "" {
			return name
		}
	}
	return lowerCamel(field.Name)
}

// lowerCamel lower-cases a leading upper-case run: Name→name, URLPath→urlPath, ID→id.
func lowerCamel(name string) string {
	runes := []rune(name)
	n := 0
	for n < len(runes) && unicode.IsUpper(runes[n]) {
		n++
	}
	if n > 1 && n < len(runes) {
		n-- // the last capital starts the next word
	}
	for i := 0; i < n; i++ {
		runes[i] = unicode.ToLower(runes[i])
	}
	return string(runes)
}

func decodeStruct(raw map[string]any, v reflect.Value, path string) error {
	t := v.Type()
	keys := map[string]int{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		if key := settingsKey(t.Field(i)); key != "" {
			keys[key] = i
			known = append(known, key)
		}
	}
	sort.Strings(known)
	var unknown []string
	for key := range raw {
		if _, ok := keys[key]; !ok {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return &SettingsError{
			Field:   path + "." + unknown[0],
			Problem: "unknown field (known: " + strings.Join(known, ", ") + ")",
		}
	}
	for i := 0; i < t.NumField(); i++ {
		field := t.Field(i)
		key := settingsKey(field)
		if key == "" {
			continue
		}
		value, present := raw[key]
		if !present {
			if field.Tag.Get("settings") == "required" {
				return &SettingsError{Field: path + "." + key, Problem: "missing required field"}
			}
			continue
		}
		if err := decodeValue(value, v.Field(i), path+"."+key); err != nil {
			return err
		}
	}
	if validator, ok := v.Addr().Interface().(Validator); ok {
		if err := validator.Validate(); err != nil {
			var field *SettingsError
			if errors.As(err, &field) {
				return &SettingsError{Field: path + "." + field.Field, Problem: field.Problem}
			}
			return &SettingsError{Field: path, Problem: err.Error()}
		}
	}
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func mismatch(path, want string) error {
	return &SettingsError{Field: path, Problem: "must be " + want}
}

func decodeValue(raw any, v reflect.Value, path string) error {
	if v.Type() == durationType {
		text, ok := raw.(string)
		d, err := time.ParseDuration(text)
		if !ok || err != nil {
			return mismatch(path, `a duration like "30s" or "1m30s"`)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.NumMethod() != 0 {
			panic(fmt.Sprintf("kubewasm.ParseSettings: unsupported type %s at %s", v.Type(), path))
		}
		if raw != nil {
			v.Set(reflect.ValueOf(raw))
		} else {
			v.SetZero()
		}
	case reflect.Pointer:
		if raw == nil {
			v.SetZero()
			return nil
		}
		elem := reflect.New(v.Type().Elem())
		if err := decodeValue(raw, elem.Elem(), path); err != nil {
			return err
		}
		v.Set(elem)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return mismatch(path, "a string")
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return mismatch(path, "true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := wholeNumber(raw)
		if !ok || v.OverflowInt(n) {
			return mismatch(path, "a whole number")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := wholeNumber(raw)
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			return mismatch(path, "a whole number, not negative")
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		number, ok := raw.(json.Number)
		f, err := number.Float64()
		if !ok || err != nil || math.IsInf(f, 0) {
			return mismatch(path, "a number")
		}
		v.SetFloat(f)
	case reflect.Slice:
		list, ok := raw.([]any)
		if !ok {
			return mismatch(path, "a list")
		}
		out := reflect.MakeSlice(v.Type(), len(list), len(list))
		for i, item := range list {
			if err := decodeValue(item, out.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(out)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			panic(fmt.Sprintf("kubewasm.ParseSettings: map keys must be strings at %s", path))
		}
		object, ok := raw.(map[string]any)
		if !ok {
			return mismatch(path, "an object")
		}
		out := reflect.MakeMapWithSize(v.Type(), len(object))
		keys := make([]string, 0, len(object))
		for key := range object {
			keys = append(keys, key)
		}
		sort.Strings(keys) // the first offending key is reported, always the same one
		for _, key := range keys {
			item := reflect.New(v.Type().Elem()).Elem()
			if err := decodeValue(object[key], item, path+"."+key); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), item)
		}
		v.Set(out)
	case reflect.Struct:
		object, ok := raw.(map[string]any)
		if !ok {
			return mismatch(path, "an object")
		}
		return decodeStruct(object, v, path)
	default:
		panic(fmt.Sprintf("kubewasm.ParseSettings: unsupported type %s at %s", v.Type(), path))
	}
	return nil
}
