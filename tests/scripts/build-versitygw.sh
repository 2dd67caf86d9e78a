#!/usr/bin/env bash
# build-versitygw.sh builds the test bed's S3-compatible object store from
# source via the Go module proxy:
#
#   versitygw   from github.com/versity/versitygw/cmd/versitygw (VERSITYGW_VERSION)
#
# into ${FLINK_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-gitops}/versitygw-<v>/versitygw.
# tests/testbed/s3 runs it with its posix backend (a temp directory) on
# 127.0.0.1. Its go.mod has no replace directives, so `go install pkg@version`
# builds it as published.
#
# Idempotent (skips the build when the binary answers --version) and safe to
# run concurrently (flock). Prints the binary's path on the last line of stdout.
set -euo pipefail

VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"

CACHE_ROOT="${FLINK_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-gitops}"
DIR="$CACHE_ROOT/versitygw-${VERSITYGW_VERSION}"
BIN="$DIR/versitygw"

log() { printf '%s build-versitygw: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

ready() { [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; }

if ready; then
	echo "$BIN"
	exit 0
fi
if ! command -v go >/dev/null; then
	log "go is not on PATH; install Go (see go.mod for the version) and retry"
	exit 1
fi
command -v flock >/dev/null || { log "flock (util-linux) is not on PATH"; exit 1; }

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
log "waiting for lock $DIR/.lock"
flock 9
if ready; then
	echo "$BIN"
	exit 0
fi

export GOFLAGS="-buildvcs=false"
export GOWORK=off
export CGO_ENABLED=0
t0=$(date +%s)
log "building github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
rm -rf "$DIR/bin.tmp"
GOBIN="$DIR/bin.tmp" nice -n 10 go install -trimpath -ldflags="-s -w" \
	"github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
mv "$DIR/bin.tmp/versitygw" "$BIN"
rm -rf "$DIR/bin.tmp"
ready || { log "$BIN does not answer --version"; exit 1; }
log "built in $(($(date +%s) - t0))s ($(du -h "$BIN" | cut -f1)): $("$BIN" --version 2>&1 | head -n 1)"
echo "$BIN"
