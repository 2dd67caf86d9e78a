#!/usr/bin/env bash
# Installs the programs the git test bed runs, from Debian packages, if any
# is missing: git (git http-backend), openssh-server (sshd), openssh-client
# (ssh, ssh-keygen) and gnupg (gpg, for signed commits). Idempotent and safe
# to run concurrently (flock). No service is started: tests run their own sshd.
set -euo pipefail
have_all() {
	command -v git >/dev/null 2>&1 && [ -x /usr/sbin/sshd ] &&
		command -v ssh-keygen >/dev/null 2>&1 && command -v gpg >/dev/null 2>&1
}
have_all && exit 0
lock="${TMPDIR:-/tmp}/flink-gitops-install-tools.lock"
exec 9>"$lock"
flock 9
have_all && exit 0
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
$sudo apt-get install -y -qq --no-install-recommends git openssh-server openssh-client gnupg >/dev/null
