#!/usr/bin/env bash
# build-kustomize.sh builds the kustomize CLI (for the render benchmark's
# side-by-side comparison) from the Go module proxy into
# ${FLINK_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-gitops}/kustomize-<v>/bin.
# It never touches our go.mod: `go install pkg@version` builds in module mode
# outside any module. Idempotent and safe to run concurrently (flock).
# Prints the binary's path on the last line of stdout.
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
CACHE_ROOT="${FLINK_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-gitops}"
DIR="$CACHE_ROOT/kustomize-${KUSTOMIZE_VERSION}"
BIN="$DIR/bin/kustomize"

log() { printf '%s build-kustomize: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if ! command -v flock >/dev/null; then
	log "installing util-linux (flock)"
	apt-get update -qq && apt-get install -y -qq util-linux >&2
fi
if ! command -v go >/dev/null; then
	log "go is required (the project's toolchain)"; exit 1
fi

mkdir -p "$DIR/bin"
exec 9>"$DIR/.lock"
flock 9
if [ -x "$BIN" ] && "$BIN" version 2>/dev/null | grep -q "${KUSTOMIZE_VERSION}"; then
	echo "$BIN"; exit 0
fi
log "building kustomize ${KUSTOMIZE_VERSION} into $DIR/bin"
(cd "$DIR" && GOFLAGS=-mod=mod GOBIN="$DIR/bin" GOWORK=off \
	go install -ldflags "-X sigs.k8s.io/kustomize/api/provenance.version=${KUSTOMIZE_VERSION}" \
	"sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION}") >&2
"$BIN" version >&2
echo "$BIN"
