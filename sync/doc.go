// Package sync owns everything that talks to Git: polling the watched branch,
// immutable in-memory snapshots of a commit, the push webhook receiver,
// commit signature checks, and the writer that commits status to the status
// branch. It shadows the standard library's sync; import that one as gosync.
package sync
