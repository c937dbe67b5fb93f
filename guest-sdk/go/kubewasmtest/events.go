package kubewasmtest

import (
	"encoding/json"
	"reflect"
	"testing"

	kubewasm "kubewasm.dev/sdk/go"
)

// Object parses an object from JSON text, failing the test if it is not one.
func Object(t testing.TB, text string) *kubewasm.Object {
	t.Helper()
	obj, err := kubewasm.ParseObject(text)
	if err != nil {
		t.Fatalf("kubewasmtest.Object: %v", err)
	}
	return obj
}

// Applied is an `applied` event for obj, its kind guessed from the object.
func Applied(obj *kubewasm.Object) kubewasm.Event { return kubewasm.NewEvent(kubewasm.Applied, obj) }

// Deleted is a `deleted` event for obj.
func Deleted(obj *kubewasm.Object) kubewasm.Event { return kubewasm.NewEvent(kubewasm.Deleted, obj) }

// Resync is a `resync` event for obj.
func Resync(obj *kubewasm.Object) kubewasm.Event { return kubewasm.NewEvent(kubewasm.Resync, obj) }

// Finalizing is a `finalizing` event for obj.
func Finalizing(obj *kubewasm.Object) kubewasm.Event {
	return kubewasm.NewEvent(kubewasm.Finalizing, obj)
}

// OutcomeJSON is the outcome in `kubewasm test`'s expected.json form,
// decoded, for comparing with an expected value built the same way.
func OutcomeJSON(t testing.TB, outcome kubewasm.Outcome) any {
	t.Helper()
	return roundTrip(t, outcome)
}

// JSON decodes JSON text, for expected values: JSON(t, `{"intents": [], "requeueAfterMs": null}`).
func JSON(t testing.TB, text string) any {
	t.Helper()
	var value any
	if err := json.Unmarshal([]byte(text), &value); err != nil {
		t.Fatalf("kubewasmtest.JSON: %v", err)
	}
	return value
}

func roundTrip(t testing.TB, value any) any {
	t.Helper()
	data, err := json.Marshal(value)
	if err != nil {
		t.Fatalf("kubewasmtest: %v", err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("kubewasmtest: %v", err)
	}
	return out
}

// AssertOutcome fails the test unless outcome, in expected.json form,
// equals the JSON text want (compared as JSON values).
//
//	kubewasmtest.AssertOutcome(t, out, `{"intents": [], "requeueAfterMs": 2000}`)
func AssertOutcome(t testing.TB, outcome kubewasm.Outcome, want string) {
	t.Helper()
	got := OutcomeJSON(t, outcome)
	if !reflect.DeepEqual(got, JSON(t, want)) {
		pretty, _ := json.MarshalIndent(got, "", "  ")
		t.Fatalf("outcome differs\n got: %s\nwant: %s", pretty, want)
	}
}
