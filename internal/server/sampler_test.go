package server

import (
	"testing"
	"time"
)

// A line a second at most, each counting the events it stands for.
func TestSamplerOneLineASecond(t *testing.T) {
	s := &sampler{every: time.Second}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var lines []int
	for i := range 1000 {
		if n := s.sample(t0.Add(time.Duration(i) * 3 * time.Millisecond)); n > 0 { // 3 s in all
			lines = append(lines, n)
		}
	}
	total := 0
	for _, n := range lines {
		total += n
	}
	if len(lines) != 3 || lines[0] != 1 || total > 1000 {
		t.Fatalf("1000 events over 3 s logged %v, want 3 lines, the first standing for 1", lines)
	}
}
