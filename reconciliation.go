package kycd

import "time"

// States of a reconciliation run.
const (
	ReconcileRunning     = "running"
	ReconcileDone        = "done"
	ReconcileFailed      = "failed"      // finished, but a user or session could not be checked (Errors)
	ReconcileInterrupted = "interrupted" // stopped (shutdown, the run's deadline); the next run resumes after Cursor
)

// Reconciliation is one run of reconciliation against Ralio's REST API:
// what it checked, what it found missing and repaired, what failed.
type Reconciliation struct {
	ID         string    `json:"id"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	State      string    `json:"state"`
	Users      int       `json:"usersChecked"`
	Checked    int       `json:"sessionsChecked"`
	// Drift counts sessions whose state in Ralio differed from kycd's.
	Drift int `json:"drift"`
	// Repaired are the sessions that got transitions kycd had missed.
	Repaired []string `json:"repaired"`
	Errors   []string `json:"errors"`
	// Cursor is the last user done, in id order: an interrupted run's
	// successor starts after it.
	Cursor string `json:"-"`
}
