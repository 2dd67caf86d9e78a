#!/usr/bin/env bash
# Builds and caches everything the test bed runs: kube-apiserver, etcd,
# Gitea and the versitygw S3 server (Go module proxy), Flink jars and the
# test job (Maven Central), sshd (Debian). Each step is idempotent and keyed by version under
# ${FLINK_GITOPS_CACHE:-~/.cache/flink-gitops}, so a warm run takes seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
logdir="${FLINK_GITOPS_CACHE:-$HOME/.cache/flink-gitops}/logs"
mkdir -p "$logdir"

steps=(
  "kube:$here/build-kube.sh"
  "flink:$here/build-flink.sh"
  "tools:$root/tests/testbed/gitserver/install-tools.sh"
  "gitea:$here/build-gitea.sh"
  "versitygw:$here/build-versitygw.sh"
)

# The Go build (CPU) and the Maven resolution (network) overlap well.
pids=()
for s in "${steps[@]}"; do
  name="${s%%:*}" script="${s#*:}"
  if [[ ! -f "$script" ]]; then
    echo "testbed: missing $script" >&2
    exit 1
  fi
  ( bash "$script" >"$logdir/$name.log" 2>&1 ) &
  pids+=("$!:$name")
done
fail=0
for p in "${pids[@]}"; do
  pid="${p%%:*}" name="${p#*:}"
  if wait "$pid"; then
    echo "testbed: $name ready ($(tail -n 1 "$logdir/$name.log"))"
  else
    echo "testbed: $name FAILED; last lines of $logdir/$name.log:" >&2
    tail -n 40 "$logdir/$name.log" >&2
    fail=1
  fi
done
exit $fail
