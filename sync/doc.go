// Package sync owns everything that talks to Git: polling the watched branch,
// immutable in-memory snapshots of a commit, the push webhook receiver,
// commit signature checks, and the writer that commits status to the status
// branch. It shadows the standard library's sync; import that one as gosync.
//
// # Polling
//
// A Source watches one branch. Poll runs one ls-remote (a single ref
// advertisement request); only when the head differs from the current
// snapshot does it fetch that commit with depth 1 into fresh in-memory
// storage and build a new Snapshot. A force push or rewritten history is just
// another head: nothing depends on ancestry. Run polls every Interval with
// jitter, immediately on Wake (the webhook calls it), and with doubling
// backoff up to MaxBackoff while the remote fails; the last good snapshot
// stays current throughout, and Status reports the remote as unavailable
// with the (redacted) error.
//
// # Snapshots
//
// A Snapshot holds the commit's metadata and every file's content and Git
// blob hash in memory, and never changes. FS returns an fs.FS (with
// ReadFile, ReadDir and Stat) to build an in-memory Kustomize file system
// from; BlobHash gives the hash a render cache keys on; ChangedPaths lists
// the files that differ from the previous snapshot (every file for the first).
//
// # Credentials and errors
//
// Auth takes an HTTPS user plus token (from a file or environment variable),
// or an SSH key (optional passphrase) with a known_hosts file; host keys are
// always checked. Errors from remote operations are *Error values that match
// ErrUnavailable, ErrAuth, ErrBranchNotFound, ErrUntrustedCommit or
// ErrConflict with errors.Is; their text has URL user info and every loaded
// secret replaced by [REDACTED], and they do not wrap the original error.
//
// # Signature verification
//
// With Options.Verify set, a new head is accepted only if its signature
// (OpenPGP, or SSH as made by gpg.format=ssh) verifies against a trusted key.
// An untrusted head is not rendered: the previous snapshot stays, Poll
// returns ErrUntrustedCommit saying why, Status.Rejected names the commit,
// and the same head is not fetched again.
//
// # Webhooks
//
// WebhookHandler picks the provider from a delivery's headers and checks it
// against that provider's secret only: GitHub (X-Hub-Signature-256), Gitea
// (X-Gitea-Signature), GitLab (X-Gitlab-Token) or generic HMAC-SHA256, in
// constant time. It reads the body under a size cap and a deadline, bounds
// the bodies read at once, ignores a delivery seen within the replay window
// (by delivery id and, for the forges, by body hash, in a bounded set), and
// rate-limits authenticated deliveries only, so junk cannot make a genuine
// one wait. On a push to the watched branch it calls the wake function; it
// never decides what changed: the poll does. Other events (pull requests)
// go to callbacks registered with On.
//
// # Status branch
//
// StatusWriter commits files to an orphan status branch, one commit per
// Write, merged per path: a path mapped to content is written, a path mapped
// to nil is deleted, all other files stay. Two daemons writing different
// resources therefore keep each other's files. A Write that changes nothing
// makes no commit. Pushes are never forced: the push requires the remote to
// still be at the tip the commit was built on, and on rejection Write
// fetches the new tip, re-applies its files and retries with bounded,
// jittered backoff.
package sync
