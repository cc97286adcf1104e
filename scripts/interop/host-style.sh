#!/usr/bin/env bash
# Host-style addresses end to end: a registry at <account>.registry.test:<port>, as ECR names
# its registries, used by the aws CLI, skopeo, podman, docker (its own daemon) and curl: push
# and pull by each client (new layers uploaded through the upload Location), tags listed by
# skopeo, a cross-repository mount by docker and by curl, a chunked upload, tag paging and
# referrers by curl, and docker login and push to the proxyEndpoint and repositoryUri the ECR API
# hands out, as given.
#
# The names resolve to 127.0.0.1 through a hosts file bound over /etc/hosts inside a mount
# namespace of this script's own (unshare -m): every process of the run sees it, and the
# machine's /etc/hosts is never edited.
#
# Usage: host-style.sh path/to/berth
# Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped".
set -uo pipefail
berth=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
DOMAIN=registry.test
ACCOUNT=000000000000

if [ -z "${HOST_STYLE_NAMESPACE:-}" ]; then
    hosts=$(mktemp)
    printf '127.0.0.1 localhost\n::1 localhost\n127.0.0.1 %s %s.%s\n' "$DOMAIN" "$ACCOUNT" "$DOMAIN" >"$hosts"
    if ! unshare -m --propagation private true 2>/dev/null; then
        echo "SKIP host-style: cannot make a mount namespace here (unshare -m needs root)"
        echo "0 passed, 0 failed, 1 skipped"
        exit 0
    fi
    HOST_STYLE_NAMESPACE=1 HOSTS_FILE=$hosts exec unshare -m --propagation private \
        bash -c 'mount --bind "$HOSTS_FILE" /etc/hosts && exec "$0" "$@"' "$0" "$berth"
fi

# shellcheck source=results.sh
. "$(dirname "${BASH_SOURCE[0]}")/results.sh"
have() { command -v "$1" >/dev/null 2>&1; }

T=$(mktemp -d)
pid=""
docker_dir=$T/docker
cleanup() {
    if declare -F dockerd_stop >/dev/null; then dockerd_stop "$docker_dir" >/dev/null 2>&1; fi
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$T" "${HOSTS_FILE:-}"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
key_id=AKIA$(head -c 4096 /dev/urandom | tr -dc 'A-Z2-7' | head -c 16)
secret=$(head -c 4096 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c 40)
BERTH_HOST_DOMAIN=$DOMAIN BERTH_BOOTSTRAP_ACCESS_KEY_ID=$key_id BERTH_BOOTSTRAP_SECRET_ACCESS_KEY=$secret \
    "$berth" serve --data-dir "$T/data" --listen "127.0.0.1:$port" >"$T/berth.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
REG=$ACCOUNT.$DOMAIN:$port

if ! have aws; then
    skip host-style "the aws CLI is not installed"
    finish
fi
export AWS_ACCESS_KEY_ID=$key_id AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_ECR=http://127.0.0.1:$port AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

# The addresses the ECR API hands out, used as given below.
uri=$(aws ecr create-repository --repository-name hoststyle/app --query repository.repositoryUri --output text 2>"$T/err")
if [ "$uri" = "$REG/hoststyle/app" ]; then pass hs-repository-uri; else fail hs-repository-uri "got '$uri' $(head -c 200 "$T/err")"; fi
endpoint=$(aws ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text 2>"$T/err")
if [ "$endpoint" = "http://$REG" ]; then pass hs-proxy-endpoint; else fail hs-proxy-endpoint "got '$endpoint'"; fi
password=$(aws ecr get-login-password)
auth=$(printf 'AWS:%s' "$password" | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG" "$auth" >"$T/auth.json"
export REGISTRY_AUTH_FILE=$T/auth.json
printf 'header = "Authorization: Basic %s"\n' "$auth" >"$T/curlrc"
api() { curl -sS --max-time 30 -K "$T/curlrc" "$@"; }
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# A one-layer OCI image on disk.
mkdir -p "$T/rootfs/etc" && echo "host-style test" >"$T/rootfs/etc/release"
tar -C "$T/rootfs" -czf "$T/layer.tar.gz" .
python3 "$here/oci-layout.py" "$T/layer.tar.gz" "$T/src"
layer_digest=$(sha "$T/layer.tar.gz")

# skopeo: push three tags, pull one back.
if have skopeo; then
    ok=1
    for tag in v1 v2 v3; do
        timeout 120 skopeo copy --dest-tls-verify=false "oci:$T/src:v1" "docker://$uri:$tag" >>"$T/skopeo.log" 2>&1 || ok=0
    done
    if [ "$ok" = 1 ]; then pass hs-skopeo-push; else fail hs-skopeo-push "$(tail -1 "$T/skopeo.log")"; fi
    if timeout 120 skopeo copy --src-tls-verify=false "docker://$uri:v2" "oci:$T/out:v2" >>"$T/skopeo.log" 2>&1 &&
        [ -f "$T/out/blobs/sha256/${layer_digest#sha256:}" ]; then
        pass hs-skopeo-pull
    else
        fail hs-skopeo-pull "$(tail -1 "$T/skopeo.log")"
    fi
    if timeout 60 skopeo list-tags --tls-verify=false "docker://$uri" >"$T/tags.json" 2>>"$T/skopeo.log" &&
        [ "$(jq -r '.Tags | sort | join(",")' "$T/tags.json")" = "v1,v2,v3" ]; then
        pass hs-skopeo-list-tags
    else
        fail hs-skopeo-list-tags "$(tail -1 "$T/skopeo.log") $(head -c 200 "$T/tags.json")"
    fi
else
    skip hs-skopeo "skopeo not installed"
fi

# A mount from another repository of the same account, named as host style names it.
mount=$(api -o /dev/null -w '%{http_code} %header{location}' -X POST \
    "http://$REG/v2/hoststyle/mounted/blobs/uploads/?mount=$layer_digest&from=hoststyle/app")
if [ "$mount" = "201 /v2/hoststyle/mounted/blobs/$layer_digest" ]; then pass hs-mount; else fail hs-mount "got '$mount'"; fi

# A chunked upload, following each Location as given.
head -c 300000 /dev/urandom >"$T/chunked"
chunk_digest=$(sha "$T/chunked")
head -c 100000 "$T/chunked" >"$T/part1" && tail -c 200000 "$T/chunked" >"$T/part2"
location=$(api -o /dev/null -w '%header{location}' -X POST "http://$REG/v2/hoststyle/app/blobs/uploads/")
ok=0
case "$location" in
    /v2/hoststyle/app/blobs/uploads/*)
        location=$(api -o /dev/null -w '%header{location}' -X PATCH -H 'Content-Type: application/octet-stream' \
            -H 'Content-Range: 0-99999' --data-binary "@$T/part1" "http://$REG$location")
        location=$(api -o /dev/null -w '%header{location}' -X PATCH -H 'Content-Type: application/octet-stream' \
            -H 'Content-Range: 100000-299999' --data-binary "@$T/part2" "http://$REG$location")
        sep='?'; case "$location" in *\?*) sep='&' ;; esac
        done=$(api -o /dev/null -w '%{http_code}' -X PUT "http://$REG$location${sep}digest=$chunk_digest")
        api -o "$T/chunked.back" "http://$REG/v2/hoststyle/app/blobs/$chunk_digest"
        if [ "$done" = 201 ] && cmp -s "$T/chunked" "$T/chunked.back"; then ok=1; fi
        ;;
esac
if [ "$ok" = 1 ]; then pass hs-chunked-upload; else fail hs-chunked-upload "upload Location was '$location'"; fi

# Tags one page at a time, following Link as given.
next="/v2/hoststyle/app/tags/list?n=1"
tags=""
for _ in 1 2 3 4 5; do
    [ -n "$next" ] || break
    link=$(api -D "$T/headers" -o "$T/page" "http://$REG$next" && grep -i '^link:' "$T/headers" | sed -E 's/^[Ll]ink: *<([^>]*)>.*/\1/' | tr -d '\r')
    tags="$tags$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["tags"]))' "$T/page"),"
    next=$link
done
if [ "$tags" = "v1,v2,v3,," ] || [ "$tags" = "v1,v2,v3," ]; then pass hs-tags-paging; else fail hs-tags-paging "pages gave '$tags'"; fi

# Referrers: an artifact whose subject is v1.
subject=$(api -o /dev/null -w '%header{docker-content-digest}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/hoststyle/app/manifests/v1")
subject_size=$(api -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/hoststyle/app/manifests/v1" | wc -c)
printf '{}' >"$T/empty"
api -o /dev/null -X POST --data-binary "@$T/empty" "http://$REG/v2/hoststyle/app/blobs/uploads/?digest=$(sha "$T/empty")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s}}' \
    "$(sha "$T/empty")" "$(sha "$T/empty")" "$subject" "$subject_size" >"$T/referrer"
put=$(api -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$T/referrer" "http://$REG/v2/hoststyle/app/manifests/$(sha "$T/referrer")")
if [ "$put" = 201 ] && api "http://$REG/v2/hoststyle/app/referrers/$subject" | grep -q "$(sha "$T/referrer")"; then
    pass hs-referrers
else
    fail hs-referrers "push answered $put"
fi

# podman: push and pull through the host-style name.
if have podman; then
    store=(--root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs)
    if timeout 120 podman "${store[@]}" pull --tls-verify=false "$uri:v1" >"$T/podman.log" 2>&1 &&
        podman "${store[@]}" tag "$uri:v1" "$uri:podman" >>"$T/podman.log" 2>&1 &&
        timeout 120 podman "${store[@]}" push --tls-verify=false "$uri:podman" >>"$T/podman.log" 2>&1 &&
        podman "${store[@]}" rmi "$uri:podman" "$uri:v1" >>"$T/podman.log" 2>&1 &&
        timeout 120 podman "${store[@]}" pull --tls-verify=false "$uri:podman" >>"$T/podman.log" 2>&1; then
        pass hs-podman-push-pull
    else
        fail hs-podman-push-pull "$(tail -1 "$T/podman.log")"
    fi
    # A layer the registry has never seen, so that podman's push uploads it through the
    # host-style upload Location.
    mkdir -p "$T/podman-rootfs" && head -c 65536 /dev/urandom >"$T/podman-rootfs/fresh"
    tar -C "$T/podman-rootfs" -czf "$T/podman-layer.tar.gz" .
    if timeout 120 podman "${store[@]}" import "$T/podman-layer.tar.gz" "$uri:podman-fresh" >>"$T/podman.log" 2>&1 &&
        timeout 120 podman "${store[@]}" push --tls-verify=false "$uri:podman-fresh" >>"$T/podman.log" 2>&1 &&
        podman "${store[@]}" rmi "$uri:podman-fresh" >>"$T/podman.log" 2>&1 &&
        timeout 120 podman "${store[@]}" pull --tls-verify=false "$uri:podman-fresh" >>"$T/podman.log" 2>&1; then
        pass hs-podman-push-new-layer
    else
        fail hs-podman-push-new-layer "$(tail -1 "$T/podman.log")"
    fi
else
    skip hs-podman "podman not installed"
fi

# docker, with its own daemon in this namespace: login to the proxyEndpoint and push to the
# repositoryUri, both exactly as the ECR API gave them.
# shellcheck source=dockerd.sh
. "$here/dockerd.sh"
if ! have dockerd; then
    skip hs-docker "dockerd not installed"
elif ! dockerd_start "$docker_dir" "$REG" "$T/dockerd.log"; then
    skip hs-docker "dockerd would not start: $DOCKERD_WHY"
elif ! printf '%s' "$password" | timeout 60 "$DK" login --username AWS --password-stdin "$endpoint" >"$T/docker.log" 2>&1; then
    fail hs-docker-login "$(tail -1 "$T/docker.log")"
else
    pass hs-docker-login
    if timeout 120 "$DK" import "$T/layer.tar.gz" "$uri:docker" >>"$T/docker.log" 2>&1 &&
        timeout 120 "$DK" push "$uri:docker" >>"$T/docker.log" 2>&1 &&
        "$DK" rmi "$uri:docker" >>"$T/docker.log" 2>&1 &&
        timeout 120 "$DK" pull "$uri:docker" >>"$T/docker.log" 2>&1; then
        pass hs-docker-push-pull
    else
        fail hs-docker-push-pull "$(tail -2 "$T/docker.log" | tr '\n' ' ')"
    fi
    # The same image pushed to a second repository: docker mounts its layer from the first
    # (cross-repository mount, host style) instead of uploading it again.
    if "$DK" tag "$uri:docker" "$REG/hoststyle/docker-copy:v1" >>"$T/docker.log" 2>&1 &&
        timeout 120 "$DK" push "$REG/hoststyle/docker-copy:v1" >"$T/docker-mount.log" 2>&1 &&
        grep -q 'Mounted from hoststyle/app' "$T/docker-mount.log"; then
        pass hs-docker-mount
    else
        fail hs-docker-mount "$(tr '\n' ' ' <"$T/docker-mount.log" | tail -c 300)"
    fi
fi
if [ "$FAILED" != 0 ]; then
    echo "--- berth log (last 20 lines)" >&2
    tail -20 "$T/berth.log" >&2
fi
finish
