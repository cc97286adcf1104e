#!/usr/bin/env bash
# Installs the real registry clients used by scripts/interop/run.sh, and the
# reference registry used by scripts/interop/reference-registry.sh.
# Idempotent: anything already present is left alone. A failed install is
# reported and the script goes on, so that the suite can still run (and SKIP)
# with whatever clients did install. apt/pip output goes to a log file.
#
# Usage: scripts/interop/install.sh [--no-reference]
#   --no-reference  skip docker-registry (only needed for the reference run)
set -uo pipefail

LOG=${INTEROP_INSTALL_LOG:-/tmp/interop-install.log}
echo "=== $(date -u +%FT%TZ) install.sh $*" >>"$LOG"
WITH_REFERENCE=1
for arg in "$@"; do
    case $arg in
        --no-reference) WITH_REFERENCE=0 ;;
        -h | --help)
            sed -n '2,9p' "$0"
            exit 0
            ;;
        *)
            echo "unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Package -> a file that proves it is installed. skopeo/podman/buildah and
# docker.io are the clients (docker.io brings containerd, runc and iptables);
# the rest are recommends that --no-install-recommends would drop: crun/runc
# as OCI runtime, uidmap for user namespaces, fuse-overlayfs as an overlay
# alternative to the vfs storage the suite uses. apache2-utils gives htpasswd
# (bcrypt) to the reference harness; curl and jq are used by run.sh; faketime
# gives the aws CLI a skewed clock in the shared-registry scenario; strace reads the order of a
# push's fsyncs and renames in the durability test; openssl makes the TLS tests' CA; prometheus
# brings promtool, which checks the /metrics scrapes (its own server is stopped); softhsm2 is the
# HSM (a PKCS#11 module and softhsm2-util) that the `pkcs11` key service's tests run against;
# golang-go builds the Go binary whose build information the scanner's tests read.
declare -a PKGS=(
    "skopeo:/usr/bin/skopeo"
    "podman:/usr/bin/podman"
    "buildah:/usr/bin/buildah"
    "docker.io:/usr/sbin/dockerd"
    "crun:/usr/bin/crun"
    "runc:/usr/sbin/runc"
    "uidmap:/usr/bin/newuidmap"
    "fuse-overlayfs:/usr/bin/fuse-overlayfs"
    "apache2-utils:/usr/bin/htpasswd"
    "curl:/usr/bin/curl"
    "jq:/usr/bin/jq"
    "faketime:/usr/bin/faketime"
    "strace:/usr/bin/strace"
    "openssl:/usr/bin/openssl"
    "prometheus:/usr/bin/promtool"
    "softhsm2:/usr/lib/softhsm/libsofthsm2.so"
    "golang-go:/usr/bin/go"
)
if [ "$WITH_REFERENCE" = 1 ]; then
    PKGS+=("docker-registry:/usr/bin/docker-registry")
fi

missing=()
for entry in "${PKGS[@]}"; do
    pkg=${entry%%:*}
    file=${entry#*:}
    if [ -e "$file" ] && dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        echo "already installed: $pkg"
    else
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    # Refresh the lists once, unless they are recent (an hour).
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -60 2>/dev/null | head -1)" ]; then
        if ! timeout 600 $SUDO apt-get update >>"$LOG" 2>&1; then
            echo "apt-get update failed (see $LOG); trying the install anyway"
        fi
    fi
    # One transaction for speed; if it fails, fall back to one package at a
    # time so a single broken package does not block the others.
    if timeout 1500 $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; then
        for pkg in "${missing[@]}"; do echo "installed: $pkg"; done
    else
        for pkg in "${missing[@]}"; do
            if timeout 900 $SUDO apt-get install -y --no-install-recommends "$pkg" >>"$LOG" 2>&1; then
                echo "installed: $pkg"
            else
                reason=$(grep -E '^(E:|dpkg: error)' "$LOG" | tail -1)
                echo "could not install $pkg: ${reason:-apt-get install failed, see $LOG}"
            fi
        done
    fi
fi

# The docker-registry package may start its own instance (port 5000) through
# its init script; the reference harness runs its own, so stop that one.
if [ "$WITH_REFERENCE" = 1 ] && [ -x /usr/bin/docker-registry ]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now docker-registry >>"$LOG" 2>&1 || true
    elif [ -x /etc/init.d/docker-registry ]; then
        $SUDO /etc/init.d/docker-registry stop >>"$LOG" 2>&1 || true
    fi
fi

# The prometheus package starts a server of its own; only promtool is wanted.
if [ -x /usr/bin/promtool ]; then
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now prometheus >>"$LOG" 2>&1 || true
    elif [ -x /etc/init.d/prometheus ]; then
        $SUDO /etc/init.d/prometheus stop >>"$LOG" 2>&1 || true
    fi
fi

# cargo-auditable builds the Rust binary whose embedded crate list the scanner's tests read.
if cargo auditable --version >/dev/null 2>&1; then
    echo "already installed: cargo-auditable"
elif timeout 1200 cargo install --locked --quiet cargo-auditable >>"$LOG" 2>&1; then
    echo "installed: cargo-auditable"
else
    echo "could not install cargo-auditable (see $LOG)"
fi

# Python ORAS client (oras-py; the Go oras CLI is not packaged here), for
# the python3 first in PATH, which is the one run.sh uses.
pip_install() {
    timeout 600 python3 -m pip install --quiet --disable-pip-version-check "$@" >>"$LOG" 2>&1
}
# python_client MODULE PACKAGE...: installs the packages unless MODULE imports already.
python_client() {
    local module=$1; shift
    if python3 -c "import $module" >/dev/null 2>&1; then
        echo "already installed: $* (python)"
        return
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        timeout 600 $SUDO apt-get install -y --no-install-recommends python3-pip >>"$LOG" 2>&1 || true
    fi
    # Debian's own python3 refuses system-wide pip installs (PEP 668) unless
    # told otherwise; a pyenv or venv python needs no such flag.
    if pip_install "$@" ||
        { grep -q externally-managed-environment "$LOG" && pip_install --break-system-packages "$@"; }; then
        echo "installed: $* (python)"
    else
        reason=$(grep -E '^(ERROR|error)' "$LOG" | tail -1)
        echo "could not install $* (python): ${reason:-pip install failed, see $LOG}"
    fi
}
python_client oras.client oras
# The aws CLI (v1, from PyPI) and boto3, for the ECR API suites.
python_client awscli.clidriver awscli
python_client boto3 boto3
# moto's server mode speaks AWS KMS's API: the `aws-kms` key service's tests run against it.
python_client moto.server 'moto[server]'

echo "install log: $LOG"
exit 0
