package kycd

import (
	"time"
)

// Stats summarises sessions: how many are in each status, and the failure
// codes of the sessions rejected since a time, most frequent first.
type Stats struct {
	Since           time.Time      `json:"since"`
	SessionsBy      map[Status]int `json:"sessionsByStatus"`
	TopFailureCodes []CodeCount    `json:"topFailureCodes"`
	// FailuresByDay counts the same failure codes by the UTC day the
	// session was rejected, oldest day first, for a chart over time.
	FailuresByDay []DayCodeCount `json:"failuresByDay"`
}

// DayCodeCount is how often a failure code occurred on one day.
type DayCodeCount struct {
	Day   string `json:"day"` // YYYY-MM-DD, UTC
	Code  string `json:"code"`
	Count int    `json:"count"`
}

// CodeCount is how often a failure code occurs.
type CodeCount struct {
	Code  string `json:"code"`
	Count int    `json:"count"`
}
