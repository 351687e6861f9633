package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/kycd/kycd/internal/requestid"
)

// logLevels are the values of --log-level.
var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

// checkLogging checks --log-format and --log-level.
func (c *config) checkLogging() error {
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: want text or json", c.LogFormat)
	}
	if _, ok := logLevels[strings.ToLower(c.LogLevel)]; !ok {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// logger is the log of serve and emulator, on stderr in the configured
// format, from the configured level up; a line logged while serving a
// request names the request's id (requestid).
func (e *env) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[strings.ToLower(e.cfg.LogLevel)]}
	var h slog.Handler
	if e.jsonLogs() {
		opts.ReplaceAttr = durationsInSeconds
		h = slog.NewJSONHandler(e.stderr, opts)
	} else {
		h = slog.NewTextHandler(e.stderr, opts)
	}
	return slog.New(requestid.Handler(h))
}

// jsonLogs reports whether stderr is a JSON log stream, where nothing
// else may be written: no banner, no secret, no plain-text error.
func (e *env) jsonLogs() bool { return e.cfg.LogFormat == "json" }

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
