package kycd

import (
	"strconv"
	"time"
)

// Stats summarises sessions: how many are in each status, and the failure
// codes of the sessions rejected since a time, most frequent first.
type Stats struct {
	// Window is how far back from now Since is (FormatStatsWindow): the
	// window asked for, or DefaultStatsWindow.
	Window          string         `json:"window"`
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

// DefaultStatsWindow is how far back rejected sessions count towards the
// failure codes of Stats unless a window is asked for: the API's, the
// CLI's and (through the API's answer) the dashboard's default.
const DefaultStatsWindow = 7 * 24 * time.Hour

// ParseStatsWindow reads a window of Stats: a positive Go duration such as
// 24h or 90m; "" is DefaultStatsWindow; anything else is EINVALID.
func ParseStatsWindow(s string) (time.Duration, error) {
	if s == "" {
		return DefaultStatsWindow, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, Errorf(EINVALID, "window must be a positive duration, e.g. 24h")
	}
	return d, nil
}

// CheckStatsWindow says whether d may be a window of Stats: EINVALID
// unless it is positive.
func CheckStatsWindow(d time.Duration) error {
	if d <= 0 {
		return Errorf(EINVALID, "window must be a positive duration, e.g. 24h")
	}
	return nil
}

// FormatStatsWindow writes a window as ParseStatsWindow reads it: whole
// hours as e.g. 168h (how the dashboard names its windows), anything else
// as Go writes a duration.
func FormatStatsWindow(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// StatsSince is the start of the window d that ends at now.
func StatsSince(now time.Time, d time.Duration) time.Time { return now.Add(-d).UTC() }
