package ingest

import (
	"time"
)

// Metrics observe the write path; nil funcs are skipped.
type Metrics struct {
	AppendBatch    func(n int)                     // entries per log commit
	ProjectBatch   func(n int, took time.Duration) // entries per projection transaction
	EventProjected func(eventType, outcome string) // each projected event with its outcome
	// EventClockSkewed counts each projected event stamped more than the
	// maximum clock skew after its receipt.
	EventClockSkewed func()
}

func (m Metrics) observeBatch(n int, took time.Duration) {
	if m.ProjectBatch != nil {
		m.ProjectBatch(n, took)
	}
}

func (m Metrics) count(typ, outcome string) {
	if m.EventProjected != nil {
		m.EventProjected(typ, outcome)
	}
}

func (m Metrics) clockSkewed() {
	if m.EventClockSkewed != nil {
		m.EventClockSkewed()
	}
}
