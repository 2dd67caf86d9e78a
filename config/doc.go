// Package config owns the daemon's own configuration: the typed Config struct
// with its documented defaults, loading it with koanf (defaults < YAML file <
// FLINK_GITOPS_* environment < flags), validating it with every problem
// reported at once, and hot-reloading the file with fsnotify.
package config
