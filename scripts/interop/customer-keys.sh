#!/usr/bin/env bash
# Customer keys end to end with real clients: `berth admin kms create` makes a key, the aws CLI
# creates repositories under it (by alias), under the account's default key and under the
# registry's own key (AES256); skopeo and docker (its own daemon) push the same image into them
# and pull it back; the three repositories share one stored copy of each blob. Disabling the key
# cuts off exactly its repository (skopeo's pull fails, the aws CLI gets KmsException) while the
# others keep serving; enabled again, it serves again.
# Usage: customer-keys.sh BERTH_BINARY [local|pkcs11|aws-kms]: the key service customer keys live
# in (local key files; a SoftHSM2 token; moto's server speaking AWS KMS's API); checks are named
# ck-<service>-... Ends with "N passed, M failed, K skipped".
set -uo pipefail
berth=$1
service=${2:-local}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=results.sh
. "$here/results.sh"
require "customer-keys-$service" aws skopeo jq python3 curl

T=$(mktemp -d /tmp/ck.XXXXXX)
pid=""
cleanup() {
    if declare -F dockerd_stop >/dev/null; then dockerd_stop "$T/d" >/dev/null 2>&1; fi
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [ -n "${moto_pid:-}" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
data=$T/data
account=123456789012
case $service in
local) ;;
pkcs11)
    module=/usr/lib/softhsm/libsofthsm2.so
    if [ ! -e "$module" ] || ! command -v softhsm2-util >/dev/null 2>&1; then
        skip "ck-$service" "SoftHSM2 is not installed (apt-get install softhsm2)"
        finish
    fi
    mkdir -p "$T/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$T/tokens" >"$T/softhsm2.conf"
    export SOFTHSM2_CONF=$T/softhsm2.conf
    softhsm2-util --init-token --free --label berth --pin 2468-pin --so-pin 1357-so >"$T/hsm.out" 2>&1
    printf '2468-pin\n' >"$T/pin" && chmod 600 "$T/pin"
    export BERTH_KMS_PROVIDER=pkcs11 BERTH_KMS_PKCS11_MODULE=$module BERTH_KMS_PKCS11_TOKEN=berth \
        BERTH_KMS_PKCS11_PIN_FILE=$T/pin BERTH_KMS_STATE_CACHE_SECONDS=0
    ;;
aws-kms)
    if ! python3 -c 'import moto.server' 2>/dev/null; then
        skip "ck-$service" "moto's server is not installed (pip install 'moto[server]')"
        finish
    fi
    kms_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -m moto.server -H 127.0.0.1 -p "$kms_port" >"$T/moto.log" 2>&1 &
    moto_pid=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$kms_port/moto-api/" >/dev/null && break; sleep 0.2; done
    # The server signs its KMS calls with these; the aws CLI's credentials for berth replace them
    # below (moto accepts any).
    export BERTH_KMS_PROVIDER=aws-kms BERTH_KMS_ENDPOINT=http://127.0.0.1:$kms_port \
        BERTH_KMS_STATE_CACHE_SECONDS=0 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
        AWS_EC2_METADATA_DISABLED=true
    ;;
*)
    echo "customer-keys.sh: unknown key service $service (local, pkcs11 or aws-kms)" >&2
    exit 2
    ;;
esac
# shellcheck source=berth.sh
. "$here/berth.sh"
berth_start "$berth" "$data" "$account" "$T/berth.log"
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_ECR="http://$registry" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_MAX_ATTEMPTS=1
password=$(timeout 60 aws ecr get-login-password)
admin() { berth_admin "$@"; }

# The key, and three repositories: under it by alias, under the default key, under the registry's.
if arn=$(admin kms create --account "$account" --alias alias/base-images --description "base images" | jq -er .arn); then
    pass ck-$service-admin-kms-create
else
    fail ck-$service-admin-kms-create "no key was made"
fi
created() { # created NAME ENCRYPTION -> prints the repository's encryptionConfiguration
    timeout 60 aws ecr create-repository --repository-name "$1" --encryption-configuration "$2" \
        --query repository.encryptionConfiguration --output json 2>"$T/err"
}
by_alias=$(created keyed/app encryptionType=KMS,kmsKey=alias/base-images)
if [ -n "$arn" ] && [ "$(jq -r .kmsKey <<<"$by_alias")" = "$arn" ]; then pass ck-$service-cli-kms-by-alias; else fail ck-$service-cli-kms-by-alias "$by_alias $(head -c 200 "$T/err")"; fi
by_default=$(created keyed/default encryptionType=KMS)
if jq -e '.encryptionType == "KMS" and (.kmsKey | startswith("arn:aws:kms:us-east-1:'$account':key/"))' <<<"$by_default" >/dev/null &&
    [ "$(jq -r .kmsKey <<<"$by_default")" != "$arn" ]; then
    pass ck-$service-cli-kms-default-key
else
    fail ck-$service-cli-kms-default-key "$by_default $(head -c 200 "$T/err")"
fi
plain=$(created plain/app encryptionType=AES256)
if [ "$(jq -r .encryptionType <<<"$plain")" = AES256 ]; then pass ck-$service-cli-aes256; else fail ck-$service-cli-aes256 "$plain"; fi
if ! timeout 60 aws ecr create-repository --repository-name keyed/missing \
    --encryption-configuration encryptionType=KMS,kmsKey=alias/no-such-key >"$T/cli.out" 2>&1 &&
    grep -q KmsException "$T/cli.out"; then
    pass ck-$service-cli-missing-key-is-kms-exception
else
    fail ck-$service-cli-missing-key-is-kms-exception "$(head -c 300 "$T/cli.out")"
fi

# One image, as an OCI layout: a layer of random bytes.
mkdir -p "$T/rootfs/opt/base" && head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/rootfs/opt/base/payload"
tar -C "$T/rootfs" -czf "$T/layer.tar.gz" .
python3 "$here/oci-layout.py" "$T/layer.tar.gz" "$T/src"
layer_digest=$(jq -r '.manifests[0].digest' "$T/src/index.json")
pull() { # pull REPOSITORY -> succeeds if the image comes back whole
    rm -rf "$T/out"
    timeout 120 skopeo copy --quiet --src-tls-verify=false --src-creds "AWS:$password" \
        "docker://$registry/$account/$1:v1" "oci:$T/out:v1" >"$T/pull.err" 2>&1 &&
        [ "$(jq -r '.manifests[0].digest' "$T/out/index.json")" = "$layer_digest" ]
}
ok=1
for repository in keyed/app keyed/default plain/app; do
    timeout 120 skopeo copy --quiet --dest-tls-verify=false --dest-creds "AWS:$password" \
        "oci:$T/src:v1" "docker://$registry/$account/$repository:v1" >"$T/push.err" 2>&1 || ok=0
    pull "$repository" || ok=0
done
if [ "$ok" = 1 ]; then pass ck-$service-skopeo-push-and-pull-under-each-key; else fail ck-$service-skopeo-push-and-pull-under-each-key "$(head -c 300 "$T/push.err" "$T/pull.err")"; fi
files=$(find "$data/blobs" -type f | wc -l)
if [ "$files" = 3 ]; then
    pass ck-$service-one-stored-copy-under-three-keys
else
    fail ck-$service-one-stored-copy-under-three-keys "$files stored files for one image in three repositories"
fi

# docker, with a daemon of its own, pushes and pulls through the customer key's repository.
if command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    # shellcheck source=dockerd.sh
    . "$here/dockerd.sh"
    if dockerd_start "$T/d" "$registry" "$T/dockerd.log"; then
        image=$registry/$account/keyed/app
        if echo "$password" | timeout 60 "$DK" login --username AWS --password-stdin "$registry" >"$T/docker.out" 2>&1 &&
            timeout 120 "$DK" pull "$image:v1" >>"$T/docker.out" 2>&1 &&
            timeout 60 "$DK" tag "$image:v1" "$image:from-docker" >>"$T/docker.out" 2>&1 &&
            timeout 120 "$DK" push "$image:from-docker" >>"$T/docker.out" 2>&1 &&
            timeout 60 "$DK" rmi "$image:from-docker" "$image:v1" >>"$T/docker.out" 2>&1 &&
            timeout 120 "$DK" pull "$image:from-docker" >>"$T/docker.out" 2>&1; then
            pass ck-$service-docker-push-and-pull-under-a-customer-key
        else
            fail ck-$service-docker-push-and-pull-under-a-customer-key "$(tail -3 "$T/docker.out" | tr '\n' ' ' | head -c 300)"
        fi
    else
        skip ck-$service-docker-push-and-pull-under-a-customer-key "dockerd did not start: $DOCKERD_WHY"
    fi
else
    skip ck-$service-docker-push-and-pull-under-a-customer-key "dockerd is not installed or this is not root"
fi

# The key disabled: its repository is cut off, the others are not.
admin kms disable --account "$account" alias/base-images >/dev/null
if ! pull keyed/app && grep -q 503 "$T/pull.err"; then
    pass ck-$service-disabled-key-cuts-off-its-repository
else
    fail ck-$service-disabled-key-cuts-off-its-repository "the pull did not fail with 503: $(head -c 300 "$T/pull.err")"
fi
if timeout 60 aws ecr batch-get-image --repository-name keyed/app --image-ids imageTag=v1 >"$T/cli.out" 2>&1 &&
    jq -e '.failures[0].failureCode == "KmsError" and (.images | length == 0)' "$T/cli.out" >/dev/null; then
    pass ck-$service-disabled-key-fails-the-image-with-kms-error
else
    fail ck-$service-disabled-key-fails-the-image-with-kms-error "$(head -c 300 "$T/cli.out")"
fi
if pull keyed/default && pull plain/app; then
    pass ck-$service-other-keys-keep-serving
else
    fail ck-$service-other-keys-keep-serving "$(head -c 300 "$T/pull.err")"
fi
admin kms enable --account "$account" alias/base-images >/dev/null
if pull keyed/app; then pass ck-$service-enabled-again-serves-again; else fail ck-$service-enabled-again-serves-again "$(head -c 300 "$T/pull.err")"; fi
finish
