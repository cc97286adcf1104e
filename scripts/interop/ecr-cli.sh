#!/usr/bin/env bash
# The ECR control plane through the real aws CLI, pointed at berth by AWS_ENDPOINT_URL_ECR.
# Usage: ecr-cli.sh --endpoint http://HOST:PORT --access-key-id ID --secret-file FILE --account ACCOUNT
#                   [--oci-results FILE]
# --oci-results: the OCI clients' PASS/FAIL/SKIP lines; checks of images those clients pushed
# are skipped only when the push itself was skipped there, and fail otherwise.
# Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped".
set -uo pipefail

ENDPOINT="" KEY_ID="" SECRET_FILE="" ACCOUNT="" OCI_RESULTS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --endpoint) ENDPOINT=$2; shift 2 ;;
        --access-key-id) KEY_ID=$2; shift 2 ;;
        --secret-file) SECRET_FILE=$2; shift 2 ;;
        --account) ACCOUNT=$2; shift 2 ;;
        --oci-results) OCI_RESULTS=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
# shellcheck source=results.sh
. "$(dirname "${BASH_SOURCE[0]}")/results.sh"
# skipped_there CHECK: whether the OCI suite reported CHECK as skipped (then checks that need what it
# pushed are skipped too); without the OCI results, they are required.
skipped_there() { [ -n "$OCI_RESULTS" ] && grep -q "^SKIP $1" "$OCI_RESULTS"; }

if ! command -v aws >/dev/null 2>&1; then
    echo "SKIP aws-cli: the aws CLI is not installed (pip install awscli)"
    SKIPPED=1
    finish
fi
export AWS_ACCESS_KEY_ID=$KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL_ECR=$ENDPOINT
AWS_SECRET_ACCESS_KEY=$(cat "$SECRET_FILE")
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_MAX_ATTEMPTS=1
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

# expect_error NAME EXCEPTION CMD...: the command fails with that exception in its message.
expect_error() {
    local name=$1 exception=$2; shift 2
    if timeout 60 "$@" >"$OUT" 2>&1; then
        fail "$name" "succeeded; expected $exception"
    elif grep -q "($exception)" "$OUT"; then
        pass "$name"
    else
        fail "$name" "expected $exception, got: $(tr '\n' ' ' <"$OUT" | head -c 300)"
    fi
}

repo=cli/python-base-$$
if timeout 60 aws ecr create-repository --repository-name "$repo" --image-tag-mutability IMMUTABLE \
    --image-scanning-configuration scanOnPush=true --tags Key=team,Value=ml >"$OUT" 2>&1 &&
    jq -e --arg u "${ENDPOINT#http://}/$ACCOUNT/$repo" \
        '.repository.repositoryUri == $u and .repository.imageTagMutability == "IMMUTABLE"
         and .repository.imageScanningConfiguration.scanOnPush == true
         and .repository.encryptionConfiguration.encryptionType == "AES256"' "$OUT" >/dev/null; then
    pass cli-create-repository
else
    fail cli-create-repository "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi

if timeout 60 aws ecr describe-repositories --repository-names "$repo" >"$OUT" 2>&1 &&
    jq -e --arg r "$repo" '.repositories[0].repositoryName == $r' "$OUT" >/dev/null; then
    pass cli-describe-repositories
else
    fail cli-describe-repositories "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi

# Pagination: the CLI follows nextToken by itself with --page-size.
for i in 1 2 3 4 5 6 7; do
    timeout 60 aws ecr create-repository --repository-name "cli/page-$$-$i" >/dev/null 2>&1
done
if timeout 60 aws ecr describe-repositories --page-size 3 >"$OUT" 2>&1 &&
    [ "$(jq "[.repositories[].repositoryName | select(startswith(\"cli/page-$$-\"))] | length" "$OUT")" = 7 ] &&
    [ "$(jq '[.repositories[].repositoryName] | length == (unique | length)' "$OUT")" = true ]; then
    pass cli-paginate-describe-repositories
else
    fail cli-paginate-describe-repositories "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi

expect_error cli-repository-not-found RepositoryNotFoundException \
    aws ecr describe-repositories --repository-names "cli/missing-$$"
expect_error cli-repository-already-exists RepositoryAlreadyExistsException \
    aws ecr create-repository --repository-name "$repo"
expect_error cli-invalid-name InvalidParameterException \
    aws ecr create-repository --repository-name "Upper/Case"
expect_error cli-invalid-mutability InvalidParameterException \
    aws ecr create-repository --repository-name "cli/bad-$$" --image-tag-mutability SOMETIMES
expect_error cli-bad-secret InvalidSignatureException \
    env AWS_SECRET_ACCESS_KEY=not-the-secret aws ecr describe-repositories
expect_error cli-unknown-key UnrecognizedClientException \
    env AWS_ACCESS_KEY_ID=AKIAUNKNOWNKEY000001 aws ecr describe-repositories
expect_error cli-unsupported-operation UnsupportedOperationException \
    aws ecr describe-pull-through-cache-rules

# Lifecycle policies: ECR's JSON from a file, read back as given, refused with ECR's words.
POLICY=$(mktemp)
trap 'rm -f "$OUT" "$POLICY"' EXIT
cat >"$POLICY" <<'JSON'
{"rules": [{"rulePriority": 1, "description": "keep the last 10 release images",
  "selection": {"tagStatus": "tagged", "tagPrefixList": ["v", "release"], "countType": "imageCountMoreThan",
                "countNumber": 10}, "action": {"type": "expire"}},
 {"rulePriority": 2, "description": "expire untagged images after 14 days",
  "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
  "action": {"type": "expire"}}]}
JSON
expect_error cli-lifecycle-policy-not-found LifecyclePolicyNotFoundException \
    aws ecr get-lifecycle-policy --repository-name "$repo"
if timeout 60 aws ecr put-lifecycle-policy --repository-name "$repo" --lifecycle-policy-text "file://$POLICY" \
    >"$OUT" 2>&1 && timeout 60 aws ecr get-lifecycle-policy --repository-name "$repo" >"$OUT" 2>&1 &&
    jq -e --rawfile p "$POLICY" '.lifecyclePolicyText == $p and (has("lastEvaluatedAt") | not)' "$OUT" >/dev/null; then
    pass cli-put-and-get-lifecycle-policy
else
    fail cli-put-and-get-lifecycle-policy "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi
expect_error cli-lifecycle-policy-invalid InvalidParameterException \
    aws ecr put-lifecycle-policy --repository-name "$repo" \
    --lifecycle-policy-text "$(sed 's/"countNumber": 10/"countNumber": 0/' "$POLICY")"
if timeout 60 aws ecr delete-lifecycle-policy --repository-name "$repo" >"$OUT" 2>&1 &&
    jq -e --rawfile p "$POLICY" '.lifecyclePolicyText == $p' "$OUT" >/dev/null; then
    pass cli-delete-lifecycle-policy
else
    fail cli-delete-lifecycle-policy "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi

# A preview of the policy against the (empty) repository, read back once the server evaluated it.
expect_error cli-lifecycle-preview-not-found LifecyclePolicyPreviewNotFoundException \
    aws ecr get-lifecycle-policy-preview --repository-name "$repo"
if timeout 60 aws ecr start-lifecycle-policy-preview --repository-name "$repo" \
    --lifecycle-policy-text "file://$POLICY" >"$OUT" 2>&1 && jq -e '.status == "IN_PROGRESS"' "$OUT" >/dev/null &&
    timeout 60 aws ecr wait lifecycle-policy-preview-complete --repository-name "$repo" >"$OUT" 2>&1 &&
    timeout 60 aws ecr get-lifecycle-policy-preview --repository-name "$repo" >"$OUT" 2>&1 &&
    jq -e '.status == "COMPLETE" and .previewResults == [] and .summary.expiringImageTotalCount == 0' "$OUT" >/dev/null; then
    pass cli-lifecycle-policy-preview
else
    fail cli-lifecycle-policy-preview "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi
expect_error cli-update-image-storage-class-not-found ImageNotFoundException \
    aws ecr update-image-storage-class --repository-name "$repo" --image-id imageTag=missing \
    --target-storage-class ARCHIVE

if timeout 60 aws ecr get-login-password >"$OUT" 2>&1 && [ "$(wc -l <"$OUT")" = 1 ] && [ -s "$OUT" ]; then
    pass cli-get-login-password
else
    fail cli-get-login-password "$(head -c 300 "$OUT")"
fi

# Errors the served operations answer, as the CLI prints them, and that the refused calls
# changed nothing.
err_repo=cli/errors-$$
err_arn=arn:aws:ecr:us-east-1:$ACCOUNT:repository/$err_repo
timeout 60 aws ecr create-repository --repository-name "$err_repo" >/dev/null 2>&1
expect_error cli-kms-missing-key KmsException \
    aws ecr create-repository --repository-name "cli/kms-$$" --encryption-configuration encryptionType=KMS,kmsKey=alias/none
expect_error cli-kms-created-nothing RepositoryNotFoundException \
    aws ecr describe-repositories --repository-names "cli/kms-$$"
expect_error cli-invalid-tag-parameter InvalidTagParameterException \
    aws ecr tag-resource --resource-arn "$err_arn" --tags Key=aws:reserved,Value=x
# shellcheck disable=SC2046 # one argument per tag
expect_error cli-too-many-tags TooManyTagsException \
    aws ecr create-repository --repository-name "cli/tags-$$" --tags $(for i in $(seq 51); do echo "Key=k$i,Value=v"; done)
if timeout 60 aws ecr list-tags-for-resource --resource-arn "$err_arn" >"$OUT" 2>&1 &&
    jq -e '.tags | length == 0' "$OUT" >/dev/null; then
    pass cli-refused-tags-changed-nothing
else
    fail cli-refused-tags-changed-nothing "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi
expect_error cli-repository-policy-not-found RepositoryPolicyNotFoundException \
    aws ecr get-repository-policy --repository-name "$err_repo"
expect_error cli-registry-policy-not-found RegistryPolicyNotFoundException aws ecr get-registry-policy
expect_error cli-template-not-found TemplateNotFoundException \
    aws ecr delete-repository-creation-template --prefix "none-$$/"
expect_error cli-template-validation ValidationException \
    aws ecr create-repository-creation-template --prefix "Bad Prefix" --applied-for CREATE_ON_PUSH

# The layer API: an empty upload, a part that skips ahead, a digest that does not match.
printf 'a layer through the aws CLI' >"$OUT.layer"
layer_digest=sha256:$(sha256sum "$OUT.layer" | cut -d' ' -f1)
upload=$(timeout 60 aws ecr initiate-layer-upload --repository-name "$err_repo" --query uploadId --output text 2>"$OUT")
expect_error cli-empty-upload EmptyUploadException \
    aws ecr complete-layer-upload --repository-name "$err_repo" --upload-id "$upload" --layer-digests "$layer_digest"
expect_error cli-invalid-layer-part InvalidLayerPartException \
    aws ecr upload-layer-part --repository-name "$err_repo" --upload-id "$upload" --part-first-byte 100 \
    --part-last-byte 126 --layer-part-blob "fileb://$OUT.layer"
timeout 60 aws ecr upload-layer-part --repository-name "$err_repo" --upload-id "$upload" --part-first-byte 0 \
    --part-last-byte 26 --layer-part-blob "fileb://$OUT.layer" >/dev/null 2>&1
expect_error cli-invalid-layer InvalidLayerException \
    aws ecr complete-layer-upload --repository-name "$err_repo" --upload-id "$upload" \
    --layer-digests "sha256:$(printf other | sha256sum | cut -d' ' -f1)"
if timeout 60 aws ecr complete-layer-upload --repository-name "$err_repo" --upload-id "$upload" \
    --layer-digests "$layer_digest" >"$OUT" 2>&1 &&
    jq -e --arg d "$layer_digest" '.layerDigest == $d' "$OUT" >/dev/null; then
    pass cli-complete-layer-upload-after-refusals
else
    fail cli-complete-layer-upload-after-refusals "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi
expect_error cli-layer-inaccessible LayerInaccessibleException \
    aws ecr get-download-url-for-layer --repository-name "$err_repo" --layer-digest "$layer_digest"
rm -f "$OUT.layer"
timeout 60 aws ecr delete-repository --repository-name "$err_repo" --force >/dev/null 2>&1

# The delete must succeed, and then the repository must be gone.
if ! timeout 60 aws ecr delete-repository --repository-name "$repo" >"$OUT" 2>&1; then
    fail cli-delete-repository "$(tr '\n' ' ' <"$OUT" | head -c 300)"
elif timeout 60 aws ecr describe-repositories --repository-names "$repo" >"$OUT" 2>&1; then
    fail cli-delete-repository "still described after delete"
elif grep -q "(RepositoryNotFoundException)" "$OUT"; then
    pass cli-delete-repository
else
    fail cli-delete-repository "describe after delete: $(tr '\n' ' ' <"$OUT" | head -c 300)"
fi

# Images the OCI clients pushed, seen through the API: describe, list, batch-get, put, delete.
img_repo=interop/skopeo-v2s2
if timeout 60 aws ecr describe-images --repository-name "$img_repo" >"$OUT" 2>&1 &&
    jq -e '.imageDetails | length > 0 and all(.imageSizeInBytes > 0 and (.imageTags | length) > 0)' "$OUT" >/dev/null; then
    pass cli-describe-images
    if timeout 60 aws ecr batch-get-image --repository-name "$img_repo" --image-ids imageTag=v1 \
        --query 'images[0].imageManifest' --output text >"$OUT.manifest" 2>&1 &&
        timeout 60 aws ecr put-image --repository-name "$img_repo" --image-tag cli-copy \
            --image-manifest "file://$OUT.manifest" >"$OUT" 2>&1 &&
        timeout 60 aws ecr list-images --repository-name "$img_repo" >"$OUT" 2>&1 &&
        jq -e '[.imageIds[].imageTag] | index("cli-copy") != null' "$OUT" >/dev/null; then
        pass cli-batch-get-put-list-image
    else
        fail cli-batch-get-put-list-image "$(tr '\n' ' ' <"$OUT" | head -c 300)"
    fi
    if timeout 60 aws ecr batch-delete-image --repository-name "$img_repo" --image-ids imageTag=cli-copy >"$OUT" 2>&1 &&
        jq -e '.imageIds[0].imageTag == "cli-copy" and (.failures | length) == 0' "$OUT" >/dev/null; then
        pass cli-batch-delete-image
    else
        fail cli-batch-delete-image "$(tr '\n' ' ' <"$OUT" | head -c 300)"
    fi
    rm -f "$OUT.manifest"
elif skipped_there skopeo-push-v2s2; then
    echo "SKIP cli-images: skopeo did not run, so nothing was pushed to $img_repo"
    SKIPPED=$((SKIPPED + 1))
else
    fail cli-describe-images "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi

# Scans of images skopeo and docker pushed: started by request, waited for with the CLI's own
# waiter, read back in ECR's shape.
for pushed in "skopeo interop/skopeo-v2s2 skopeo-push-v2s2" "docker interop/docker docker-push"; do
    read -r client scan_repo oci_check <<<"$pushed"
    if skipped_there "$oci_check"; then
        echo "SKIP cli-scan-$client: $client did not push, so there is nothing to scan"
        SKIPPED=$((SKIPPED + 1))
        continue
    fi
    if timeout 60 aws ecr start-image-scan --repository-name "$scan_repo" --image-id imageTag=v1 >"$OUT" 2>&1 &&
        jq -e '.imageScanStatus.status == "IN_PROGRESS"' "$OUT" >/dev/null &&
        timeout 120 aws ecr wait image-scan-complete --repository-name "$scan_repo" --image-id imageTag=v1 >"$OUT" 2>&1 &&
        timeout 60 aws ecr describe-image-scan-findings --repository-name "$scan_repo" --image-id imageTag=v1 >"$OUT" 2>&1 &&
        jq -e '.imageScanStatus.status == "COMPLETE" and (.imageScanFindings.findings | type) == "array"
               and (.imageScanFindings | has("imageScanCompletedAt"))' "$OUT" >/dev/null; then
        pass "cli-scan-$client"
    else
        fail "cli-scan-$client" "$(tr '\n' ' ' <"$OUT" | head -c 300)"
    fi
done
# A registry rule: repositories its filter names scan on push; the CLI reads both views back.
rules='[{"scanFrequency":"SCAN_ON_PUSH","repositoryFilters":[{"filter":"cli-scan-*","filterType":"WILDCARD"}]}]'
if timeout 60 aws ecr put-registry-scanning-configuration --scan-type BASIC --rules "$rules" >"$OUT" 2>&1 &&
    timeout 60 aws ecr get-registry-scanning-configuration >"$OUT" 2>&1 &&
    jq -e '.scanningConfiguration.rules[0].repositoryFilters[0].filter == "cli-scan-*"' "$OUT" >/dev/null &&
    timeout 60 aws ecr create-repository --repository-name "cli-scan-$$" >/dev/null 2>&1 &&
    timeout 60 aws ecr batch-get-repository-scanning-configuration --repository-names "cli-scan-$$" >"$OUT" 2>&1 &&
    jq -e '.scanningConfigurations[0].scanFrequency == "SCAN_ON_PUSH"' "$OUT" >/dev/null; then
    pass cli-registry-scanning-configuration
else
    fail cli-registry-scanning-configuration "$(tr '\n' ' ' <"$OUT" | head -c 300)"
fi
timeout 60 aws ecr delete-repository --repository-name "cli-scan-$$" >/dev/null 2>&1
if ! skipped_there skopeo-push-v2s2; then
    expect_error cli-scan-quota LimitExceededException \
        aws ecr start-image-scan --repository-name interop/skopeo-v2s2 --image-id imageTag=v1
fi

# Repositories the OCI suite pushed into are not empty: delete needs --force.
if skipped_there skopeo-push-oci; then
    echo "SKIP cli-delete-non-empty: skopeo did not run, so nothing was pushed to interop/skopeo-oci"
    SKIPPED=$((SKIPPED + 1))
else
    expect_error cli-delete-non-empty RepositoryNotEmptyException \
        aws ecr delete-repository --repository-name interop/skopeo-oci
    if timeout 60 aws ecr delete-repository --repository-name interop/skopeo-oci --force >"$OUT" 2>&1; then
        pass cli-delete-force
    else
        fail cli-delete-force "$(tr '\n' ' ' <"$OUT" | head -c 300)"
    fi
fi
finish
