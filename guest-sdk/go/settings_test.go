package kubewasm_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	kubewasm "kubewasm.dev/sdk/go"
	"kubewasm.dev/sdk/go/kubewasmtest"
)

type limits struct {
	CPU    string `settings:"required"`
	Memory *int64
}

type tier struct {
	Name  string
	Quota limits
}

func (t *tier) Validate() error {
	if t.Name == "" {
		return kubewasm.FieldError("name", "must not be empty")
	}
	return nil
}

type testSettings struct {
	Tiers          []tier            `json:"tiers"`
	DefaultTier    string            // defaultTier
	Labels         map[string]string `json:"labels"`
	MaxObjects     uint16
	Ratio          float64
	Enabled        bool
	Interval       time.Duration
	Extra          any
	URLPath        string // urlPath
	ignored        string //nolint:unused // unexported fields are not settings
	Skipped        string `json:"-"`
	RequeueAfterMs int64
}

func TestSettingsParse(t *testing.T) {
	s := testSettings{DefaultTier: "bronze", MaxObjects: 10}
	err := kubewasm.ParseSettings(`{"tiers": [{"name": "gold", "quota": {"cpu": "2", "memory": 1024}}],
	  "labels": {"a": "b"}, "ratio": 0.5, "enabled": true, "interval": "1m30s", "extra": [1],
	  "urlPath": "/x", "requeueAfterMs": 2.0}`, &s)
	if err != nil {
		t.Fatal(err)
	}
	mem := int64(1024)
	want := testSettings{
		Tiers: []tier{{Name: "gold", Quota: limits{CPU: "2", Memory: &mem}}}, DefaultTier: "bronze",
		Labels: map[string]string{"a": "b"}, MaxObjects: 10, Ratio: 0.5, Enabled: true,
		Interval: 90 * time.Second, URLPath: "/x", RequeueAfterMs: 2,
	}
	extra := s.Extra
	s.Extra = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
	if list, ok := extra.([]any); !ok || len(list) != 1 {
		t.Errorf("extra = %#v", extra)
	}
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{`:                       "settings: not valid JSON",
		`[]`:                      "settings: must be a JSON object",
		`{"zeta": 1, "alpha": 2}`: "settings.alpha: unknown field (known: defaultTier, enabled, extra, interval, labels, maxObjects, ratio, requeueAfterMs, tiers, urlPath)",
		`{"tiers": [{"name": "a", "quota": {"cpu": "1"}}, {"name": 3}]}`: "settings.tiers[1].name: must be a string",
		`{"tiers": [{"name": "", "quota": {"cpu": "1"}}]}`:               "settings.tiers[0].name: must not be empty",
		`{"tiers": [{"name": "a", "quota": {}}]}`:                        "settings.tiers[0].quota.cpu: missing required field",
		`{"labels": {"b": 1, "a": 2}}`:                                   "settings.labels.a: must be a string",
		`{"maxObjects": -1}`:                                             "settings.maxObjects: must be a whole number, not negative",
		`{"maxObjects": 70000}`:                                          "settings.maxObjects: must be a whole number, not negative",
		`{"requeueAfterMs": 1.5}`:                                        "settings.requeueAfterMs: must be a whole number",
		`{"ratio": "x"}`:                                                 "settings.ratio: must be a number",
		`{"enabled": 1}`:                                                 "settings.enabled: must be true or false",
		`{"interval": 30}`:                                               `settings.interval: must be a duration like "30s" or "1m30s"`,
		`{"tiers": {}}`:                                                  "settings.tiers: must be a list",
		`{"labels": []}`:                                                 "settings.labels: must be an object",
	}
	for text, want := range cases {
		var s testSettings
		err := kubewasm.ParseSettings(text, &s)
		var field *kubewasm.SettingsError
		if !errors.As(err, &field) || err.Error() != want {
			t.Errorf("ParseSettings(%s) = %v\nwant %s", text, err, want)
		}
	}
}

func TestSettingsFromTheHost(t *testing.T) {
	kubewasmtest.NewHost(t).WithSettings(`{"defaultTier": "gold"}`)
	var s testSettings
	if err := kubewasm.Settings(&s); err != nil || s.DefaultTier != "gold" {
		t.Errorf("Settings = %+v, %v", s, err)
	}
}

func TestQuoteJSON(t *testing.T) {
	if got := kubewasm.QuoteJSON(`a "b" <c>`); got != `"a \"b\" <c>"` {
		t.Errorf("QuoteJSON = %s", got)
	}
}
