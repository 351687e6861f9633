package main

import (
	"log/slog"
)

// logger is the log of serve and emulator, on stderr in the configured
// format.
func (e *env) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if e.cfg.LogFormat == "json" {
		opts.ReplaceAttr = durationsInSeconds
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

// durationsInSeconds writes durations as seconds, a float, as Prometheus
// and most log pipelines count them: slog's JSON handler would write
// nanoseconds, a unit no reader guesses. The text format keeps Go's
// human spelling (1.5s, 250ms).
func durationsInSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}
