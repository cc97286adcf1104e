#!/usr/bin/env bash
# The shared-registry scenario with real clients: account 123456789012 publishes
# mlops/python-base; its repository policy lets 111111111111 and 222222222222 pull; a dev user of
# 111111111111 with a pull-only identity policy logs in with `aws ecr get-login-password` and
# pulls with docker, skopeo and podman, but cannot push; account 333333333333 can neither pull nor
# learn that the repository exists. The aws CLI works with a clock 10 minutes off, not 20.
# Usage: shared-registry.sh BERTH_BINARY. Ends with "N passed, M failed, K skipped".
set -uo pipefail
berth=$1
# shellcheck source=results.sh
. "$(dirname "${BASH_SOURCE[0]}")/results.sh"
require shared-registry aws skopeo jq python3

# shellcheck source=dockerd.sh
. "$(dirname "${BASH_SOURCE[0]}")/dockerd.sh"

work=$(mktemp -d)
# The private dockerd's sockets need a short path.
docker_dir=$(mktemp -d /tmp/shdk.XXXXXX)
pid=""
cleanup() {
    dockerd_stop "$docker_dir"
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work" "$docker_dir"
}
trap cleanup EXIT
data=$work/data
# shellcheck source=berth.sh
. "$(dirname "${BASH_SOURCE[0]}")/berth.sh"
berth_start "$berth" "$data" 123456789012 "$work/berth.log"
admin() { berth_admin "$@"; }
field() { jq -r ".$1" <<<"$2"; }

# Accounts, the dev user and its identity policy, through berth admin.
owner_id=$key owner_secret=$secret
for account in 111111111111 222222222222 333333333333; do admin account create "$account" --name "acct-$account" >/dev/null; done
admin user create --account 111111111111 dev >/dev/null
cat >"$work/dev-policy.json" <<'JSON'
{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"*"},
 {"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"],
  "Resource":"arn:aws:ecr:*:123456789012:repository/mlops/*"}]}
JSON
admin user policy put --account 111111111111 --user dev --name pull --file "$work/dev-policy.json" >/dev/null
dev=$(admin key create --account 111111111111 --user dev)
other=$(admin key create --account 333333333333)

# as KEY SECRET CMD...: runs an aws CLI command as that key, against berth.
as() {
    local key=$1 secret=$2; shift 2
    AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 \
        AWS_ENDPOINT_URL_ECR="http://$registry" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
        AWS_MAX_ATTEMPTS=1 timeout 60 "$@"
}

# The platform team creates the repository and publishes an image with skopeo.
as "$owner_id" "$owner_secret" aws ecr create-repository --repository-name mlops/python-base \
    --image-tag-mutability IMMUTABLE --image-scanning-configuration scanOnPush=true >/dev/null 2>&1
python3 - "$work/src" <<'PY'
import hashlib, json, os, sys, tarfile, io
root = sys.argv[1]
os.makedirs(f"{root}/blobs/sha256")
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{root}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"shared base image\n"
    info = tarfile.TarInfo("etc/base-release"); info.size = len(data); t.addfile(info, io.BytesIO(data))
layer = buf.getvalue()
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}]}).encode()
m = blob(manifest)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
    "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, open(f"{root}/index.json", "w"))
open(f"{root}/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
PY
owner_password=$(as "$owner_id" "$owner_secret" aws ecr get-login-password)
if timeout 120 skopeo copy --dest-tls-verify=false --dest-creds "AWS:$owner_password" \
    "oci:$work/src:v1" "docker://$registry/123456789012/mlops/python-base:v1" >"$work/push.log" 2>&1; then
    pass shared-publish
else
    fail shared-publish "$(tail -3 "$work/push.log" | tr '\n' ' ')"
fi
policy='{"Version":"2012-10-17","Statement":[{"Sid":"CrossAccountPull","Effect":"Allow",
  "Principal":{"AWS":["111111111111","222222222222"]},
  "Action":["ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage"]}]}'
if as "$owner_id" "$owner_secret" aws ecr set-repository-policy --repository-name mlops/python-base \
    --policy-text "$policy" >"$work/out" 2>&1; then
    pass shared-set-repository-policy
else
    fail shared-set-repository-policy "$(tr '\n' ' ' <"$work/out")"
fi

# The dev user logs in as the AWS docs say and pulls with skopeo and podman.
dev_key=$(field accessKeyId "$dev") dev_secret=$(field secretAccessKey "$dev")
export REGISTRY_AUTH_FILE=$work/auth.json
if as "$dev_key" "$dev_secret" aws ecr get-login-password | timeout 60 skopeo login --tls-verify=false \
    --username AWS --password-stdin "$registry" >"$work/out" 2>&1; then
    pass shared-dev-skopeo-login
else
    fail shared-dev-skopeo-login "$(tr '\n' ' ' <"$work/out")"
fi
if timeout 120 skopeo copy --src-tls-verify=false "docker://$registry/123456789012/mlops/python-base:v1" \
    "dir:$work/pulled" >"$work/out" 2>&1; then
    pass shared-dev-pull
else
    fail shared-dev-pull "$(tail -3 "$work/out" | tr '\n' ' ')"
fi
if command -v podman >/dev/null 2>&1; then
    pm=(podman --root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs
        --cgroup-manager cgroupfs --events-backend none)
    if as "$dev_key" "$dev_secret" aws ecr get-login-password |
        timeout 60 "${pm[@]}" login --tls-verify=false --authfile "$work/podman-auth.json" \
            --username AWS --password-stdin "$registry" >"$work/out" 2>&1 &&
        timeout 120 "${pm[@]}" pull --tls-verify=false --authfile "$work/podman-auth.json" \
            "$registry/123456789012/mlops/python-base:v1" >>"$work/out" 2>&1; then
        pass shared-dev-podman-pull
    else
        fail shared-dev-podman-pull "$(tail -3 "$work/out" | tr '\n' ' ')"
    fi
else
    skip shared-dev-podman-pull "podman is not installed"
fi

# The same with docker, as the AWS docs have it: get-login-password piped into docker login.
image=$registry/123456789012/mlops/python-base
docker_checks=(shared-dev-docker-login shared-dev-docker-pull shared-dev-docker-cannot-push)
if ! command -v dockerd >/dev/null 2>&1; then
    for n in "${docker_checks[@]}"; do skip "$n" "dockerd is not installed"; done
elif ! dockerd_start "$docker_dir" "$registry" "$work/dockerd.log"; then
    for n in "${docker_checks[@]}"; do skip "$n" "dockerd would not start: $DOCKERD_WHY"; done
elif ! as "$dev_key" "$dev_secret" aws ecr get-login-password |
    timeout 60 "$DK" login --username AWS --password-stdin "$registry" >"$work/out" 2>&1; then
    fail shared-dev-docker-login "$(tr '\n' ' ' <"$work/out")"
else
    pass shared-dev-docker-login
    if timeout 120 "$DK" pull "$image:v1" >"$work/out" 2>&1 &&
        "$DK" image inspect "$image:v1" >/dev/null 2>>"$work/out"; then
        pass shared-dev-docker-pull
    else
        fail shared-dev-docker-pull "$(tail -3 "$work/out" | tr '\n' ' ')"
    fi
    if ! "$DK" tag "$image:v1" "$image:dev-docker" >"$work/out" 2>&1; then
        fail shared-dev-docker-cannot-push "docker tag failed: $(tr '\n' ' ' <"$work/out")"
    elif timeout 120 "$DK" push "$image:dev-docker" >"$work/out" 2>&1; then
        fail shared-dev-docker-cannot-push "the dev user pushed with docker"
    elif grep -qi "denied\|403" "$work/out"; then
        pass shared-dev-docker-cannot-push
    else
        fail shared-dev-docker-cannot-push "unexpected error: $(tail -2 "$work/out" | tr '\n' ' ')"
    fi
fi
if timeout 120 skopeo copy --dest-tls-verify=false "oci:$work/src:v1" \
    "docker://$registry/123456789012/mlops/python-base:dev-push" >"$work/out" 2>&1; then
    fail shared-dev-cannot-push "the dev user pushed"
elif grep -qi "denied\|403" "$work/out"; then
    pass shared-dev-cannot-push
else
    fail shared-dev-cannot-push "unexpected error: $(tail -2 "$work/out" | tr '\n' ' ')"
fi

# Account 333333333333 can neither pull nor learn that the repository exists.
other_key=$(field accessKeyId "$other") other_secret=$(field secretAccessKey "$other")
other_password=$(as "$other_key" "$other_secret" aws ecr get-login-password)
# A refusal counts only when it is the registry's: a valid password, and a denial that says so.
if [ -z "$other_password" ]; then
    fail shared-other-cannot-pull "account 333333333333 got no registry password to try with"
elif timeout 120 skopeo copy --src-tls-verify=false --src-creds "AWS:$other_password" \
    "docker://$registry/123456789012/mlops/python-base:v1" "dir:$work/stolen" >"$work/out" 2>&1; then
    fail shared-other-cannot-pull "account 333333333333 pulled"
elif grep -qi "denied" "$work/out" && grep -q "333333333333:root is not authorized to perform: ecr:BatchGetImage" "$work/out"; then
    pass shared-other-cannot-pull
else
    fail shared-other-cannot-pull "refused, but not by the registry's denial: $(tail -2 "$work/out" | tr '\n' ' ')"
fi
exists=$(as "$other_key" "$other_secret" aws ecr describe-repositories --registry-id 123456789012 \
    --repository-names mlops/python-base 2>&1 | grep -o '([A-Za-z]*Exception)')
missing=$(as "$other_key" "$other_secret" aws ecr describe-repositories --registry-id 123456789012 \
    --repository-names mlops/no-such-repo 2>&1 | grep -o '([A-Za-z]*Exception)')
if [ "$exists" = "(AccessDeniedException)" ] && [ "$exists" = "$missing" ]; then
    pass shared-other-learns-nothing
else
    fail shared-other-learns-nothing "existing: $exists, missing: $missing"
fi

# A laptop clock 10 minutes fast still signs acceptable requests; 20 minutes slow does not, and
# the aws CLI reports why. AWS allows 15 minutes either way.
if command -v faketime >/dev/null 2>&1; then
    if as "$owner_id" "$owner_secret" faketime -f +10m aws ecr describe-repositories \
        --repository-names mlops/python-base >"$work/out" 2>&1; then
        pass shared-cli-clock-10-minutes-fast
    else
        fail shared-cli-clock-10-minutes-fast "$(tr '\n' ' ' <"$work/out")"
    fi
    if as "$owner_id" "$owner_secret" faketime -f -20m aws ecr describe-repositories \
        --repository-names mlops/python-base >"$work/out" 2>&1; then
        fail shared-cli-clock-20-minutes-slow "a request signed 20 minutes ago was accepted"
    elif grep -q "(InvalidSignatureException)" "$work/out"; then
        pass shared-cli-clock-20-minutes-slow
    else
        fail shared-cli-clock-20-minutes-slow "unexpected error: $(tr '\n' ' ' <"$work/out")"
    fi
else
    skip shared-cli-clock-skew "faketime is not installed"
fi
finish
