#!/usr/bin/env bash
# HTTPS end to end with real clients, certificate verification on: a CA made here signs a
# certificate for this machine's own (non-loopback) address, and berth serves it there. The aws
# CLI (AWS_CA_BUNDLE) and boto3 (verify=the CA) use the ECR API, skopeo and podman (--cert-dir)
# push and pull, and docker (its own daemon, the CA in certs.d) logs in to the proxyEndpoint and
# pushes and pulls; a client that does not trust the CA is refused. docker treats loopback
# registries as insecure and would not verify, hence the machine's own address. Each client's
# image pull moves the repository's pull counter (served with the metrics token) by exactly one.
#
# /etc/docker/certs.d is a folder of this run's bound over /etc/docker inside a mount namespace
# of the script's own (unshare -m), so the machine's docker configuration is never edited.
#
# Usage: tls.sh path/to/berth. Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed,
# K skipped".
set -uo pipefail
berth=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=results.sh
. "$here/results.sh"
require tls aws skopeo jq python3 curl openssl
have() { command -v "$1" >/dev/null 2>&1; }

if [ -z "${TLS_NAMESPACE:-}" ]; then
    docker_etc=$(mktemp -d /tmp/tls-etc.XXXXXX)
    if [ -d /etc/docker ] && unshare -m --propagation private true 2>/dev/null; then
        TLS_NAMESPACE=1 DOCKER_ETC=$docker_etc exec unshare -m --propagation private \
            bash -c 'mount --bind "$DOCKER_ETC" /etc/docker && exec "$0" "$@"' "$0" "$berth"
    fi
    # No namespace (not root) or no /etc/docker (docker not installed): everything but docker.
    export TLS_NAMESPACE=0 DOCKER_ETC=$docker_etc
fi

ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+(\.[0-9]+){3}$' | grep -v '^127\.' | head -1)
if [ -z "$ip" ]; then
    skip tls "this machine has no IPv4 address but loopback to serve a verified certificate on"
    finish
fi

T=$(mktemp -d /tmp/tls.XXXXXX)
pid=""
cleanup() {
    if declare -F dockerd_stop >/dev/null; then dockerd_stop "$T/d" >/dev/null 2>&1; fi
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$T" "${DOCKER_ETC:-}"
}
trap cleanup EXIT

# The CA and a certificate for this machine's address.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 -subj "/CN=berth interop CA" 2>/dev/null
openssl req "${ec[@]}" -keyout "$T/key.pem" -out "$T/leaf.csr" -subj "/CN=$ip" 2>/dev/null
printf 'subjectAltName=IP:%s\n' "$ip" >"$T/ext.cnf"
openssl x509 -req -in "$T/leaf.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial 1 -days 2 \
    -extfile "$T/ext.cnf" -out "$T/leaf.pem" 2>/dev/null
cat "$T/leaf.pem" "$T/ca.pem" >"$T/cert.pem"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/metrics-token"

account=123456789012
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
registry=$ip:$port
BERTH_BOOTSTRAP_ACCOUNT_ID=$account BERTH_TLS_CERT_FILE=$T/cert.pem BERTH_TLS_KEY_FILE=$T/key.pem \
    BERTH_METRICS_TOKEN_FILE=$T/metrics-token "$berth" serve --data-dir "$T/data" --listen "$registry" >"$T/berth.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    curl -fs --cacert "$T/ca.pem" "https://$registry/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
key=$(awk -F' = ' '/aws_access_key_id/ {print $2}' "$T/data/bootstrap-credentials" 2>/dev/null)
secret=$(awk -F' = ' '/aws_secret_access_key/ {print $2}' "$T/data/bootstrap-credentials" 2>/dev/null)
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_ECR=https://$registry AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_MAX_ATTEMPTS=1 AWS_CA_BUNDLE=$T/ca.pem

# The repository's image pulls so far, from the per-repository series.
pulls() {
    curl -s --cacert "$T/ca.pem" -H "Authorization: Bearer $(cat "$T/metrics-token")" "https://$registry/metrics" |
        awk -v s="berth_repository_pulls_total{account=\"$account\",repository=\"tls/app\"}" '$1 == s {print $2}'
}
# One pull by a client: the counter moved by exactly one.
counted() { # counted CHECK BEFORE
    local after
    after=$(pulls)
    if [ "$((${after:-0} - ${2:-0}))" = 1 ]; then pass "$1"; else fail "$1" "the pull counter went from ${2:-0} to ${after:-0}"; fi
}

# The ECR API over HTTPS: the aws CLI trusting the CA, and refusing without it.
uri=$(timeout 60 aws ecr create-repository --repository-name tls/app --query repository.repositoryUri --output text 2>"$T/err")
endpoint=$(timeout 60 aws ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text 2>>"$T/err")
if [ "$uri" = "$registry/$account/tls/app" ] && [ "$endpoint" = "https://$registry" ]; then
    pass tls-aws-cli
else
    fail tls-aws-cli "repositoryUri '$uri', proxyEndpoint '$endpoint': $(head -c 200 "$T/err")"
fi
if ! env -u AWS_CA_BUNDLE timeout 60 aws ecr describe-repositories >"$T/out" 2>&1 && grep -qi 'ssl\|certificate' "$T/out"; then
    pass tls-aws-cli-refuses-an-unknown-ca
else
    fail tls-aws-cli-refuses-an-unknown-ca "$(head -c 200 "$T/out")"
fi
password=$(timeout 60 aws ecr get-login-password)
if python3 - "$registry" "$T/ca.pem" "$key" "$secret" >"$T/boto3.out" 2>&1 <<'PY'
import sys, boto3
registry, ca, key, secret = sys.argv[1:5]
ecr = boto3.client("ecr", endpoint_url=f"https://{registry}", verify=ca, region_name="us-east-1",
                   aws_access_key_id=key, aws_secret_access_key=secret)
names = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
assert names == ["tls/app"], names
PY
then pass tls-boto3; else fail tls-boto3 "$(tail -1 "$T/boto3.out")"; fi

# skopeo and podman with the CA in a certificate folder, verification on.
mkdir -p "$T/certs" && cp "$T/ca.pem" "$T/certs/ca.crt"
mkdir -p "$T/rootfs/etc" && echo "tls test" >"$T/rootfs/etc/release"
tar -C "$T/rootfs" -czf "$T/layer.tar.gz" .
python3 "$here/oci-layout.py" "$T/layer.tar.gz" "$T/src"
image=$registry/$account/tls/app
timeout 120 skopeo copy --dest-cert-dir "$T/certs" --dest-creds "AWS:$password" \
    "oci:$T/src:v1" "docker://$image:v1" >"$T/skopeo.log" 2>&1
before=$(pulls)
if timeout 120 skopeo copy --src-cert-dir "$T/certs" --src-creds "AWS:$password" \
    "docker://$image:v1" "oci:$T/back:v1" >>"$T/skopeo.log" 2>&1; then
    pass tls-skopeo-push-pull
    counted tls-skopeo-pull-counted-once "$before"
else
    fail tls-skopeo-push-pull "$(tail -1 "$T/skopeo.log")"
fi
if ! timeout 60 skopeo inspect --creds "AWS:$password" "docker://$image:v1" >"$T/skopeo.log" 2>&1 &&
    grep -qi 'certificate\|x509' "$T/skopeo.log"; then
    pass tls-skopeo-refuses-an-unknown-ca
else
    fail tls-skopeo-refuses-an-unknown-ca "$(tail -1 "$T/skopeo.log")"
fi
if have podman; then
    store=(--root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs)
    before=$(pulls)
    if printf '%s' "$password" | timeout 60 podman "${store[@]}" login --cert-dir "$T/certs" --username AWS \
        --password-stdin --authfile "$T/podman-auth.json" "$registry" >"$T/podman.log" 2>&1 &&
        timeout 120 podman "${store[@]}" pull --cert-dir "$T/certs" --authfile "$T/podman-auth.json" "$image:v1" >>"$T/podman.log" 2>&1 &&
        counted tls-podman-pull-counted-once "$before" &&
        podman "${store[@]}" tag "$image:v1" "$image:podman" >>"$T/podman.log" 2>&1 &&
        timeout 120 podman "${store[@]}" push --cert-dir "$T/certs" --authfile "$T/podman-auth.json" "$image:podman" >>"$T/podman.log" 2>&1; then
        pass tls-podman-login-pull-push
    else
        fail tls-podman-login-pull-push "$(tail -1 "$T/podman.log")"
    fi
else
    skip tls-podman "podman is not installed"
fi

# docker: its own daemon, the CA where docker looks for it, login to the proxyEndpoint.
if [ "$TLS_NAMESPACE" != 1 ]; then
    skip tls-docker "no mount namespace for /etc/docker/certs.d (needs root and an installed docker)"
elif ! have dockerd; then
    skip tls-docker "dockerd is not installed"
else
    mkdir -p "/etc/docker/certs.d/$registry" && cp "$T/ca.pem" "/etc/docker/certs.d/$registry/ca.crt"
    # shellcheck source=dockerd.sh
    . "$here/dockerd.sh"
    # Not an insecure registry: the daemon must verify (the address is given only because the
    # helper takes one; any registry not on loopback would do).
    if ! dockerd_start "$T/d" "registry.invalid" "$T/dockerd.log"; then
        skip tls-docker "dockerd would not start: $DOCKERD_WHY"
    elif before=$(pulls) &&
        printf '%s' "$password" | timeout 60 "$DK" login --username AWS --password-stdin "$endpoint" >"$T/docker.log" 2>&1 &&
        timeout 120 "$DK" pull "$image:v1" >>"$T/docker.log" 2>&1 &&
        counted tls-docker-pull-counted-once "$before" &&
        "$DK" tag "$image:v1" "$image:docker" >>"$T/docker.log" 2>&1 &&
        timeout 120 "$DK" push "$image:docker" >>"$T/docker.log" 2>&1; then
        pass tls-docker-login-pull-push
    else
        fail tls-docker-login-pull-push "$(tail -2 "$T/docker.log" | tr '\n' ' ')"
    fi
fi
if [ "$FAILED" != 0 ]; then
    echo "--- berth log (last 20 lines)" >&2
    tail -20 "$T/berth.log" >&2
fi
finish
