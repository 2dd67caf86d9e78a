package config

import (
	"io"
	"log/slog"
	"strings"

	"k8s.io/klog/v2"
)

// ParseLevel turns a log.level value into a slog level; unknown values
// (rejected by Validate) mean info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// NewLogger builds the process logger for a Log section. Its level is read
// from level on every call, so a reload that sets level changes it live.
// client-go's klog output is routed into the same logger.
func NewLogger(w io.Writer, l Log, level *slog.LevelVar) *slog.Logger {
	level.Set(ParseLevel(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if l.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	logger := slog.New(h)
	klog.SetSlogLogger(logger.With("component", "client-go"))
	return logger
}

// FollowLogLevel keeps level in step with the store's log.level.
func FollowLogLevel(s *Store, level *slog.LevelVar) (unsubscribe func()) {
	return s.Subscribe(func(_, cur *Config) { level.Set(ParseLevel(cur.Log.Level)) })
}
