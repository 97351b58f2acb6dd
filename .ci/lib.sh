# shellcheck shell=bash
# Install functions shared by .ci/run and examples/replicas/run.sh: each
# installs one thing when it is missing and does nothing otherwise, so both
# may call them every time. Debian packages come from apt (root only);
# what takes long to build is cached under $HOME/.cache/modgate-ci.
#
# Source it; it sets nothing but the variables below and these functions.

MODGATE_CI_BIN=${MODGATE_CI_BIN:-$HOME/.cache/modgate-ci/bin}
VERSITYGW_VERSION=v1.8.0
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# ci_apt_install PKG...: installs Debian packages without starting their
# services (haproxy's and postgresql's would otherwise start on the
# default ports): an absent /usr/sbin/policy-rc.d is created for the
# install, exiting 101 ("action forbidden"), and removed again.
ci_apt_install() {
	if [ "$(id -u)" != 0 ]; then
		echo "missing: $* (install them with: sudo apt-get install $*)" >&2
		return 1
	fi
	local made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	echo "== installing $*" >&2
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >&2 || rc=$?
	if [ -n "$made_policy" ]; then
		rm -f /usr/sbin/policy-rc.d
	fi
	return $rc
}

# ci_install_haproxy: Debian's haproxy (the load balancer in front of
# replicas; its boot-time service is not used).
ci_install_haproxy() {
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || ci_apt_install haproxy
}

# ci_haproxy prints haproxy's path.
ci_haproxy() {
	command -v haproxy || echo /usr/sbin/haproxy
}

# ci_install_postgres: PostgreSQL 15's server binaries in $PG_BIN (no
# cluster is created or started).
ci_install_postgres() {
	[ -x "$PG_BIN/initdb" ] || ci_apt_install postgresql-15
}

# ci_install_versitygw: the S3-compatible server, built once with the
# local Go into $MODGATE_CI_BIN (about 2 minutes cold).
ci_install_versitygw() {
	if command -v versitygw >/dev/null || [ -x "$MODGATE_CI_BIN/versitygw" ]; then
		return 0
	fi
	echo "== building versitygw $VERSITYGW_VERSION into $MODGATE_CI_BIN" >&2
	mkdir -p "$MODGATE_CI_BIN"
	GOBIN="$MODGATE_CI_BIN" GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
}

# ci_versitygw prints versitygw's path.
ci_versitygw() {
	command -v versitygw || echo "$MODGATE_CI_BIN/versitygw"
}

# ci_install_slapd: OpenLDAP's slapd and its schemas, for the LDAP tests
# (the package's own service and database are not used).
ci_install_slapd() {
	[ -x /usr/sbin/slapd ] && [ -d /etc/ldap/schema ] || ci_apt_install slapd ldap-utils
}

# ci_install_deploy_tools: what deploy/'s tests run: promtool and a real
# Prometheus (Debian's prometheus), systemd-analyze (systemd), and helm
# v4.3.2 built once from its Go module into $MODGATE_CI_BIN (about 3 minutes
# cold).
ci_install_deploy_tools() {
	local pkgs=()
	command -v promtool >/dev/null && command -v prometheus >/dev/null || pkgs+=(prometheus)
	command -v systemd-analyze >/dev/null || pkgs+=(systemd)
	[ ${#pkgs[@]} -eq 0 ] || ci_apt_install "${pkgs[@]}"
	if [ ! -x "$MODGATE_CI_BIN/helm" ]; then
		echo "== building helm v4.3.2 into $MODGATE_CI_BIN" >&2
		mkdir -p "$MODGATE_CI_BIN"
		GOBIN="$MODGATE_CI_BIN" GOFLAGS= go install -ldflags='-s -w -X helm.sh/helm/v4/internal/version.version=v4.3.2' helm.sh/helm/v4/cmd/helm@v4.3.2 >&2
	fi
}
