// Package daemon is flink-gitops's run loop: it wires the config, the Git
// source, the renderer, the lifecycle reconciler and the status writer,
// and serves metrics and health.
package daemon

import "github.com/flink-gitops/flink-gitops/lifecycle"

// Key and StatusPath are the lifecycle package's.
var (
	Key        = lifecycle.Key
	StatusPath = lifecycle.StatusPath
)

// StatusFiles renders the status branch (see lifecycle.StatusFiles).
var StatusFiles = lifecycle.StatusFiles

// Summary is lifecycle.Summary.
type Summary = lifecycle.Summary

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
