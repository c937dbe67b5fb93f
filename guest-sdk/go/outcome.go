package kubewasm

import (
	"encoding/json"
	"time"
)

// Outcome is a successful reconcile: the intents, made in order, and
// optionally a request to be called again after a delay even if the object
// does not change. The zero Outcome writes nothing.
//
//	return kubewasm.NewOutcome(apply, event).RequeueAfter(30 * time.Second), nil
type Outcome struct {
	Intents []Intent
	requeue *time.Duration
}

// NewOutcome is an outcome with intents (nil intents are skipped).
func NewOutcome(intents ...Intent) Outcome {
	var o Outcome
	o.Add(intents...)
	return o
}

// Add appends intents; nil ones are skipped.
func (o *Outcome) Add(intents ...Intent) {
	for _, intent := range intents {
		if intent != nil {
			o.Intents = append(o.Intents, intent)
		}
	}
}

// With is the outcome with intents appended.
func (o Outcome) With(intents ...Intent) Outcome {
	o.Intents = append([]Intent(nil), o.Intents...)
	o.Add(intents...)
	return o
}

// RequeueAfter is the outcome asking to be called again after delay
// (milliseconds precision; a negative delay counts as zero).
func (o Outcome) RequeueAfter(delay time.Duration) Outcome {
	if delay < 0 {
		delay = 0
	}
	o.requeue = &delay
	return o
}

// Requeue is the requested delay, and whether there is one.
func (o Outcome) Requeue() (time.Duration, bool) {
	if o.requeue == nil {
		return 0, false
	}
	return *o.requeue, true
}

// IsEmpty reports whether the outcome writes nothing and asks for no requeue.
func (o Outcome) IsEmpty() bool { return len(o.Intents) == 0 && o.requeue == nil }

func (o Outcome) requeueMs() (uint64, bool) {
	if o.requeue == nil {
		return 0, false
	}
	return uint64(o.requeue.Milliseconds()), true
}

// MarshalJSON writes the outcome in `kubewasm test`'s expected.json form:
// `{"intents": [{"type": "apply", ...}], "requeueAfterMs": 1500}`.
func (o Outcome) MarshalJSON() ([]byte, error) {
	intents := make([]map[string]any, 0, len(o.Intents))
	for _, intent := range o.Intents {
		intents = append(intents, intent.intentJSON())
	}
	var requeue any
	if ms, ok := o.requeueMs(); ok {
		requeue = ms
	}
	return json.Marshal(map[string]any{"intents": intents, "requeueAfterMs": requeue})
}
