#!/usr/bin/env bash
# Lifecycle policies end to end with real clients: skopeo pushes 30 images with mixed tags
# (`v*`, `release*`, others) and re-tags `latest` so that older images lose their last tag, plus
# an index of two platform images and a signature referring to it. The platform team's default
# policy (keep the last 10 `v*` images and the last 10 `release*` images, one rule per prefix, and
# expire untagged images 14 days after push) is previewed with the aws CLI, then run with
# `berth lifecycle run --now` 15 days ahead: exactly the expected images remain, the index, its
# children and its signature together; `berth gc` then gives back the expired images' bytes.
# Usage: lifecycle.sh BERTH_BINARY. Ends with "N passed, M failed, K skipped".
set -uo pipefail
berth=$1
# shellcheck source=results.sh
. "$(dirname "${BASH_SOURCE[0]}")/results.sh"
require lifecycle aws skopeo jq python3 curl

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
data=$work/data
account=123456789012
repo=platform/app
# shellcheck source=berth.sh
. "$(dirname "${BASH_SOURCE[0]}")/berth.sh"
berth_start "$berth" "$data" "$account" "$work/berth.log"
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_ECR="http://$registry" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_MAX_ATTEMPTS=1
password=$(timeout 60 aws ecr get-login-password)
cli() { BERTH_BOOTSTRAP_ACCOUNT_ID=$account "$berth" "$@" --data-dir "$data"; }

# The images, as an OCI layout: each with a layer of its own (256 KiB of random bytes in a tar.gz),
# named by the tag it is pushed under; latest-1..4 are four different images all pushed as
# `latest`. The index has two platform images. Prints {name: digest} and each image's bytes.
python3 - "$work/layout" >"$work/images.json" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
root = sys.argv[1]
os.makedirs(f"{root}/blobs/sha256")
def blob(data, media_type):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{root}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": f"sha256:{d}", "size": len(data)}
def image(name, arch="amd64"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = os.urandom(256 * 1024)
        info = tarfile.TarInfo(f"opt/{name}/payload"); info.size = len(data); t.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()
    layer = blob(gzip.compress(buf.getvalue(), mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = blob(json.dumps({"architecture": arch, "os": "linux", "config": {"Labels": {"image": name}},
                              "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode(),
                  "application/vnd.oci.image.config.v1+json")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config, "layers": [layer]}).encode()
    desc = blob(manifest, "application/vnd.oci.image.manifest.v1+json")
    return desc, layer["size"] + config["size"] + len(manifest), layer["size"]
names = ([f"v{n}" for n in range(1, 13)] + [f"release-{n}" for n in range(1, 12)]
         + [f"dev-{n}" for n in range(1, 4)] + [f"latest-{n}" for n in range(1, 5)])
index_entries, out, sizes = [], {}, {}
for name in names:
    desc, total, layer = image(name)
    index_entries.append({**desc, "annotations": {"org.opencontainers.image.ref.name": name}})
    out[name] = desc["digest"]
    sizes[name] = {"total": total, "layer": layer}
children = []
for arch in ["amd64", "arm64"]:
    desc, _, _ = image(f"multi-{arch}", arch)
    children.append({**desc, "platform": {"architecture": arch, "os": "linux"}})
    out[f"multi-{arch}"] = desc["digest"]
multi = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": children}).encode(), "application/vnd.oci.image.index.v1+json")
index_entries.append({**multi, "annotations": {"org.opencontainers.image.ref.name": "release-multi"}})
out["release-multi"] = multi["digest"]
with open(f"{root}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": index_entries}, f)
with open(f"{root}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
print(json.dumps({"digests": out, "sizes": sizes, "multi_size": multi["size"]}))
PY
digest() { jq -r --arg n "$1" '.digests[$n]' "$work/images.json"; }

# 30 pushes in order (the count rules keep the newest), then the index with its platforms.
pushed=0
push() { # push LAYOUT_NAME TAG [--all]
    if timeout 120 skopeo copy --quiet --dest-tls-verify=false --dest-creds "AWS:$password" ${3:-} \
        "oci:$work/layout:$1" "docker://$registry/$account/$repo:$2" >"$work/push.err" 2>&1; then
        pushed=$((pushed + 1))
    else
        fail "lifecycle-push-$1" "$(tr '\n' ' ' <"$work/push.err" | head -c 300)"
    fi
}
for name in $(jq -r '.digests | keys_unsorted[]' "$work/images.json" | grep -v '^multi\|^release-multi$'); do
    case "$name" in latest-*) push "$name" latest ;; *) push "$name" "$name" ;; esac
done
push release-multi release-multi --all
[ "$pushed" = 31 ] && pass lifecycle-skopeo-pushes-30-images-and-an-index

# A signature of the index, as a signing tool pushes it: a manifest whose subject is the index.
empty=$(printf '{}' | sha256sum | cut -d' ' -f1)
curl -fs -u "AWS:$password" -X POST -H 'Content-Type: application/octet-stream' --data-binary '{}' \
    "http://$registry/v2/$account/$repo/blobs/uploads/?digest=sha256:$empty" >/dev/null
signature=$(jq -cn --arg e "sha256:$empty" --arg s "$(digest release-multi)" \
    --argjson n "$(jq '.multi_size' "$work/images.json")" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
      config: {mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2},
      layers: [{mediaType: "application/vnd.oci.empty.v1+json", digest: $e, size: 2}],
      subject: {mediaType: "application/vnd.oci.image.index.v1+json", digest: $s, size: $n}}')
signature_digest=sha256:$(printf '%s' "$signature" | sha256sum | cut -d' ' -f1)
if curl -fs -u "AWS:$password" -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "$signature" "http://$registry/v2/$account/$repo/manifests/$signature_digest" >/dev/null; then
    pass lifecycle-signature-pushed
else
    fail lifecycle-signature-pushed "the signature manifest was refused"
fi

# The default policy, one rule per prefix: a tagPrefixList matches an image only if every prefix does.
cat >"$work/policy.json" <<'JSON'
{"rules": [
 {"rulePriority": 1, "description": "keep the last 10 v* images",
  "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan", "countNumber": 10},
  "action": {"type": "expire"}},
 {"rulePriority": 2, "description": "keep the last 10 release* images",
  "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"], "countType": "imageCountMoreThan", "countNumber": 10},
  "action": {"type": "expire"}},
 {"rulePriority": 3, "description": "expire untagged images 14 days after push",
  "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
  "action": {"type": "expire"}}]}
JSON
timeout 60 aws ecr put-lifecycle-policy --repository-name "$repo" --lifecycle-policy-text "file://$work/policy.json" >/dev/null

# The preview, now: the count rules act (v1, v2, release-1, release-2); nothing untagged is 14 days old.
timeout 60 aws ecr start-lifecycle-policy-preview --repository-name "$repo" >"$work/start.json" 2>&1
for _ in $(seq 60); do
    timeout 60 aws ecr get-lifecycle-policy-preview --repository-name "$repo" >"$work/preview.json" 2>&1
    jq -e '.status == "IN_PROGRESS"' "$work/preview.json" >/dev/null 2>&1 || break
    sleep 0.5
done
expected_preview=$(printf '%s\n' "$(digest v1)" "$(digest v2)" "$(digest release-1)" "$(digest release-2)" | sort | jq -Rsc 'split("\n") | map(select(. != ""))')
if jq -e --argjson want "$expected_preview" \
    '.status == "COMPLETE" and ([.previewResults[].imageDigest] | sort) == $want
     and all(.previewResults[]; .action.type == "EXPIRE") and .summary.expiringImageTotalCount == 4' \
    "$work/preview.json" >/dev/null 2>&1; then
    pass lifecycle-aws-cli-preview
else
    fail lifecycle-aws-cli-preview "$(tr '\n' ' ' <"$work/preview.json" | head -c 400)"
fi

# The run, 15 days from now.
before=$(du -sb "$data/blobs" | cut -f1)
later=$(date -u -d '+15 days' +%Y-%m-%dT%H:%M:%SZ)
cli lifecycle run --repository "$account/$repo" --now "$later" >"$work/run.out" 2>&1
if grep -q "did expire 7 and archive 0 of 34 images" "$work/run.out"; then
    pass lifecycle-run-15-days-ahead
else
    fail lifecycle-run-15-days-ahead "$(tr '\n' ' ' <"$work/run.out" | head -c 400)"
fi

# Exactly the expected images remain.
timeout 60 aws ecr describe-images --repository-name "$repo" >"$work/after.json"
expected=$(jq -c --arg sig "$signature_digest" \
    '[.digests | to_entries[] | select(.key | test("^(v1|v2|release-1|release-2|latest-1|latest-2|latest-3)$") | not)
      | .value] + [$sig] | sort' "$work/images.json")
if jq -e --argjson want "$expected" '([.imageDetails[].imageDigest] | sort) == $want' "$work/after.json" >/dev/null; then
    pass lifecycle-exactly-the-expected-images-remain
else
    fail lifecycle-exactly-the-expected-images-remain \
        "want $expected, have $(jq -c '[.imageDetails[] | {d: .imageDigest, t: .imageTags}]' "$work/after.json" | head -c 600)"
fi
tags=$(jq -c '[.imageDetails[].imageTags // [] | .[]] | sort' "$work/after.json")
want_tags=$(jq -nc '[range(3;13) | "v\(.)"] + [range(3;12) | "release-\(.)"] + ["release-multi", "dev-1", "dev-2", "dev-3", "latest"] | sort')
if [ "$tags" = "$want_tags" ]; then pass lifecycle-remaining-tags; else fail lifecycle-remaining-tags "want $want_tags, have $tags"; fi

# The index, its platforms and its signature survive together and still pull.
if timeout 120 skopeo copy --quiet --src-tls-verify=false --src-creds "AWS:$password" --all \
    "docker://$registry/$account/$repo:release-multi" "oci:$work/pulled:multi" >"$work/pull.err" 2>&1 &&
    curl -fs -u "AWS:$password" "http://$registry/v2/$account/$repo/referrers/$(digest release-multi)" |
    jq -e --arg s "$signature_digest" '[.manifests[].digest] == [$s]' >/dev/null; then
    pass lifecycle-index-children-and-signature-pull
else
    fail lifecycle-index-children-and-signature-pull "$(tr '\n' ' ' <"$work/pull.err" | head -c 300)"
fi

# Garbage collection gives back what the expired images held (their layers are their own).
cli gc --grace-seconds 0 --output json >"$work/gc.json" 2>&1
after=$(du -sb "$data/blobs" | cut -f1)
shrink=$((before - after))
expired_layers=$(jq '[.sizes | to_entries[] | select(.key | test("^(v1|v2|release-1|release-2|latest-1|latest-2|latest-3)$")) | .value.layer] | add' "$work/images.json")
expired_total=$(jq '[.sizes | to_entries[] | select(.key | test("^(v1|v2|release-1|release-2|latest-1|latest-2|latest-3)$")) | .value.total] | add' "$work/images.json")
echo "lifecycle: the blob store shrank by $shrink bytes; the expired images' layers are $expired_layers bytes ($expired_total with configs and manifests); gc: $(cat "$work/gc.json")"
# The sealed format adds a header and an authentication tag per chunk to each of the 21 blobs.
if [ "$shrink" -ge "$expired_layers" ] && [ "$shrink" -le $((expired_total + expired_total / 50 + 21 * 4096)) ]; then
    pass lifecycle-gc-gives-the-space-back
else
    fail lifecycle-gc-gives-the-space-back "shrank by $shrink bytes for $expired_layers..$expired_total expected"
fi
if timeout 120 skopeo inspect --tls-verify=false --creds "AWS:$password" \
    "docker://$registry/$account/$repo:v12" >/dev/null 2>"$work/inspect.err"; then
    pass lifecycle-kept-images-pull-after-gc
else
    fail lifecycle-kept-images-pull-after-gc "$(head -c 300 "$work/inspect.err")"
fi
finish
