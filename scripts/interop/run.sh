#!/usr/bin/env bash
# Real-client interop suite for an OCI registry: skopeo, podman, buildah,
# docker (own daemon) and oras-py push and pull through the registry, over
# plain HTTP with HTTP Basic auth.
#
# Usage:
#   scripts/interop/run.sh --registry HOST:PORT --username USER \
#       --password-file FILE --namespace NS [--allow-no-referrers] [--keep]
#
#   NS                    path prefix of every repository used, e.g.
#                         000000000000/interop (repositories NS/skopeo-oci, ...)
#   --allow-no-referrers  report a registry without the referrers API as SKIP
#                         rather than FAIL (for registries older than OCI 1.1)
#   --keep                keep the temporary directory (logs) for debugging
#
# Prints one line per check: "PASS name", "FAIL name: reason" or
# "SKIP name: why", then "N passed, M failed, K skipped". Exits non-zero iff
# a check failed. Clients are installed by scripts/interop/install.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
ALPINE_TARBALL=${INTEROP_ALPINE_TARBALL:-$REPO_ROOT/../shared/testdata/images/alpine/alpine-minirootfs-3.20.3-x86_64.tar.gz}

# Timeouts (seconds) so that no client can hang the suite.
T_QUICK=60   # login, inspect, list, delete, small pushes
T_COPY=300   # image copies
T_DAEMON=60  # dockerd start
# shellcheck source=dockerd.sh
. "$HERE/dockerd.sh"

REGISTRY="" USERNAME="" PASSWORD_FILE="" NS="" ALLOW_NO_REFERRERS=0 KEEP=0
usage() {
    sed -n '6,16p' "$0" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --registry) REGISTRY=${2:-}; shift 2 ;;
        --username) USERNAME=${2:-}; shift 2 ;;
        --password-file) PASSWORD_FILE=${2:-}; shift 2 ;;
        --namespace) NS=${2:-}; shift 2 ;;
        --allow-no-referrers) ALLOW_NO_REFERRERS=1; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) usage ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
if [ -z "$REGISTRY" ] || [ -z "$USERNAME" ] || [ -z "$PASSWORD_FILE" ] || [ -z "$NS" ]; then usage; fi
[ -r "$PASSWORD_FILE" ] || { echo "cannot read password file $PASSWORD_FILE" >&2; exit 2; }
NS=${NS%/}
PASSWORD=$(cat "$PASSWORD_FILE") # $(...) drops the trailing newline
BASE="$REGISTRY/$NS"

# ---------------------------------------------------------------------------
# Temp dir, cleanup and result bookkeeping.

# A short path, as the docker daemon's unix sockets live below it (108-byte
# limit), and lowercase, as podman names an image pulled from an oci: layout
# after its path. mkdir is atomic, so an existing directory is never reused.
T=""
for _ in 1 2 3 4 5 6 7 8; do
    candidate=/tmp/interop.$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')
    if mkdir -m 700 "$candidate" 2>/dev/null; then T=$candidate; break; fi
done
[ -n "$T" ] || { echo "cannot create a temporary directory in /tmp" >&2; exit 2; }
LOGS=$T/logs
mkdir -p "$LOGS" "$T/tmp"
export TMPDIR=$T/tmp # big blob temp files of the clients land here too

cleanup() {
    local rc=$?
    set +e
    dockerd_stop "$T/docker"
    # Storage drivers and dockerd may leave mounts below $T; unmount deepest first.
    awk -v t="$T" '$5 == t || index($5, t "/") == 1 {print $5}' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
    if [ "$KEEP" = 1 ]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=results.sh
. "$(dirname "${BASH_SOURCE[0]}")/results.sh"

# run LOGNAME SECONDS CMD...: run CMD with a timeout, output appended to a log.
run() {
    local log=$LOGS/$1.log secs=$2
    shift 2
    echo "+ $*" >>"$log"
    local rc=0
    timeout --kill-after=10 "$secs" "$@" >>"$log" 2>&1 || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "timed out after ${secs}s: $1 $2" >>"$log"
    fi
    return "$rc"
}

# capture LOGNAME SECONDS CMD...: like run, but CMD's stdout is printed
# (for the caller to parse) and only its stderr goes to the log.
capture() {
    local log=$LOGS/$1.log secs=$2
    shift 2
    echo "+ $*" >>"$log"
    local rc=0
    timeout --kill-after=10 "$secs" "$@" 2>>"$log" || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "timed out after ${secs}s: $1 $2" >>"$log"
    fi
    return "$rc"
}

# why LOGNAME: the last meaningful line of a log, as a one-line reason. Long
# client errors keep their start (what failed) and end (the server's answer).
why() {
    local line
    line=$(grep -v '^+ ' "$LOGS/$1.log" 2>/dev/null | grep -v '^[[:space:]]*$' | tail -1 | tr -s '[:space:]' ' ')
    line=${line:-no output}
    if [ ${#line} -gt 320 ]; then
        line="${line:0:120} ... ${line: -190}"
    fi
    printf '%s' "$line"
}

have() { command -v "$1" >/dev/null 2>&1; }

# Credentials in the auth.json format shared by skopeo, podman, buildah and
# (as a docker config.json) oras-py, so no password is on a command line.
AUTH_B64=$(printf '%s:%s' "$USERNAME" "$PASSWORD" | base64 -w0)
AUTHFILE=$T/auth.json
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGISTRY" "$AUTH_B64" >"$AUTHFILE"
chmod 600 "$AUTHFILE"
export REGISTRY_AUTH_FILE=$AUTHFILE

# curl reads the Authorization header from a private config file.
CURLRC=$T/curlrc
printf 'header = "Authorization: Basic %s"\n' "$AUTH_B64" >"$CURLRC"
chmod 600 "$CURLRC"
api() { curl -sS --max-time 30 -K "$CURLRC" "$@"; }

# sha256 of a file, as "sha256:<hex>".
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }

# ---------------------------------------------------------------------------
# Source image: an OCI layout on disk built from a real alpine rootfs layer,
# with config and manifest written here so every digest is known.

SRC=$T/src-oci
build_source_image() {
    local layer=$T/layer.tar.gz
    if [ -f "$ALPINE_TARBALL" ]; then
        cp "$ALPINE_TARBALL" "$layer"
    else
        # No test data: a small layer of our own still exercises every path.
        echo "# $ALPINE_TARBALL not found; using a generated layer" >&2
        mkdir -p "$T/rootfs/etc"
        echo "interop test layer" >"$T/rootfs/etc/interop-release"
        tar -C "$T/rootfs" -czf "$layer" .
    fi
    python3 - "$layer" "$SRC" <<'PY'
import gzip, hashlib, json, os, sys

layer_path, out = sys.argv[1], sys.argv[2]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)

def put(data):
    hexd = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, hexd), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + hexd, "size": len(data)}

layer = open(layer_path, "rb").read()
diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
layer_desc = put(layer)
config = {
    "created": "2024-09-06T00:00:00Z",
    "architecture": "amd64",
    "os": "linux",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    "history": [{"created": "2024-09-06T00:00:00Z",
                 "created_by": "ADD alpine-minirootfs / # interop suite"}],
}
config_desc = put(json.dumps(config, separators=(",", ":")).encode())
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_desc}],
}
manifest_desc = put(json.dumps(manifest, separators=(",", ":")).encode())
index = {
    "schemaVersion": 2,
    "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc,
                   "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump(index, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(out, "..", "src-digests"), "w") as f:
    f.write(f"{layer_desc['digest']} {diff_id}\n")
PY
    read -r SRC_LAYER SRC_DIFF_ID <"$T/src-digests"
    SRC_TARBALL=$layer
}

# verify_copy LOGNAME oci|dir DIR: the image copied out to DIR (an OCI layout
# or a skopeo dir:) has exactly the source layer, byte for byte (its blob
# hashes to the source digest), and a config whose diff_ids name it.
verify_copy() {
    python3 - "$2" "$3" "$SRC_LAYER" "$SRC_DIFF_ID" >>"$LOGS/$1.log" 2>&1 <<'PY'
import hashlib, json, os, sys

kind, d, want_layer, want_diff = sys.argv[1:5]

def blob(digest):
    hexd = digest.split(":", 1)[1]
    return os.path.join(d, "blobs", "sha256", hexd) if kind == "oci" else os.path.join(d, hexd)

def sha(path):
    return "sha256:" + hashlib.sha256(open(path, "rb").read()).hexdigest()

if kind == "oci":
    idx = json.load(open(os.path.join(d, "index.json")))
    man = json.load(open(blob(idx["manifests"][0]["digest"])))
else:
    man = json.load(open(os.path.join(d, "manifest.json")))
layers = [l["digest"] for l in man["layers"]]
if layers != [want_layer]:
    sys.exit(f"layers {layers} differ from source [{want_layer}]")
if sha(blob(want_layer)) != want_layer:
    sys.exit(f"layer blob does not hash to {want_layer}")
if sha(blob(man["config"]["digest"])) != man["config"]["digest"]:
    sys.exit("config blob does not hash to its digest")
diff_ids = json.load(open(blob(man["config"]["digest"])))["rootfs"]["diff_ids"]
if diff_ids != [want_diff]:
    sys.exit(f"config diff_ids {diff_ids} differ from source [{want_diff}]")
PY
}

# ---------------------------------------------------------------------------
# skopeo

SKOPEO_OCI_OK=0
skopeo_checks() {
    local names=(skopeo-push-oci skopeo-push-v2s2 skopeo-pull-oci skopeo-pull-dir
        skopeo-copy-registry skopeo-inspect skopeo-list-tags skopeo-delete) n
    if ! have skopeo; then
        for n in "${names[@]}"; do skip "$n" "skopeo not installed"; done
        return
    fi
    local sk=(skopeo --command-timeout "${T_COPY}s")
    local mt raw

    # Push in both manifest formats; the stored manifest must keep the format.
    for fmt in oci v2s2; do
        n=skopeo-push-$fmt
        if run "$n" "$T_COPY" "${sk[@]}" copy --dest-tls-verify=false --format "$fmt" \
            "oci:$SRC:v1" "docker://$BASE/skopeo-$fmt:v1" &&
            raw=$(capture "$n" "$T_QUICK" "${sk[@]}" inspect --tls-verify=false --raw \
                "docker://$BASE/skopeo-$fmt:v1") &&
            mt=$(jq -r .mediaType <<<"$raw" 2>>"$LOGS/$n.log"); then
            case "$fmt:$mt" in
                oci:application/vnd.oci.image.manifest.v1+json) pass "$n"; SKOPEO_OCI_OK=1 ;;
                v2s2:application/vnd.docker.distribution.manifest.v2+json) pass "$n" ;;
                *) fail "$n" "stored manifest has mediaType '$mt'" ;;
            esac
        else
            fail "$n" "$(why "$n")"
        fi
    done

    # Copy back out and compare layer digests with the source.
    n=skopeo-pull-oci
    if run "$n" "$T_COPY" "${sk[@]}" copy --src-tls-verify=false \
        "docker://$BASE/skopeo-oci:v1" "oci:$T/out-oci:v1" &&
        verify_copy "$n" oci "$T/out-oci"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
    fi
    n=skopeo-pull-dir
    if run "$n" "$T_COPY" "${sk[@]}" copy --src-tls-verify=false \
        "docker://$BASE/skopeo-v2s2:v1" "dir:$T/out-dir" &&
        verify_copy "$n" dir "$T/out-dir"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
    fi

    # Registry to registry: a second tag, and a second repository (where the
    # client may use a cross-repository blob mount).
    n=skopeo-copy-registry
    if run "$n" "$T_COPY" "${sk[@]}" copy --src-tls-verify=false --dest-tls-verify=false \
        "docker://$BASE/skopeo-oci:v1" "docker://$BASE/skopeo-oci:v2" &&
        run "$n" "$T_COPY" "${sk[@]}" copy --src-tls-verify=false --dest-tls-verify=false \
            "docker://$BASE/skopeo-oci:v1" "docker://$BASE/skopeo-mount:v1"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
    fi

    n=skopeo-inspect
    local info
    if info=$(capture "$n" "$T_QUICK" "${sk[@]}" inspect --tls-verify=false "docker://$BASE/skopeo-oci:v1"); then
        if [ "$(jq -r '.Layers[0]' <<<"$info")" = "$SRC_LAYER" ] &&
            [ "$(jq -r .Architecture <<<"$info")" = amd64 ] &&
            [ "$(jq -r .Os <<<"$info")" = linux ]; then
            pass "$n"
        else
            fail "$n" "unexpected inspect output: $(jq -c '{Layers,Architecture,Os}' <<<"$info" 2>&1 | cut -c1-200)"
        fi
    else
        fail "$n" "$(why "$n")"
    fi

    n=skopeo-list-tags
    local tags
    if tags=$(capture "$n" "$T_QUICK" "${sk[@]}" list-tags --tls-verify=false "docker://$BASE/skopeo-oci" |
        jq -r '.Tags | sort | join(",")' 2>>"$LOGS/$n.log"); then
        case ",$tags," in
            *,v1,*v2,*) pass "$n" ;;
            *) fail "$n" "expected tags v1 and v2, got '$tags'" ;;
        esac
    else
        fail "$n" "$(why "$n")"
    fi

    # Delete in a repository of its own, then the tag must be gone.
    n=skopeo-delete
    if run "$n" "$T_COPY" "${sk[@]}" copy --dest-tls-verify=false \
        "oci:$SRC:v1" "docker://$BASE/skopeo-delete:v1" &&
        run "$n" "$T_QUICK" "${sk[@]}" delete --tls-verify=false "docker://$BASE/skopeo-delete:v1"; then
        # Only this inspect's own output decides, not what earlier commands logged.
        local after=$LOGS/$n.after-delete.log
        if timeout --kill-after=10 "$T_QUICK" "${sk[@]}" inspect --tls-verify=false --raw \
            "docker://$BASE/skopeo-delete:v1" >"$after" 2>&1; then
            fail "$n" "manifest still readable after delete"
        elif grep -qiE 'manifest unknown|not found|404' "$after"; then
            pass "$n"
        else
            fail "$n" "after delete, inspect failed oddly: $(tail -1 "$after" | tr -s '[:space:]' ' ')"
        fi
        cat "$after" >>"$LOGS/$n.log"
    else
        fail "$n" "$(why "$n")"
    fi
}

# ---------------------------------------------------------------------------
# podman: its own storage (vfs) under $T, so nothing is left behind.

podman_checks() {
    local names=(podman-login podman-push podman-pull) n
    if ! have podman; then
        for n in "${names[@]}"; do skip "$n" "podman not installed"; done
        return
    fi
    local pm=(podman --root "$T/podman/root" --runroot "$T/podman/run" --tmpdir "$T/podman/tmp"
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend none)
    local pauth=$T/podman-auth.json img="$BASE/podman:v1" id1 id2

    n=podman-login
    if timeout "$T_QUICK" "${pm[@]}" login --tls-verify=false --authfile "$pauth" \
        --username "$USERNAME" --password-stdin "$REGISTRY" <<<"$PASSWORD" >>"$LOGS/$n.log" 2>&1 &&
        grep -q "\"$REGISTRY\"" "$pauth"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        # Without a login the rest would only repeat the same failure.
        skip podman-push "podman login failed"
        skip podman-pull "podman login failed"
        return
    fi

    n=podman-push
    if id1=$(timeout "$T_COPY" "${pm[@]}" pull -q "oci:$SRC:v1" 2>>"$LOGS/$n.log") &&
        run "$n" "$T_QUICK" "${pm[@]}" tag "$id1" "$img" &&
        run "$n" "$T_COPY" "${pm[@]}" push --tls-verify=false --authfile "$pauth" "$img"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        skip podman-pull "podman push failed"
        return
    fi

    n=podman-pull
    if run "$n" "$T_QUICK" "${pm[@]}" rmi -f "$id1" &&
        run "$n" "$T_COPY" "${pm[@]}" pull --tls-verify=false --authfile "$pauth" "$img" &&
        id2=$("${pm[@]}" image inspect --format '{{.Id}}' "$img" 2>>"$LOGS/$n.log"); then
        if [ "${id2#sha256:}" = "${id1#sha256:}" ]; then
            pass "$n"
        else
            fail "$n" "image id changed: pushed $id1, pulled $id2"
        fi
    else
        fail "$n" "$(why "$n")"
    fi
}

# ---------------------------------------------------------------------------
# buildah: build from scratch, push, read the file back from the layer.

buildah_checks() {
    local names=(buildah-build buildah-push buildah-roundtrip) n
    if ! have buildah; then
        for n in "${names[@]}"; do skip "$n" "buildah not installed"; done
        return
    fi
    local bh=(buildah --root "$T/buildah/root" --runroot "$T/buildah/run" --storage-driver vfs)
    local img="$BASE/buildah:v1" ctr token
    token="interop $(date +%s) $RANDOM"
    echo "$token" >"$T/hello.txt"

    n=buildah-build
    if run "$n" "$T_QUICK" "${bh[@]}" from --name interop-scratch scratch &&
        ctr=interop-scratch &&
        run "$n" "$T_QUICK" "${bh[@]}" copy "$ctr" "$T/hello.txt" /hello.txt &&
        run "$n" "$T_QUICK" "${bh[@]}" config --cmd '["/hello.txt"]' "$ctr" &&
        run "$n" "$T_COPY" "${bh[@]}" commit "$ctr" "localhost/interop-buildah:v1"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        skip buildah-push "buildah build failed"
        skip buildah-roundtrip "buildah build failed"
        return
    fi

    n=buildah-push
    if run "$n" "$T_COPY" "${bh[@]}" push --tls-verify=false --authfile "$AUTHFILE" \
        "localhost/interop-buildah:v1" "docker://$img"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        skip buildah-roundtrip "buildah push failed"
        return
    fi

    n=buildah-roundtrip
    if ! have skopeo; then
        skip "$n" "skopeo not installed (used to pull the image back)"
        return
    fi
    local got
    if run "$n" "$T_COPY" skopeo copy --src-tls-verify=false "docker://$img" "dir:$T/buildah-out" &&
        got=$(python3 - "$T/buildah-out" 2>>"$LOGS/$n.log" <<'PY'
import json, os, sys, tarfile
d = sys.argv[1]
man = json.load(open(os.path.join(d, "manifest.json")))
for l in man["layers"]:
    with tarfile.open(os.path.join(d, l["digest"].split(":", 1)[1]), "r:*") as t:
        for m in t.getmembers():
            if m.name.lstrip("./") == "hello.txt":
                sys.stdout.write(t.extractfile(m).read().decode())
                sys.exit(0)
sys.exit("hello.txt not found in any layer")
PY
        ); then
        if [ "$got" = "$token" ]; then
            pass "$n"
        else
            fail "$n" "hello.txt holds '$got', expected '$token'"
        fi
    else
        fail "$n" "$(why "$n")"
    fi
}

# ---------------------------------------------------------------------------
# oras-py: plain artifact push/pull, then an artifact with artifactType and a
# subject, found again through the referrers API.

ORAS_PY=$T/oras-client.py
cat >"$ORAS_PY" <<'PY'
import os, sys
import oras.client, oras.oci

ARTIFACT_TYPE = os.environ["ORAS_ARTIFACT_TYPE"]

class Client(oras.client.OrasClient):
    """oras-py has no artifactType option; add it to the manifest it builds.
    Its default config blob is already "{}", so only the media type changes
    to the OCI 1.1 empty descriptor that goes with an artifactType."""
    artifact_type = None

    def upload_manifest(self, manifest, container):
        if self.artifact_type:
            manifest["artifactType"] = self.artifact_type
            manifest["config"]["mediaType"] = "application/vnd.oci.empty.v1+json"
        return super().upload_manifest(manifest, container)

def client(registry):
    c = Client(hostname=registry, insecure=True, auth_backend="basic")
    user, password = os.environ["ORAS_USER"], os.environ["ORAS_PASS"]
    c.auth.set_basic_auth(user, password)
    return c

def digest_of(resp):
    return resp.headers.get("Docker-Content-Digest")

cmd, registry = sys.argv[1], sys.argv[2]
c = client(registry)
if cmd == "push":
    # push REGISTRY REF FILE
    ref, path = sys.argv[3], sys.argv[4]
    os.chdir(os.path.dirname(path))
    r = c.push(target=ref, files=[os.path.basename(path) + ":text/plain"], quiet=True)
    print(r.status_code, digest_of(r) or "")
elif cmd == "pull":
    # pull REGISTRY REF OUTDIR
    ref, outdir = sys.argv[3], sys.argv[4]
    for f in c.pull(target=ref, outdir=outdir):
        print(f)
elif cmd == "push-referrer":
    # push-referrer REGISTRY REF FILE SUBJECT_MEDIATYPE SUBJECT_DIGEST SUBJECT_SIZE
    ref, path, smt, sdig, ssize = sys.argv[3:8]
    os.chdir(os.path.dirname(path))
    c.artifact_type = ARTIFACT_TYPE
    subject = oras.oci.Subject(mediaType=smt, digest=sdig, size=int(ssize))
    r = c.push(target=ref, files=[os.path.basename(path) + ":text/plain"], subject=subject, quiet=True)
    print(r.status_code, digest_of(r) or "", r.headers.get("OCI-Subject", ""))
else:
    sys.exit("unknown command " + cmd)
PY

oras_checks() {
    local names=(oras-push oras-pull oras-push-subject oras-referrers) n
    if ! python3 -c 'import oras.client' >/dev/null 2>&1; then
        for n in "${names[@]}"; do skip "$n" "python oras (oras-py) not installed"; done
        return
    fi
    export ORAS_USER=$USERNAME ORAS_PASS=$PASSWORD
    export ORAS_ARTIFACT_TYPE=application/vnd.berth.interop.note.v1
    mkdir -p "$T/oras/in" "$T/oras/out"
    local note="$T/oras/in/note.txt"
    echo "interop artifact $(date +%s) $RANDOM" >"$note"
    # oras-py also reads credentials from the docker config; point it at ours.
    local -x DOCKER_CONFIG=$T/oras/docker-config
    mkdir -p "$DOCKER_CONFIG" && cp "$AUTHFILE" "$DOCKER_CONFIG/config.json"

    n=oras-push
    if run "$n" "$T_QUICK" python3 "$ORAS_PY" push "$REGISTRY" "$BASE/oras:v1" "$note"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
    fi

    n=oras-pull
    if run "$n" "$T_QUICK" python3 "$ORAS_PY" pull "$REGISTRY" "$BASE/oras:v1" "$T/oras/out"; then
        if cmp -s "$note" "$T/oras/out/note.txt"; then
            pass "$n"
        else
            fail "$n" "pulled file differs from pushed file"
        fi
    else
        fail "$n" "$(why "$n")"
    fi

    # Subject: the skopeo OCI image if it got pushed, else the plain artifact.
    local subj_ref="$BASE/skopeo-oci:v1" subj_repo="$NS/skopeo-oci"
    if [ "$SKOPEO_OCI_OK" != 1 ]; then
        subj_ref="$BASE/oras:v1" subj_repo="$NS/oras"
    fi
    local subj_tag=${subj_ref##*:} hdrs smt sdig ssize
    hdrs=$(api -o /dev/null -D - -I \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "http://$REGISTRY/v2/$subj_repo/manifests/$subj_tag" 2>&1 || true)
    smt=$(awk -F': ' 'tolower($1)=="content-type"{print $2}' <<<"$hdrs" | tr -d '\r')
    sdig=$(awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' <<<"$hdrs" | tr -d '\r')
    ssize=$(awk -F': ' 'tolower($1)=="content-length"{print $2}' <<<"$hdrs" | tr -d '\r')

    n=oras-push-subject
    local ref_out="" art_dig=""
    if [ -z "$sdig" ] || [ -z "$ssize" ]; then
        fail "$n" "could not HEAD subject $subj_ref: $(head -1 <<<"$hdrs" | tr -d '\r')"
    # A referrer lives in its subject's repository: that is where the referrers API looks.
    elif run "$n" "$T_QUICK" python3 "$ORAS_PY" push-referrer "$REGISTRY" "${subj_ref%:*}:note" \
        "$note" "$smt" "$sdig" "$ssize"; then
        ref_out=$(tail -1 "$LOGS/$n.log")
        art_dig=$(cut -d' ' -f2 <<<"$ref_out")
        [ -n "$art_dig" ] || art_dig=$(api -o /dev/null -D - -I \
            -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
            "http://$REGISTRY/v2/$subj_repo/manifests/note" |
            awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}' | tr -d '\r')
        pass "$n"
    else
        fail "$n" "$(why "$n")"
    fi

    n=oras-referrers
    if [ -z "$art_dig" ]; then
        skip "$n" "no artifact with a subject was pushed"
        return
    fi
    local code body="$T/oras/referrers.json"
    code=$(api -o "$body" -w '%{http_code}' \
        "http://$REGISTRY/v2/$subj_repo/referrers/$sdig" 2>>"$LOGS/$n.log" || true)
    if [ "$code" = 200 ] &&
        jq -e --arg d "$art_dig" --arg t "$ORAS_ARTIFACT_TYPE" \
            '.manifests | any(.digest == $d and .artifactType == $t)' "$body" >/dev/null 2>&1; then
        pass "$n"
    elif [ "$code" = 404 ] && [ "$ALLOW_NO_REFERRERS" = 1 ] &&
        [ -z "$(cut -d' ' -f3 <<<"$ref_out")" ]; then
        skip "$n" "registry has no referrers API (404, and no OCI-Subject header on the push)"
    else
        fail "$n" "GET /v2/$subj_repo/referrers/$sdig: HTTP $code $(head -c 200 "$body" 2>/dev/null | tr -s '[:space:]' ' ')"
    fi
}

# ---------------------------------------------------------------------------
# docker: a private dockerd (vfs, no networking) under $T.

# docker_gone CLIENT IMAGE LOGNAME: the image is no longer in the daemon.
docker_gone() {
    if "$1" image inspect "$2" >/dev/null 2>&1; then
        echo "image $2 still present after rmi" >>"$LOGS/$3.log"
        return 1
    fi
}

docker_checks() {
    local names=(docker-login docker-import docker-push docker-pull) n
    if ! have dockerd; then
        for n in "${names[@]}"; do skip "$n" "dockerd not installed"; done
        return
    fi
    if ! dockerd_start "$T/docker" "$REGISTRY" "$LOGS/dockerd.log"; then
        for n in "${names[@]}"; do skip "$n" "dockerd would not start: $DOCKERD_WHY"; done
        return
    fi
    local dk=$DK

    local img="$BASE/docker:v1" id1 id2
    n=docker-login
    if timeout "$T_QUICK" "$dk" login --username "$USERNAME" --password-stdin "$REGISTRY" \
        <<<"$PASSWORD" >>"$LOGS/$n.log" 2>&1; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        for n in docker-import docker-push docker-pull; do skip "$n" "docker login failed"; done
        return
    fi

    n=docker-import
    if run "$n" "$T_COPY" "$dk" import "$SRC_TARBALL" "$img" &&
        id1=$("$dk" image inspect --format '{{.Id}}' "$img" 2>>"$LOGS/$n.log"); then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        skip docker-push "docker import failed"
        skip docker-pull "docker import failed"
        return
    fi

    n=docker-push
    if run "$n" "$T_COPY" "$dk" push "$img"; then
        pass "$n"
    else
        fail "$n" "$(why "$n")"
        skip docker-pull "docker push failed"
        return
    fi

    n=docker-pull
    if run "$n" "$T_QUICK" "$dk" rmi "$img" &&
        docker_gone "$dk" "$img" "$n" &&
        run "$n" "$T_COPY" "$dk" pull "$img" &&
        id2=$("$dk" image inspect --format '{{.Id}}' "$img" 2>>"$LOGS/$n.log"); then
        if [ "$id1" = "$id2" ]; then
            pass "$n"
        else
            fail "$n" "image id changed: imported $id1, pulled $id2"
        fi
    else
        fail "$n" "$(why "$n")"
    fi
}

# ---------------------------------------------------------------------------

# The registry must answer and accept the credentials before anything else.
code=$(api -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" 2>"$LOGS/ping.log" || true)
if [ "$code" = 200 ]; then
    pass registry-ping
else
    fail registry-ping "GET http://$REGISTRY/v2/ with credentials: HTTP ${code:-000} $(cat "$LOGS/ping.log")"
fi

if [ "${code:-000}" = 000 ]; then
    # Nothing answers at all: every client would only wait for its timeout.
    echo "# registry unreachable: no client check was run"
    echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
    exit 1
fi

build_source_image
skopeo_checks
podman_checks
buildah_checks
oras_checks
docker_checks

echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
