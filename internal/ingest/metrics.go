package ingest

import (
	"time"
)

// Metrics observe the write path; nil funcs are skipped.
type Metrics struct {
	AppendBatch    func(n int)                     // entries per log commit
	ProjectBatch   func(n int, took time.Duration) // entries per projection transaction
	EventProjected func(eventType, outcome string) // each projected event with its outcome
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
