#!/usr/bin/env bash
# build-flink.sh assembles the test bed's Flink for each requested version
# (default: FLINK_VERSIONS="1.18.1 1.20.5 2.2.1 2.3.0", the ones make test
# runs; "all" for every version, 1.18 … 2.3) from Maven Central, since
# flink-dist is not published there:
#
#   <cache>/flink-<v>/lib/*.jar              what flink-dist ships in lib/
#                                            (tests/flink/runtime/pom.xml)
#   <cache>/flink-<v>/testjob-<hash>.jar     the stateful test job built against
#                                            <v>, keyed by a hash of its sources
#   <cache>/flink-<v>/conf/log4j-console.properties
#                                            the logging config the JVMs use
#   <cache>/flink-<v>/build-times.log        wall time of each build
#
# where <cache> is ${FLINK_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-gitops}.
# Idempotent (a finished part is only checked, not rebuilt) and safe to run
# concurrently (flock per version). Installs Maven and a JDK with apt-get when
# they are missing. For each version it prints three lines on stdout:
#
#   FLINK_VERSION=<v>
#   FLINK_LIB=<dir>
#   FLINK_TESTJOB=<jar>
#
# MAVEN_REPO_LOCAL, when set, is passed as -Dmaven.repo.local (default ~/.m2).
#
# Usage: build-flink.sh [VERSION...|all]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
MVN_PROJECT="$REPO/tests/flink"
LOG4J_SRC="$REPO/tests/testbed/flink/log4j-console.properties"
CACHE_ROOT="${FLINK_GITOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flink-gitops}"

# Every version the test bed runs (flinktb.AllVersions; a Go test keeps the two
# lists equal), and the ones make testbed builds: those make test runs.
ALL_VERSIONS="1.18.1 1.19.3 1.20.5 2.0.2 2.1.3 2.2.1 2.3.0"
DEFAULT_VERSIONS="1.18.1 1.20.5 2.2.1 2.3.0"

if (($#)); then VERSIONS=("$@"); else read -r -a VERSIONS <<<"${FLINK_VERSIONS:-$DEFAULT_VERSIONS}"; fi
if [ "${VERSIONS[*]}" = all ]; then read -r -a VERSIONS <<<"$ALL_VERSIONS"; fi

log() { printf '%s build-flink: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

need_tools() {
	local missing=()
	command -v flock >/dev/null || missing+=(util-linux)
	command -v sha256sum >/dev/null || missing+=(coreutils)
	command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
	command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
	command -v mvn >/dev/null || missing+=(maven)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		local sudo=()
		[ "$(id -u)" = 0 ] || sudo=(sudo)
		"${sudo[@]}" apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
	fi
}

# hash_of FILE...: a short content hash of the given files (paths relative to
# the Maven project, so the hash does not depend on where the repo is).
hash_of() {
	(cd "$MVN_PROJECT" && sha256sum "$@" | sha256sum | cut -c1-16)
}

testjob_files() {
	(cd "$MVN_PROJECT" && find pom.xml testjob -path '*/target' -prune -o -type f -print | LC_ALL=C sort)
}

# flink-container is published for few patch releases: 1.18.0, 1.20.0, 2.0.0,
# 2.1.0, 2.2.1, 2.3.0, and none of 1.19.x. Its classes (the application-mode
# entry point, three small classes over flink-clients and flink-runtime) are
# stable within a minor. 1.19 runs 1.18.0's: 1.20.0's calls
# SavepointRestoreSettings.getRestoreMode() returning
# org.apache.flink.core.execution.RestoreMode, which 1.19 does not have
# (NoSuchMethodError at start); 1.18's calls are all in 1.19 (the application
# lifecycle in TestVersionContract on 1.19 shows it).
container_version() {
	case "$1" in
	1.18.* | 1.19.*) echo "${FLINK_CONTAINER_VERSION:-1.18.0}" ;;
	1.20.*) echo "${FLINK_CONTAINER_VERSION:-1.20.0}" ;;
	2.0.*) echo "${FLINK_CONTAINER_VERSION:-2.0.0}" ;;
	2.1.*) echo "${FLINK_CONTAINER_VERSION:-2.1.0}" ;;
	*) echo "${FLINK_CONTAINER_VERSION:-$1}" ;;
	esac
}

# flink-kubernetes (native mode, Kubernetes HA) is not published for every
# patch release either: the last of each minor is 1.18.1, 1.19.1, 1.20.1,
# 2.0.0, 2.1.0, 2.2.0, 2.3.0. It talks to flink-runtime through interfaces
# stable within a minor.
kubernetes_version() {
	case "$1" in
	1.19.*) echo "${FLINK_KUBERNETES_VERSION:-1.19.1}" ;;
	1.20.*) echo "${FLINK_KUBERNETES_VERSION:-1.20.1}" ;;
	2.0.*) echo "${FLINK_KUBERNETES_VERSION:-2.0.0}" ;;
	2.1.*) echo "${FLINK_KUBERNETES_VERSION:-2.1.0}" ;;
	2.2.*) echo "${FLINK_KUBERNETES_VERSION:-2.2.0}" ;;
	*) echo "${FLINK_KUBERNETES_VERSION:-$1}" ;;
	esac
}

# compat_dir VERSION: the test job's source directory for the calls whose API
# changed between versions (tests/flink/testjob/src/<dir>/java).
compat_dir() {
	case "$1" in
	1.18.*) echo compat-1.18 ;;
	*) echo compat-current ;;
	esac
}

MVN=(nice -n 10 mvn -q -B -Dstyle.color=never ${MAVEN_REPO_LOCAL:+-Dmaven.repo.local=$MAVEN_REPO_LOCAL})

# mvn_run ARGS...: Maven quietly, one at a time on this machine (the local
# repository is shared between versions and callers), its output on stderr
# without the colour resets Debian's Maven 3.8 prints even in batch mode.
mvn_run() {
	flock "$CACHE_ROOT/.maven.lock" "${MVN[@]}" "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
}

build_version() {
	local v="$1" dir="$CACHE_ROOT/flink-$1"
	local lib="$dir/lib" rt_hash tj_hash tj_jar
	# The runtime's inputs: the poms and the versions the script picks.
	rt_hash="$( (hash_of pom.xml runtime/pom.xml; echo "$v $(container_version "$v") $(kubernetes_version "$v")") | sha256sum | cut -c1-16)"
	# shellcheck disable=SC2046
	tj_hash="$(hash_of $(testjob_files))"
	tj_jar="$dir/testjob-$tj_hash.jar"

	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	flock 9

	local start built=()
	start=$(date +%s)

	if [ "$(cat "$lib/.complete" 2>/dev/null)" != "$rt_hash" ]; then
		log "resolving the Flink $v runtime classpath from Maven Central"
		rm -rf "$lib.tmp"
		mvn_run -f "$MVN_PROJECT/runtime/pom.xml" \
			-Dflink.version="$v" -Dflink.container.version="$(container_version "$v")" \
			-Dflink.kubernetes.version="$(kubernetes_version "$v")" \
			-DbuildDir="$dir/build/runtime" \
			dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$lib.tmp"
		echo "$rt_hash" >"$lib.tmp/.complete"
		rm -rf "$lib"
		mv "$lib.tmp" "$lib"
		built+=(lib)
	fi

	if [ ! -s "$tj_jar" ]; then
		log "building the test job against Flink $v"
		mvn_run -f "$MVN_PROJECT/testjob/pom.xml" \
			-Dflink.version="$v" -Dflink.compat="$(compat_dir "$v")" -DbuildDir="$dir/build/testjob-$tj_hash" package
		cp "$dir/build/testjob-$tj_hash/testjob.jar" "$tj_jar.tmp"
		mv "$tj_jar.tmp" "$tj_jar"
		rm -rf "$dir/build/testjob-$tj_hash"
		built+=(testjob)
	fi

	mkdir -p "$dir/conf"
	if ! cmp -s "$LOG4J_SRC" "$dir/conf/log4j-console.properties"; then
		cp "$LOG4J_SRC" "$dir/conf/log4j-console.properties.tmp"
		mv "$dir/conf/log4j-console.properties.tmp" "$dir/conf/log4j-console.properties"
	fi

	if ((${#built[@]})); then
		local took=$(($(date +%s) - start))
		log "Flink $v: built ${built[*]} in ${took}s"
		printf '%s version=%s built=%s seconds=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$v" "${built[*]}" "$took" >>"$dir/build-times.log"
	fi
	exec 9>&-

	echo "FLINK_VERSION=$v"
	echo "FLINK_LIB=$lib"
	echo "FLINK_TESTJOB=$tj_jar"
}

need_tools
for v in "${VERSIONS[@]}"; do
	build_version "$v"
done
