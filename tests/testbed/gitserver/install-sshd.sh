#!/usr/bin/env bash
# Installs Debian's openssh-server (sshd) and openssh-client (ssh-keygen) if
# missing, for the test bed's SSH git server. Idempotent and safe to run
# concurrently (flock). The service is not started: tests run their own sshd.
set -euo pipefail
if command -v /usr/sbin/sshd >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; then
	exit 0
fi
lock="${TMPDIR:-/tmp}/flink-gitops-install-sshd.lock"
exec 9>"$lock"
flock 9
if command -v /usr/sbin/sshd >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1; then
	exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# policy-rc.d keeps the package from starting the system sshd.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
	$sudo chmod +x /usr/sbin/policy-rc.d
	trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
