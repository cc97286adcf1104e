#!/usr/bin/env bash
# Scanning end to end with real clients, on the Debian bookworm layers of the shared test data:
# advisories built from the base image's pending security fixes are imported with `berth vulndb
# import`; skopeo pushes the base image (one layer) and the upgraded one (both layers) into a
# repository the aws CLI made with scan on push; the aws CLI waits for both scans and reads their
# findings: exactly the pending advisories for the base, none for the upgrade. `berth sbom` lists
# exactly dpkg's own packages (name, version, source, source version). A repository without scan
# on push has no scan to read.
# Usage: scanning.sh BERTH_BINARY. Ends with "N passed, M failed, K skipped".
set -uo pipefail
berth=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=results.sh
. "$here/results.sh"
require scanning aws skopeo jq python3 curl

data_dir=""
for candidate in "$here/../../../shared/testdata/images/debian-bookworm" "$here/../../shared/testdata/images/debian-bookworm"; do
    if [ -d "$candidate" ]; then data_dir=$(cd "$candidate" && pwd); break; fi
done
if [ -z "$data_dir" ]; then
    # Test data, not a client: said plainly, and not counted against a run that requires clients.
    echo "scanning: not run, the Debian layers of the shared test data are not beside the repository"
    finish
fi

T=$(mktemp -d /tmp/scan.XXXXXX)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$T"
}
trap cleanup EXIT
account=123456789012
# shellcheck source=berth.sh
. "$here/berth.sh"
berth_start "$berth" "$T/data" "$account" "$T/berth.log"
export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_ECR="http://$registry" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_MAX_ATTEMPTS=1
password=$(timeout 60 aws ecr get-login-password)

# The advisories: one OSV record per pending fix's id, as Debian publishes them (by source).
python3 - "$data_dir/pending-security-fixes.tsv" "$T/records" "$T/expected-ids" <<'EOF'
import json, os, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8").readlines()[1:]]
by_id = {}
for source, _, fixed, _, vid in rows:
    if vid != "(none)":
        by_id.setdefault(vid, []).append({"package": {"ecosystem": "Debian:12", "name": source},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]})
os.makedirs(sys.argv[2])
for vid, affected in by_id.items():
    with open(os.path.join(sys.argv[2], vid + ".json"), "w") as f:
        json.dump({"id": vid, "modified": "2026-11-01T00:00:00Z", "affected": affected}, f)
with open(sys.argv[3], "w") as f:
    f.write("\n".join(sorted(by_id)) + "\n")
EOF
if BERTH_BOOTSTRAP_ACCOUNT_ID=$account "$berth" vulndb import "$T/records" --data-dir "$T/data" >"$T/import.out" 2>&1; then
    pass scan-vulndb-import
else
    fail scan-vulndb-import "$(head -c 300 "$T/import.out")"
fi

python3 "$here/oci-layout.py" "$data_dir/layer1-debian-bookworm-minbase.tar.gz" "$T/base"
python3 "$here/oci-layout.py" "$data_dir/layer1-debian-bookworm-minbase.tar.gz" \
    "$data_dir/layer2-bookworm-security-upgrade.tar.gz" "$T/upgraded"
timeout 60 aws ecr create-repository --repository-name scan/debian \
    --image-scanning-configuration scanOnPush=true >/dev/null 2>"$T/err"
timeout 60 aws ecr create-repository --repository-name scan/unscanned >/dev/null 2>>"$T/err"
ok=1
for image in base upgraded; do
    timeout 300 skopeo copy --quiet --dest-tls-verify=false --dest-creds "AWS:$password" \
        "oci:$T/$image:v1" "docker://$registry/$account/scan/debian:$image" >"$T/push.err" 2>&1 || ok=0
done
timeout 300 skopeo copy --quiet --dest-tls-verify=false --dest-creds "AWS:$password" \
    "oci:$T/base:v1" "docker://$registry/$account/scan/unscanned:base" >>"$T/push.err" 2>&1 || ok=0
if [ "$ok" = 1 ]; then pass scan-skopeo-push; else fail scan-skopeo-push "$(head -c 300 "$T/push.err" "$T/err")"; fi

findings() { # findings TAG -> the sorted finding names of that image, once its scan is complete
    timeout 180 aws ecr wait image-scan-complete --repository-name scan/debian --image-id "imageTag=$1" &&
        timeout 60 aws ecr describe-image-scan-findings --repository-name scan/debian \
            --image-id "imageTag=$1" --output json >"$T/$1.json" &&
        jq -r '.imageScanFindings.findings[].name' "$T/$1.json" | sort -u
}
if base_ids=$(findings base) && [ "$base_ids" = "$(sed '/^$/d' "$T/expected-ids")" ] &&
    jq -e '.imageScanStatus.status == "COMPLETE"' "$T/base.json" >/dev/null; then
    pass scan-base-has-exactly-its-pending-fixes
else
    fail scan-base-has-exactly-its-pending-fixes "found $(wc -w <<<"${base_ids:-}") ids, expected $(sed '/^$/d' "$T/expected-ids" | wc -l): $(comm -3 <(echo "${base_ids:-}") <(sed '/^$/d' "$T/expected-ids") | head -c 300)"
fi
if upgraded_ids=$(findings upgraded) && [ -z "$upgraded_ids" ] &&
    jq -e '.imageScanStatus.status == "COMPLETE"' "$T/upgraded.json" >/dev/null; then
    pass scan-upgraded-has-none
else
    fail scan-upgraded-has-none "$(head -c 300 <<<"${upgraded_ids:-$(cat "$T/upgraded.json" 2>/dev/null)}")"
fi

# The inventory of each image, as berth sbom lists it, against dpkg's own list.
sbom_matches() { # sbom_matches TAG ORACLE
    local digest
    digest=$(timeout 60 aws ecr describe-images --repository-name scan/debian --image-ids "imageTag=$1" \
        --query 'imageDetails[0].imageDigest' --output text) &&
        BERTH_BOOTSTRAP_ACCOUNT_ID=$account "$berth" sbom "$account/scan/debian@$digest" --data-dir "$T/data" >"$T/$1.sbom" &&
        python3 - "$T/$1.sbom" "$2" <<'EOF'
import json, sys
sbom = json.load(open(sys.argv[1]))
have = set()
for c in sbom["components"]:
    props = {p["name"]: p["value"] for p in c.get("properties", [])}
    source, source_version = props.get("berth:source", f"{c['name']} {c['version']}").split(" ", 1)
    have.add((c["name"], c["version"], source, source_version))
want = {tuple(r[i] for i in (0, 1, 3, 4)) for r in (l.rstrip("\n").split("\t") for l in open(sys.argv[2], encoding="utf-8")) if r[0]}
if have != want:
    print(f"{len(have)} packages, {len(want)} expected; missing {sorted(want - have)[:3]}, extra {sorted(have - want)[:3]}")
    sys.exit(1)
EOF
}
if out=$(sbom_matches base "$data_dir/debian-bookworm.dpkg-query.tsv"); then pass scan-sbom-base-is-dpkgs-list; else fail scan-sbom-base-is-dpkgs-list "$out"; fi
if out=$(sbom_matches upgraded "$data_dir/debian-bookworm-security.dpkg-query.tsv"); then pass scan-sbom-upgraded-is-dpkgs-list; else fail scan-sbom-upgraded-is-dpkgs-list "$out"; fi

# Scan on push off: nothing was scanned, and ECR's answer says so.
if ! timeout 60 aws ecr describe-image-scan-findings --repository-name scan/unscanned --image-id imageTag=base >"$T/off.out" 2>&1 &&
    grep -q ScanNotFoundException "$T/off.out"; then
    pass scan-off-means-no-scan
else
    fail scan-off-means-no-scan "$(head -c 300 "$T/off.out")"
fi
finish
