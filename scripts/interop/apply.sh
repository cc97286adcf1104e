#!/usr/bin/env bash
# `berth apply` with the real clients around it: the first example alone (checked with the aws
# CLI, then re-applied as no change), then the platform team's module blocks (the
# cross-account and custom-lifecycle examples as teams write them) applied to a fresh berth with
# the owner's credentials file, then checked with the aws CLI (repositories, tags, policies,
# lifecycle policies), re-applied as no change; the team publishes with skopeo; the dev and prod
# accounts pull with docker (or skopeo without a daemon) and cannot push; a third account cannot
# pull; a statement a person adds with the aws CLI survives a re-apply.
# Usage: apply.sh BERTH_BINARY. Ends with "N passed, M failed, K skipped".
set -uo pipefail
berth=$1
# shellcheck source=results.sh
. "$(dirname "${BASH_SOURCE[0]}")/results.sh"
require apply aws skopeo jq python3

# shellcheck source=dockerd.sh
. "$(dirname "${BASH_SOURCE[0]}")/dockerd.sh"

work=$(mktemp -d)
docker_dir=$(mktemp -d /tmp/apdk.XXXXXX)
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
for account in 111111111111 222222222222 333333333333; do
    berth_admin account create "$account" --name "acct-$account" >/dev/null
    berth_admin key create --account "$account" --output credentials --profile "a$account" >>"$work/accounts"
done

# The owner, as the README has it: the credentials file berth wrote, its profile, the endpoint.
owner() {
    AWS_SHARED_CREDENTIALS_FILE=$data/bootstrap-credentials AWS_PROFILE=berth AWS_CONFIG_FILE=/dev/null \
        AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL_ECR="http://$registry" AWS_MAX_ATTEMPTS=1 timeout 120 "$@"
}
# as ACCOUNT CMD...: the account's root key from its credentials-file profile.
as() {
    local account=$1; shift
    AWS_SHARED_CREDENTIALS_FILE=$work/accounts AWS_PROFILE=a$account AWS_CONFIG_FILE=/dev/null \
        AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL_ECR="http://$registry" AWS_MAX_ATTEMPTS=1 timeout 120 "$@"
}

# The first example on its own: a single-account repository, checked with the aws CLI.
cat >"$work/single.hcl" <<'HCL'
module "shared_ecr" {
  source = "./build/ecr"

  name                 = "mlops/python-base"
  image_tag_mutability = "IMMUTABLE"  # Prevent tag overwrite
  scan_on_push         = true

  tags = {
    Purpose     = "Shared Base Images"
    ManagedBy   = "Terraform"
    Environment = "shared"
  }
}
HCL
owner "$berth" apply -f "$work/single.hcl" >"$work/single.out" 2>&1
single=$(owner aws ecr describe-repositories --repository-names mlops/python-base --output json 2>&1 |
    jq -c '.repositories[0] | [.imageTagMutability, .imageScanningConfiguration.scanOnPush, .encryptionConfiguration.encryptionType]')
single_tags=$(owner aws ecr list-tags-for-resource \
    --resource-arn arn:aws:ecr:us-east-1:123456789012:repository/mlops/python-base --output json 2>&1 |
    jq -c '.tags | sort_by(.Key) | map(.Key + "=" + .Value)')
single_rules=$(owner aws ecr get-lifecycle-policy --repository-name mlops/python-base --output json 2>&1 |
    jq -c '.lifecyclePolicyText | fromjson | .rules | length')
if grep -q "Applied: 1 created, 0 updated, 0 deleted." "$work/single.out" &&
    [ "$single" = '["IMMUTABLE",true,"KMS"]' ] &&
    [ "$single_tags" = '["Environment=shared","ManagedBy=Terraform","Purpose=Shared Base Images"]' ] &&
    [ "$single_rules" = 3 ] &&
    owner "$berth" apply -f "$work/single.hcl" 2>&1 | grep -q "No changes"; then
    pass apply-single-account-example
else
    fail apply-single-account-example "$single $single_tags rules $single_rules: $(tr '\n' ' ' <"$work/single.out")"
fi

# The cross-account and custom-lifecycle examples in one file: the first repository is updated
# to the cross-account block, the second is created.
cat >"$work/registry.hcl" <<'HCL'
module "shared_ecr" {
  source = "./build/ecr"

  name = "mlops/python-base"

  # Allow dev and prod accounts to pull
  allowed_account_ids = [
    "111111111111",  # dev account
    "222222222222",  # prod account
  ]

  tags = {
    Purpose = "Cross-Account Shared Registry"
  }
}

module "training_ecr" {
  source = "./build/ecr"

  name = "mlops/training-image"

  lifecycle_policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "Keep last 30 production images"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["prod-"]
          countType     = "imageCountMoreThan"
          countNumber   = 30
        }
        action = {
          type = "expire"
        }
      }
    ]
  })
}
HCL

if owner "$berth" apply -f "$work/registry.hcl" >"$work/apply.out" 2>&1 &&
    grep -q "Applied: 1 created, 1 updated, 0 deleted." "$work/apply.out" &&
    grep -q "mlops/python-base: repository_url = $registry/123456789012/mlops/python-base" "$work/apply.out"; then
    pass apply-examples
else
    fail apply-examples "$(tail -5 "$work/apply.out" | tr '\n' ' ')"
fi

# What the aws CLI describes is what the file says.
owner aws ecr describe-repositories --output json >"$work/repos.json" 2>&1
shared_arn=$(jq -r '.repositories[] | select(.repositoryName == "mlops/python-base") | .repositoryArn' "$work/repos.json")
tags=$(owner aws ecr list-tags-for-resource --resource-arn "$shared_arn" --output json 2>&1 | jq -c '.tags')
policy=$(owner aws ecr get-repository-policy --repository-name mlops/python-base --output json 2>&1 | jq -r '.policyText')
principals=$(jq -c '[.Statement[] | select(.Sid == "BerthApplyAllowedAccountsPull") | .Principal.AWS[]] | sort' <<<"$policy" 2>/dev/null)
actions=$(jq -c '[.Statement[] | select(.Sid == "BerthApplyAllowedAccountsPull") | .Action[]] | sort' <<<"$policy" 2>/dev/null)
if [ "$(jq -r '[.repositories[].repositoryName] | sort | join(",")' "$work/repos.json")" = "mlops/python-base,mlops/training-image" ] &&
    [ "$tags" = '[{"Key":"Purpose","Value":"Cross-Account Shared Registry"}]' ] &&
    [ "$principals" = '["arn:aws:iam::111111111111:root","arn:aws:iam::222222222222:root"]' ] &&
    [ "$actions" = '["ecr:BatchCheckLayerAvailability","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]' ]; then
    pass apply-cli-describes-repositories-tags-policy
else
    fail apply-cli-describes-repositories-tags-policy "tags $tags, principals $principals, actions $actions"
fi
default_rules=$(owner aws ecr get-lifecycle-policy --repository-name mlops/python-base --output json 2>&1 |
    jq -c '.lifecyclePolicyText | fromjson | [.rules[] | [.rulePriority, .selection.tagStatus, (.selection.tagPrefixList // []), .selection.countType, .selection.countNumber]]')
custom=$(owner aws ecr get-lifecycle-policy --repository-name mlops/training-image --output json 2>&1 |
    jq -c '.lifecyclePolicyText | fromjson | .rules[0] | [.description, .selection.tagPrefixList, .selection.countNumber]')
if [ "$default_rules" = '[[1,"tagged",["v"],"imageCountMoreThan",10],[2,"tagged",["release"],"imageCountMoreThan",10],[3,"untagged",[],"sinceImagePushed",14]]' ] &&
    [ "$custom" = '["Keep last 30 production images",["prod-"],30]' ]; then
    pass apply-cli-describes-lifecycle-policies
else
    fail apply-cli-describes-lifecycle-policies "default $default_rules, custom $custom"
fi

if owner "$berth" apply -f "$work/registry.hcl" >"$work/again.out" 2>&1 && grep -q "No changes" "$work/again.out"; then
    pass apply-reapply-no-change
else
    fail apply-reapply-no-change "$(tr '\n' ' ' <"$work/again.out")"
fi

# The platform team publishes with skopeo.
mkdir -p "$work/layer" && echo "python base" >"$work/layer/base-release"
tar -C "$work/layer" -czf "$work/layer.tar.gz" base-release
python3 "$(dirname "${BASH_SOURCE[0]}")/oci-layout.py" "$work/layer.tar.gz" "$work/src"
image=$registry/123456789012/mlops/python-base
owner_password=$(owner aws ecr get-login-password)
if timeout 120 skopeo copy --dest-tls-verify=false --dest-creds "AWS:$owner_password" \
    "oci:$work/src:v1" "docker://$image:v1.0.0" >"$work/out" 2>&1; then
    pass apply-owner-publishes
else
    fail apply-owner-publishes "$(tail -3 "$work/out" | tr '\n' ' ')"
fi

# The named accounts pull and cannot push; docker when a daemon can run, else skopeo.
if command -v dockerd >/dev/null 2>&1 && dockerd_start "$docker_dir" "$registry" "$work/dockerd.log"; then
    for account in 111111111111 222222222222; do
        "$DK" logout "$registry" >/dev/null 2>&1
        if ! as "$account" aws ecr get-login-password |
            timeout 60 "$DK" login --username AWS --password-stdin "$registry" >"$work/out" 2>&1; then
            fail "apply-$account-docker-pull" "login: $(tr '\n' ' ' <"$work/out")"
            continue
        fi
        "$DK" rmi -f "$image:v1.0.0" >/dev/null 2>&1
        if timeout 120 "$DK" pull "$image:v1.0.0" >"$work/out" 2>&1; then
            pass "apply-$account-docker-pull"
        else
            fail "apply-$account-docker-pull" "$(tail -3 "$work/out" | tr '\n' ' ')"
        fi
        "$DK" tag "$image:v1.0.0" "$image:from-$account" >/dev/null 2>&1
        if timeout 120 "$DK" push "$image:from-$account" >"$work/out" 2>&1; then
            fail "apply-$account-docker-cannot-push" "account $account pushed"
        elif grep -qi "denied\|403" "$work/out"; then
            pass "apply-$account-docker-cannot-push"
        else
            fail "apply-$account-docker-cannot-push" "unexpected: $(tail -2 "$work/out" | tr '\n' ' ')"
        fi
    done
else
    echo "docker cannot run here (${DOCKERD_WHY:-dockerd is not installed}); the pulls and pushes go through skopeo"
    for account in 111111111111 222222222222; do
        password=$(as "$account" aws ecr get-login-password)
        if timeout 120 skopeo copy --src-tls-verify=false --src-creds "AWS:$password" \
            "docker://$image:v1.0.0" "dir:$work/pulled-$account" >"$work/out" 2>&1; then
            pass "apply-$account-skopeo-pull"
        else
            fail "apply-$account-skopeo-pull" "$(tail -3 "$work/out" | tr '\n' ' ')"
        fi
        if timeout 120 skopeo copy --dest-tls-verify=false --dest-creds "AWS:$password" \
            "oci:$work/src:v1" "docker://$image:from-$account" >"$work/out" 2>&1; then
            fail "apply-$account-skopeo-cannot-push" "account $account pushed"
        elif grep -qi "denied\|403" "$work/out"; then
            pass "apply-$account-skopeo-cannot-push"
        else
            fail "apply-$account-skopeo-cannot-push" "unexpected: $(tail -2 "$work/out" | tr '\n' ' ')"
        fi
    done
fi

# An account the file does not name cannot pull.
other_password=$(as 333333333333 aws ecr get-login-password)
if [ -z "$other_password" ]; then
    fail apply-other-cannot-pull "account 333333333333 got no registry password to try with"
elif timeout 120 skopeo copy --src-tls-verify=false --src-creds "AWS:$other_password" \
    "docker://$image:v1.0.0" "dir:$work/stolen" >"$work/out" 2>&1; then
    fail apply-other-cannot-pull "account 333333333333 pulled"
elif grep -q "333333333333:root is not authorized to perform: ecr:BatchGetImage" "$work/out"; then
    pass apply-other-cannot-pull
else
    fail apply-other-cannot-pull "refused, but not by the registry's denial: $(tail -2 "$work/out" | tr '\n' ' ')"
fi

# A person adds a statement with the aws CLI; re-applying changes nothing and keeps it.
extended=$(jq -c '.Statement += [{"Sid":"AuditorsList","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":["ecr:ListImages"]}]' <<<"$policy")
owner aws ecr set-repository-policy --repository-name mlops/python-base --policy-text "$extended" >/dev/null 2>&1
owner "$berth" apply -f "$work/registry.hcl" >"$work/third.out" 2>&1
kept=$(owner aws ecr get-repository-policy --repository-name mlops/python-base --output json 2>&1 |
    jq -r '.policyText | fromjson | [.Statement[].Sid] | sort | join(",")')
if grep -q "No changes" "$work/third.out" && [ "$kept" = "AuditorsList,BerthApplyAllowedAccountsPull" ]; then
    pass apply-keeps-a-persons-statement
else
    fail apply-keeps-a-persons-statement "statements $kept: $(tr '\n' ' ' <"$work/third.out")"
fi
finish
