#!/usr/bin/env python3
"""The ECR control plane through boto3, pointed at berth by endpoint_url.

Usage: ecr_boto3.py ENDPOINT ACCESS_KEY_ID SECRET_FILE ACCOUNT [DATA_DIR]
DATA_DIR is berth's data directory; with it, a storage fault is staged to check ServerException.
Prints PASS/FAIL/SKIP lines and ends with "N passed, M failed, K skipped".
"""
import datetime
import os
import sys

counts = {"passed": 0, "failed": 0, "skipped": 0}


def result(kind, name, why=""):
    counts[kind] += 1
    print(f"{ {'passed': 'PASS', 'failed': 'FAIL', 'skipped': 'SKIP'}[kind] } {name}{': ' + why if why else ''}")


def finish():
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    sys.exit(1 if counts["failed"] else 0)


try:
    import boto3
    import botocore.auth
    import botocore.config
    from botocore.exceptions import ClientError
except ImportError:
    result("skipped", "boto3", "boto3 is not installed (pip install boto3)")
    finish()

endpoint, key_id, secret_file, account = sys.argv[1:5]
data_dir = sys.argv[5] if len(sys.argv) > 5 else None
secret = open(secret_file).read().strip()
# One attempt per call: standard mode retries 500s and LimitExceededException, which these checks
# provoke on purpose. (In the `retries` dict, `max_attempts` counts retries; `total_max_attempts`
# counts attempts.)
config = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})


def client(key=key_id, secret_key=secret):
    return boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret_key, config=config)


ecr = client()
pid = os.getpid()


def expect_error(name, exception, call):
    try:
        call()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        if code == exception:
            result("passed", name)
        else:
            result("failed", name, f"expected {exception}, got {code}: {e}")
    except Exception as e:  # noqa: BLE001 - any other failure is a failed check
        result("failed", name, f"expected {exception}, got {type(e).__name__}: {e}")
    else:
        result("failed", name, f"succeeded; expected {exception}")


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition, why="the expected condition did not hold"):
    # An explicit check, not `assert`, which Python drops under PYTHONOPTIMIZE.
    if not condition:
        raise CheckFailed(why)


def check(name, call):
    try:
        call()
        result("passed", name)
    except Exception as e:  # noqa: BLE001
        result("failed", name, f"{type(e).__name__}: {e}")


repo = f"boto3/base-{pid}"


def create():
    r = ecr.create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": True},
                              tags=[{"Key": "team", "Value": "ml"}])["repository"]
    expect(r["repositoryName"] == repo and r["registryId"] == account, r)
    expect(isinstance(r["createdAt"], datetime.datetime), r["createdAt"])
    expect(r["repositoryArn"] == f"arn:aws:ecr:us-east-1:{account}:repository/{repo}", r)


check("boto3-create-repository", create)


def paginate():
    for i in range(11):
        ecr.create_repository(repositoryName=f"boto3/page-{pid}-{i:02d}")
    names = []
    for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 4}):
        expect(len(page["repositories"]) <= 4, len(page["repositories"]))
        names += [r["repositoryName"] for r in page["repositories"]]
    mine = [n for n in names if n.startswith(f"boto3/page-{pid}-")]
    expect(mine == sorted(mine) and len(mine) == 11, mine)
    expect(len(names) == len(set(names)), "a repository was listed twice")


check("boto3-paginate-describe-repositories", paginate)


def token():
    data = ecr.get_authorization_token()["authorizationData"][0]
    import base64
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    expect(user == "AWS" and password and ":" not in password)
    expect(data["expiresAt"] > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=11))


check("boto3-get-authorization-token", token)

expect_error("boto3-repository-not-found", "RepositoryNotFoundException",
             lambda: ecr.describe_repositories(repositoryNames=[f"boto3/missing-{pid}"]))
expect_error("boto3-already-exists", "RepositoryAlreadyExistsException",
             lambda: ecr.create_repository(repositoryName=repo))
expect_error("boto3-invalid-max-results", "InvalidParameterException",
             lambda: ecr.describe_repositories(maxResults=1001))
expect_error("boto3-forged-next-token", "InvalidParameterException",
             lambda: ecr.describe_repositories(nextToken="eyJ4IjoxfQ.AAAA"))
expect_error("boto3-bad-secret", "InvalidSignatureException",
             lambda: client(secret_key="wrong").describe_repositories())
expect_error("boto3-unknown-key", "UnrecognizedClientException",
             lambda: client(key="AKIAUNKNOWNKEY000001").describe_repositories())


def skewed(minutes):
    """A client whose clock is off by `minutes`."""
    real = botocore.auth.datetime.datetime

    class Skewed(real):
        @classmethod
        def utcnow(cls):
            return real.utcnow() + datetime.timedelta(minutes=minutes)

        @classmethod
        def now(cls, tz=None):
            return real.now(tz) + datetime.timedelta(minutes=minutes)

    botocore.auth.datetime.datetime = Skewed
    try:
        return client().describe_repositories(maxResults=1)
    finally:
        botocore.auth.datetime.datetime = real


check("boto3-clock-skew-10-minutes-accepted", lambda: skewed(10))
expect_error("boto3-clock-skew-20-minutes-refused", "InvalidSignatureException", lambda: skewed(-20))
expect_error("boto3-unsupported-operation", "UnsupportedOperationException",
             lambda: ecr.describe_pull_through_cache_rules())

# Images and layers: one layer and config uploaded through the layer API, then 1,000 images
# (distinct by an annotation) put by manifest, paged through 7 at a time.
import hashlib
import json

images_repo = f"boto3/images-{pid}"


MIN_PART = 5 * 1024 * 1024  # every part but the last is at least this (ECR's rule)
MAX_PART = 10 * 1024 * 1024  # and no part is larger (ECR's quota)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def upload_layer(data, repository=images_repo, part_size=MAX_PART):
    """Uploads `data` through the layer API in parts of `part_size` (the last may be shorter)."""
    digest = sha256(data)
    upload = ecr.initiate_layer_upload(repositoryName=repository)["uploadId"]
    for first in range(0, len(data), part_size):
        part = data[first:first + part_size]
        ecr.upload_layer_part(repositoryName=repository, uploadId=upload, partFirstByte=first,
                              partLastByte=first + len(part) - 1, layerPartBlob=part)
    done = ecr.complete_layer_upload(repositoryName=repository, uploadId=upload, layerDigests=[digest])
    expect(done["layerDigest"] == digest, done)
    return digest


def manifest(i, config, layer):
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer[0], "size": layer[1]}],
        "annotations": {"index": str(i)},
    })


state = {}


def layers_and_images():
    ecr.create_repository(repositoryName=images_repo)
    config_bytes, layer_bytes = b'{"os":"linux","architecture":"amd64"}', bytes(range(256)) * 400
    config, layer = (upload_layer(config_bytes), len(config_bytes)), (upload_layer(layer_bytes), len(layer_bytes))
    avail = ecr.batch_check_layer_availability(repositoryName=images_repo, layerDigests=[layer[0]])
    expect(avail["layers"][0]["layerAvailability"] == "AVAILABLE", avail)
    state["config"], state["layer"] = config, layer
    for i in range(1000):
        ecr.put_image(repositoryName=images_repo, imageManifest=manifest(i, config, layer), imageTag=f"t{i:04d}")


check("boto3-put-1000-images", layers_and_images)


def paginate_images():
    seen = []
    for page in ecr.get_paginator("list_images").paginate(repositoryName=images_repo,
                                                          PaginationConfig={"PageSize": 7}):
        expect(len(page["imageIds"]) <= 7)
        seen += [i["imageTag"] for i in page["imageIds"]]
    expect(len(seen) == 1000 and len(set(seen)) == 1000, (len(seen), len(set(seen))))
    details = []
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=images_repo,
                                                              PaginationConfig={"PageSize": 7}):
        details += page["imageDetails"]
    expect(len({d["imageDigest"] for d in details}) == 1000)
    size = state["config"][1] + state["layer"][1]
    expect(all(d["imageSizeInBytes"] == size for d in details), details[0])


check("boto3-paginate-1000-images-by-7", paginate_images)


def get_and_delete():
    got = ecr.batch_get_image(repositoryName=images_repo, imageIds=[{"imageTag": "t0007"}, {"imageTag": "missing"}])
    expect(json.loads(got["images"][0]["imageManifest"])["annotations"]["index"] == "7", got)
    expect(got["failures"][0]["failureCode"] == "ImageNotFound", got["failures"])
    deleted = ecr.batch_delete_image(repositoryName=images_repo, imageIds=[{"imageTag": "t0007"}])
    expect(deleted["imageIds"][0]["imageTag"] == "t0007" and not deleted["failures"], deleted)
    left = ecr.list_images(repositoryName=images_repo, filter={"tagStatus": "TAGGED"}, maxResults=1000)["imageIds"]
    expect("t0007" not in {i.get("imageTag") for i in left} and len(left) == 999)


check("boto3-batch-get-and-delete", get_and_delete)
expect_error("boto3-image-already-exists", "ImageAlreadyExistsException",
             lambda: ecr.put_image(repositoryName=images_repo, imageTag="t0001",
                                   imageManifest=manifest(1, state["config"], state["layer"])))
expect_error("boto3-digest-does-not-match", "ImageDigestDoesNotMatchException",
             lambda: ecr.put_image(repositoryName=images_repo, imageDigest="sha256:" + "0" * 64,
                                   imageManifest=manifest(5000, state["config"], state["layer"])))
expect_error("boto3-layers-not-found", "LayersNotFoundException",
             lambda: ecr.get_download_url_for_layer(repositoryName=images_repo, layerDigest="sha256:" + "1" * 64))
expect_error("boto3-upload-not-found", "UploadNotFoundException",
             lambda: ecr.upload_layer_part(repositoryName=images_repo, uploadId="00000000-0000-0000-0000-000000000000",
                                           partFirstByte=0, partLastByte=0, layerPartBlob=b"x"))
expect_error("boto3-image-not-found", "ImageNotFoundException",
             lambda: ecr.describe_images(repositoryName=images_repo, imageIds=[{"imageTag": "missing"}]))
expect_error("boto3-repository-not-empty", "RepositoryNotEmptyException",
             lambda: ecr.delete_repository(repositoryName=images_repo))
check("boto3-delete-with-force", lambda: ecr.delete_repository(repositoryName=images_repo, force=True))
check("boto3-delete-repository", lambda: ecr.delete_repository(repositoryName=repo))
expect_error("boto3-deleted-is-gone", "RepositoryNotFoundException",
             lambda: ecr.describe_repositories(repositoryNames=[repo]))

# Every error the served operations can answer, reached through boto3 with the exception name the
# client surfaces, and that a refused call changed nothing.
import threading
import time

errors_repo = f"boto3/errors-{pid}"


def error_code(call):
    """The error code `call` fails with, or None if it succeeds."""
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


def refused(exception, call):
    """Calls `call`, asserting it fails with `exception`; returns the error's parsed response."""
    try:
        call()
    except ClientError as e:
        code = e.response["Error"]["Code"]
        expect(code == exception, f"expected {exception}, got {code}: {e}")
        expect(e.response["Error"].get("Message"), f"{exception} carries no message")
        return e.response
    raise AssertionError(f"succeeded; expected {exception}")


# Lifecycle policies: stored as given, refused with ECR's exception, deleted once.
KEEP_RELEASES = json.dumps({"rules": [
    {"rulePriority": 1, "description": "keep the last 10 release images",
     "selection": {"tagStatus": "tagged", "tagPatternList": ["v*", "release*"],
                   "countType": "imageCountMoreThan", "countNumber": 10},
     "action": {"type": "expire"}},
    {"rulePriority": 2, "description": "expire untagged images after 14 days",
     "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                   "countUnit": "days", "countNumber": 14},
     "action": {"type": "expire"}}]})


def lifecycle_policy():
    repo = f"boto3/lifecycle-{pid}"
    ecr.create_repository(repositoryName=repo)
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=KEEP_RELEASES)
    got = ecr.get_lifecycle_policy(repositoryName=repo)
    expect(got["lifecyclePolicyText"] == KEEP_RELEASES and "lastEvaluatedAt" not in got, got)
    # Two rules selecting the same tags are refused (ECR's rule), and the stored policy stays.
    clash = json.loads(KEEP_RELEASES)
    clash["rules"][1]["selection"] = dict(clash["rules"][0]["selection"])
    refused("InvalidParameterException",
            lambda: ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=json.dumps(clash)))
    expect(ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"] == KEEP_RELEASES)
    deleted = ecr.delete_lifecycle_policy(repositoryName=repo)
    expect(deleted["lifecyclePolicyText"] == KEEP_RELEASES, deleted)
    refused("LifecyclePolicyNotFoundException", lambda: ecr.get_lifecycle_policy(repositoryName=repo))
    ecr.delete_repository(repositoryName=repo)


check("boto3-lifecycle-policy", lifecycle_policy)


def lifecycle_preview_and_archive():
    """A preview of a count rule over three images, through the SDK's own waiter, then the
    oldest image archived (refused on pull, listed as ARCHIVED) and restored."""
    repo = f"boto3/preview-{pid}"
    ecr.create_repository(repositoryName=repo)
    refused("LifecyclePolicyPreviewNotFoundException", lambda: ecr.get_lifecycle_policy_preview(repositoryName=repo))
    layer_bytes = b"preview layer" * 100
    config, layer = upload_layer(b"{}", repo), upload_layer(layer_bytes, repo)
    digests, sizes = [], []
    for i in range(3):
        body = manifest(i, (config, 2), (layer, len(layer_bytes)))
        put = ecr.put_image(repositoryName=repo, imageManifest=body, imageTag=f"v{i}")
        digests.append(put["image"]["imageId"]["imageDigest"])
        sizes.append(len(body))
        time.sleep(0.01)
    keep_two = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
                           "countType": "imageCountMoreThan", "countNumber": 2}, "action": {"type": "expire"}}]})
    started = ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=keep_two)
    expect(started["status"] == "IN_PROGRESS" and started["lifecyclePolicyText"] == keep_two, started)
    ecr.get_waiter("lifecycle_policy_preview_complete").wait(repositoryName=repo,
                                                               WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    preview = ecr.get_lifecycle_policy_preview(repositoryName=repo)
    results = preview["previewResults"]
    expect([r["imageDigest"] for r in results] == [digests[0]] and results[0]["imageTags"] == ["v0"]
           and results[0]["action"]["type"] == "EXPIRE" and results[0]["appliedRulePriority"] == 1
           and preview["summary"]["expiringImageTotalCount"] == 1, preview)

    moved = ecr.update_image_storage_class(repositoryName=repo, imageId={"imageDigest": digests[0]},
                                           targetStorageClass="ARCHIVE")
    expect(moved["imageStatus"] == "ARCHIVED", moved)
    got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v0"}])
    expect(not got["images"] and "archived" in got["failures"][0]["failureReason"], got)
    refused("ImageArchivedException", lambda: ecr.start_image_scan(repositoryName=repo, imageId={"imageDigest": digests[0]}))
    active = ecr.describe_images(repositoryName=repo)["imageDetails"]
    expect(digests[0] not in [d["imageDigest"] for d in active], active)
    archived = ecr.describe_images(repositoryName=repo, filter={"imageStatus": "ARCHIVED"})["imageDetails"]
    expect([d["imageDigest"] for d in archived] == [digests[0]] and archived[0]["imageStatus"] == "ARCHIVED"
           and "lastArchivedAt" in archived[0], archived)
    restored = ecr.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "v0"},
                                              targetStorageClass="STANDARD")
    expect(restored["imageStatus"] == "ACTIVE", restored)
    expect(ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v0"}])["images"])
    refused("ImageNotFoundException", lambda: ecr.update_image_storage_class(
        repositoryName=repo, imageId={"imageTag": "missing"}, targetStorageClass="ARCHIVE"))
    # An image an active index lists stays active with it.
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "digest": digests[1], "size": sizes[1]}]})
    ecr.put_image(repositoryName=repo, imageManifest=index, imageTag="multi")
    refused("ImageStorageClassUpdateNotSupportedException", lambda: ecr.update_image_storage_class(
        repositoryName=repo, imageId={"imageDigest": digests[1]}, targetStorageClass="ARCHIVE"))
    ecr.delete_repository(repositoryName=repo, force=True)


check("boto3-lifecycle-preview-and-archive", lifecycle_preview_and_archive)


def one_preview_at_a_time():
    """A second preview started while one is in progress is refused, as ECR refuses it. The
    server evaluates previews within milliseconds, so the second start is sent at once and the
    pair tried again (after the preview completes) should the first have finished already."""
    repo = f"boto3/one-preview-{pid}"
    ecr.create_repository(repositoryName=repo)
    wait = ecr.get_waiter("lifecycle_policy_preview_complete")
    refused_once = False
    for _ in range(20):
        ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=KEEP_RELEASES)
        try:
            ecr.start_lifecycle_policy_preview(repositoryName=repo, lifecyclePolicyText=KEEP_RELEASES)
        except ClientError as e:
            expect(e.response["Error"]["Code"] == "LifecyclePolicyPreviewInProgressException", e.response)
            refused_once = True
        wait.wait(repositoryName=repo, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        if refused_once:
            break
    expect(refused_once, "a second preview was never refused while the first was in progress")
    ecr.delete_repository(repositoryName=repo, force=True)


check("boto3-one-lifecycle-preview-at-a-time", one_preview_at_a_time)


def layer_available(repository, digest):
    out = ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=[digest])
    return any(layer.get("layerAvailability") == "AVAILABLE" for layer in out["layers"])


def image_tags(repository, tag):
    try:
        details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ImageNotFoundException":
            return None
        raise
    return details[0].get("imageTags", [])


def errors_setup():
    ecr.create_repository(repositoryName=errors_repo)
    config_bytes, layer_bytes = b'{"os":"linux","architecture":"arm64"}', b"errors layer " * 100
    state["econfig"] = (upload_layer(config_bytes, errors_repo), len(config_bytes))
    state["elayer"] = (upload_layer(layer_bytes, errors_repo), len(layer_bytes))
    state["elayer_bytes"] = layer_bytes


check("boto3-errors-setup", errors_setup)


def start_upload(parts):
    """An upload of `errors_repo` with the given (first, bytes) parts sent."""
    upload = ecr.initiate_layer_upload(repositoryName=errors_repo)["uploadId"]
    for first, data in parts:
        ecr.upload_layer_part(repositoryName=errors_repo, uploadId=upload, partFirstByte=first,
                              partLastByte=first + len(data) - 1, layerPartBlob=data)
    return upload


def complete(upload, digest):
    return ecr.complete_layer_upload(repositoryName=errors_repo, uploadId=upload, layerDigests=[digest])


def invalid_layer():
    data = b"bytes whose digest is not the one claimed"
    upload = start_upload([(0, data)])
    wrong = sha256(b"other bytes")
    refused("InvalidLayerException", lambda: complete(upload, wrong))
    expect(not layer_available(errors_repo, wrong) and not layer_available(errors_repo, sha256(data)))
    expect(complete(upload, sha256(data))["layerDigest"] == sha256(data), "the upload stays usable")


check("boto3-invalid-layer", invalid_layer)


def invalid_layer_part():
    upload = start_upload([(0, b"0123456789")])
    gap = refused("InvalidLayerPartException", lambda: ecr.upload_layer_part(
        repositoryName=errors_repo, uploadId=upload, partFirstByte=20, partLastByte=29, layerPartBlob=b"x" * 10))
    want = {"lastValidByteReceived": 9, "uploadId": upload, "repositoryName": errors_repo, "registryId": account}
    expect({k: gap.get(k) for k in want} == want, {k: gap.get(k) for k in want})
    overlap = refused("InvalidLayerPartException", lambda: ecr.upload_layer_part(
        repositoryName=errors_repo, uploadId=upload, partFirstByte=5, partLastByte=14, layerPartBlob=b"y" * 10))
    expect(overlap.get("lastValidByteReceived") == 9, overlap)
    out = ecr.upload_layer_part(repositoryName=errors_repo, uploadId=upload, partFirstByte=10, partLastByte=19,
                                layerPartBlob=b"abcdefghij")
    expect(out["lastByteReceived"] == 19, "the refused parts left no trace")


check("boto3-invalid-layer-part", invalid_layer_part)


def layer_part_too_small():
    first, second = b"a" * 1000, b"b" * 2000
    upload = start_upload([(0, first), (1000, second)])
    response = refused("LayerPartTooSmallException", lambda: complete(upload, sha256(first + second)))
    message = response["Error"]["Message"]
    expect(str(MIN_PART) in message and "1000" in message, message)
    expect(not layer_available(errors_repo, sha256(first + second)), "nothing was stored")
    # A part of the minimum size may be followed by a short last part.
    data = bytes(range(256)) * (MIN_PART // 256) + b"tail"
    expect(upload_layer(data, errors_repo, part_size=MIN_PART) == sha256(data))


check("boto3-layer-part-too-small", layer_part_too_small)


def layer_part_limit_exceeded():
    upload = ecr.initiate_layer_upload(repositoryName=errors_repo)["uploadId"]
    big = b"z" * (MAX_PART + 1)
    response = refused("LimitExceededException", lambda: ecr.upload_layer_part(
        repositoryName=errors_repo, uploadId=upload, partFirstByte=0, partLastByte=len(big) - 1, layerPartBlob=big))
    expect(str(MAX_PART) in response["Error"]["Message"], response["Error"]["Message"])
    out = ecr.upload_layer_part(repositoryName=errors_repo, uploadId=upload, partFirstByte=0,
                                partLastByte=MAX_PART - 1, layerPartBlob=big[:MAX_PART])
    expect(out["lastByteReceived"] == MAX_PART - 1, "the refused part left no trace")


check("boto3-layer-part-limit-exceeded", layer_part_limit_exceeded)


def empty_upload():
    upload = start_upload([])
    refused("EmptyUploadException", lambda: complete(upload, sha256(b"")))


check("boto3-empty-upload", empty_upload)


def layer_already_exists():
    data = state["elayer_bytes"]
    upload = start_upload([(0, data)])
    refused("LayerAlreadyExistsException", lambda: complete(upload, sha256(data)))
    expect(layer_available(errors_repo, sha256(data)), "the layer it has stays")


check("boto3-layer-already-exists", layer_already_exists)


def errors_manifest(n, layer=None):
    return manifest(n, state["econfig"], layer or state["elayer"])


def layer_inaccessible():
    digest = state["elayer"][0]
    refused("LayerInaccessibleException",
            lambda: ecr.get_download_url_for_layer(repositoryName=errors_repo, layerDigest=digest))
    refused("LayersNotFoundException",
            lambda: ecr.get_download_url_for_layer(repositoryName=errors_repo, layerDigest=sha256(b"never")))
    ecr.put_image(repositoryName=errors_repo, imageManifest=errors_manifest(0), imageTag="v0")
    out = ecr.get_download_url_for_layer(repositoryName=errors_repo, layerDigest=digest)
    import urllib.request
    with urllib.request.urlopen(out["downloadUrl"]) as r:
        expect(r.read() == state["elayer_bytes"], "the URL serves the layer once an image references it")


check("boto3-layer-inaccessible", layer_inaccessible)


def index_of(children):
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": n}
                      for d, n in children],
    })


def referenced_images_not_found():
    child = errors_manifest(0)
    child_ref = (sha256(child.encode()), len(child))
    absent = (sha256(b"no such image"), 100)
    response = refused("ReferencedImagesNotFoundException", lambda: ecr.put_image(
        repositoryName=errors_repo, imageManifest=index_of([child_ref, absent]), imageTag="multi"))
    expect(absent[0] in response["Error"]["Message"], response["Error"]["Message"])
    expect(image_tags(errors_repo, "multi") is None, "nothing was stored")
    # Missing layers stay LayersNotFoundException.
    refused("LayersNotFoundException", lambda: ecr.put_image(
        repositoryName=errors_repo, imageManifest=errors_manifest(1, absent), imageTag="dangling"))
    ecr.put_image(repositoryName=errors_repo, imageManifest=index_of([child_ref]), imageTag="multi")


check("boto3-referenced-images-not-found", referenced_images_not_found)


def image_tag_already_exists():
    immutable = f"boto3/immutable-{pid}"
    ecr.create_repository(repositoryName=immutable, imageTagMutability="IMMUTABLE")
    config, layer = b'{"os":"linux"}', b"immutable layer"
    config, layer = (upload_layer(config, immutable), len(config)), (upload_layer(layer, immutable), len(layer))
    first = ecr.put_image(repositoryName=immutable, imageManifest=manifest(1, config, layer), imageTag="v1")
    refused("ImageTagAlreadyExistsException", lambda: ecr.put_image(
        repositoryName=immutable, imageManifest=manifest(2, config, layer), imageTag="v1"))
    got = ecr.batch_get_image(repositoryName=immutable, imageIds=[{"imageTag": "v1"}])["images"][0]
    expect(got["imageId"]["imageDigest"] == first["image"]["imageId"]["imageDigest"], "the tag did not move")
    ecr.delete_repository(repositoryName=immutable, force=True)


check("boto3-image-tag-already-exists", image_tag_already_exists)


def tags_per_image_limit():
    image = errors_manifest(2)
    for i in range(1000):
        ecr.put_image(repositoryName=errors_repo, imageManifest=image, imageTag=f"many-{i:04d}")
    response = refused("LimitExceededException", lambda: ecr.put_image(
        repositoryName=errors_repo, imageManifest=image, imageTag="many-1000"))
    expect("1000" in response["Error"]["Message"], response["Error"]["Message"])
    expect(len(image_tags(errors_repo, "many-0000")) == 1000, "the 1,001st tag was not added")
    expect(image_tags(errors_repo, "many-1000") is None)


check("boto3-tags-per-image-limit-exceeded", tags_per_image_limit)


def kms_encryption():
    # No key named: the account's default key, shown as its ARN.
    r = ecr.create_repository(repositoryName=f"boto3/kms-{pid}", encryptionConfiguration={"encryptionType": "KMS"})
    encryption = r["repository"]["encryptionConfiguration"]
    expect(encryption["encryptionType"] == "KMS", encryption)
    expect(encryption.get("kmsKey", "").startswith(f"arn:aws:kms:us-east-1:{account}:key/"), encryption)
    described = ecr.describe_repositories(repositoryNames=[f"boto3/kms-{pid}"])["repositories"][0]
    expect(described["encryptionConfiguration"] == encryption, described)
    # A key that does not exist, and dual-layer encryption (not built), are refused; nothing is created.
    for name, configuration, kms_error in (
        (f"boto3/kms-none-{pid}", {"encryptionType": "KMS", "kmsKey": "alias/none"}, "NotFoundException"),
        (f"boto3/dsse-{pid}", {"encryptionType": "KMS_DSSE"}, "UnsupportedOperationException"),
    ):
        response = refused("KmsException", lambda: ecr.create_repository(
            repositoryName=name, encryptionConfiguration=configuration))
        expect(response.get("kmsError") == kms_error, f"kmsError: {response}")
        expect(error_code(lambda: ecr.describe_repositories(repositoryNames=[name])) == "RepositoryNotFoundException")
    refused("ValidationException", lambda: ecr.create_repository_creation_template(
        prefix=f"dsse-{pid}/", appliedFor=["CREATE_ON_PUSH"], encryptionConfiguration={"encryptionType": "KMS_DSSE"}))
    ecr.delete_repository(repositoryName=f"boto3/kms-{pid}")
    r = ecr.create_repository(repositoryName=f"boto3/aes-{pid}", encryptionConfiguration={"encryptionType": "AES256"})
    expect(r["repository"]["encryptionConfiguration"]["encryptionType"] == "AES256")
    ecr.delete_repository(repositoryName=f"boto3/aes-{pid}")


check("boto3-kms-repositories-under-the-default-key-and-refusals", kms_encryption)


def templates():
    prefix = f"tpl-{pid}/"
    ecr.create_repository_creation_template(prefix=prefix, appliedFor=["CREATE_ON_PUSH"])
    refused("TemplateAlreadyExistsException",
            lambda: ecr.create_repository_creation_template(prefix=prefix, appliedFor=["CREATE_ON_PUSH"]))
    refused("ValidationException",
            lambda: ecr.create_repository_creation_template(prefix="Bad Prefix", appliedFor=["CREATE_ON_PUSH"]))
    refused("ValidationException", lambda: ecr.create_repository_creation_template(
        prefix=f"long-{pid}/", description="d" * 257, appliedFor=["CREATE_ON_PUSH"]))
    refused("ValidationException", lambda: ecr.update_repository_creation_template(
        prefix=prefix, appliedFor=["SOMETIMES"]))
    refused("TemplateNotFoundException",
            lambda: ecr.update_repository_creation_template(prefix=f"none-{pid}/", description="x"))
    refused("TemplateNotFoundException", lambda: ecr.delete_repository_creation_template(prefix=f"none-{pid}/"))
    names = [t["prefix"] for t in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]]
    expect(prefix in names and "Bad Prefix" not in names and f"long-{pid}/" not in names, names)
    ecr.delete_repository_creation_template(prefix=prefix)


check("boto3-creation-template-errors", templates)


def templates_limit():
    existing = len(ecr.describe_repository_creation_templates()["repositoryCreationTemplates"])
    made = [f"lim-{pid}-{i:02d}/" for i in range(50 - existing)]
    try:
        for prefix in made:
            ecr.create_repository_creation_template(prefix=prefix, appliedFor=["CREATE_ON_PUSH"])
        response = refused("LimitExceededException", lambda: ecr.create_repository_creation_template(
            prefix=f"lim-{pid}-more/", appliedFor=["CREATE_ON_PUSH"]))
        expect("50" in response["Error"]["Message"], response["Error"]["Message"])
    finally:
        for prefix in made:
            ecr.delete_repository_creation_template(prefix=prefix)


check("boto3-creation-templates-limit-exceeded", templates_limit)


def policies_not_found():
    refused("RepositoryPolicyNotFoundException", lambda: ecr.get_repository_policy(repositoryName=errors_repo))
    refused("RepositoryPolicyNotFoundException", lambda: ecr.delete_repository_policy(repositoryName=errors_repo))
    if error_code(lambda: ecr.get_registry_policy()) is None:
        raise AssertionError("this registry has a registry policy already; cannot check its absence")
    refused("RegistryPolicyNotFoundException", lambda: ecr.get_registry_policy())
    refused("RegistryPolicyNotFoundException", lambda: ecr.delete_registry_policy())


check("boto3-policies-not-found", policies_not_found)


def resource_tag_errors():
    arn = f"arn:aws:ecr:us-east-1:{account}:repository/{errors_repo}"
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
    refused("TooManyTagsException",
            lambda: ecr.tag_resource(resourceArn=arn, tags=[{"Key": "k49", "Value": "v"}, {"Key": "k50", "Value": "v"}]))
    refused("TooManyTagsException", lambda: ecr.create_repository(
        repositoryName=f"boto3/tags-{pid}", tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]))
    for bad in ({"Key": "", "Value": "v"}, {"Key": "k" * 129, "Value": "v"}, {"Key": "ok", "Value": "v" * 257},
                {"Key": "aws:reserved", "Value": "v"}):
        refused("InvalidTagParameterException", lambda: ecr.tag_resource(resourceArn=arn, tags=[bad]))
        refused("InvalidTagParameterException",
                lambda: ecr.create_repository(repositoryName=f"boto3/tags-{pid}", tags=[bad]))
    refused("InvalidTagParameterException", lambda: ecr.untag_resource(resourceArn=arn, tagKeys=["aws:reserved"]))
    refused("InvalidTagParameterException", lambda: ecr.untag_resource(resourceArn=arn, tagKeys=["k" * 129]))
    tags = ecr.list_tags_for_resource(resourceArn=arn)["tags"]
    expect(len(tags) == 49, f"the refused calls changed the tags: {len(tags)}")
    expect(error_code(lambda: ecr.describe_repositories(repositoryNames=[f"boto3/tags-{pid}"])) == \
        "RepositoryNotFoundException")


check("boto3-resource-tag-errors", resource_tag_errors)


def referrers_validation():
    child = errors_manifest(0)
    subject = {"imageDigest": sha256(child.encode())}
    types = [f"application/vnd.example.{i}" for i in range(6)]
    ecr.list_image_referrers(repositoryName=errors_repo, subjectId=subject, filter={"artifactTypes": types[:5]})
    refused("ValidationException", lambda: ecr.list_image_referrers(
        repositoryName=errors_repo, subjectId=subject, filter={"artifactTypes": types}))


check("boto3-list-image-referrers-validation", referrers_validation)


def server_exception():
    uploads = os.path.join(data_dir, "uploads")
    aside = uploads + ".aside"
    os.rename(uploads, aside)
    try:
        # Root is not stopped by permissions, so the staging directory stops being a directory.
        with open(uploads, "w") as f:
            f.write("not a directory")
        try:
            response = refused("ServerException", lambda: ecr.initiate_layer_upload(repositoryName=errors_repo))
        finally:
            os.remove(uploads)
    finally:
        os.rename(aside, uploads)
    meta = response["ResponseMetadata"]
    expect(meta["HTTPStatusCode"] == 500 and meta.get("RetryAttempts", 0) == 0, meta)
    message = response["Error"]["Message"]
    expect("/" not in message and "uploads" not in message and data_dir not in message, f"leaks: {message}")
    expect(ecr.initiate_layer_upload(repositoryName=errors_repo)["uploadId"], "restored, the call succeeds")


if not data_dir:
    result("skipped", "boto3-storage-fault-is-server-exception",
           "no data directory of berth was given (5th argument), so no storage fault can be staged")
elif not os.path.isdir(os.path.join(data_dir, "uploads")):
    result("failed", "boto3-storage-fault-is-server-exception",
           f"{data_dir} was given as berth's data directory but has no uploads folder")
else:
    check("boto3-storage-fault-is-server-exception", server_exception)


def pull_through_cache():
    refused("UnsupportedOperationException", lambda: ecr.create_pull_through_cache_rule(
        ecrRepositoryPrefix=f"ptc-{pid}", upstreamRegistryUrl="public.ecr.aws"))


check("boto3-pull-through-cache-unsupported", pull_through_cache)
# Not a skipped check: these exceptions cannot arise, which the check above establishes.
print("NOTE boto3-upstream-exceptions: UnableToGetUpstreamImageException, UnableToGetUpstreamLayerException and "
      "UnableToListUpstreamImageReferrersException come only from pull-through-cache repositories, which berth "
      "does not have (CreatePullThroughCacheRule is refused as unsupported, checked above)")


def concurrent_pagination():
    repository = f"boto3/concurrent-{pid}"
    ecr.create_repository(repositoryName=repository)
    config = (upload_layer(b'{"os":"linux"}', repository), len(b'{"os":"linux"}'))
    layer = (upload_layer(b"concurrent layer", repository), len(b"concurrent layer"))
    before = {}
    for i in range(40):
        out = ecr.put_image(repositoryName=repository, imageManifest=manifest(i, config, layer), imageTag=f"old-{i:02d}")
        before[out["image"]["imageId"]["imageDigest"]] = f"old-{i:02d}"
    writer_client = client()
    written, failed = [], []

    def writer():
        try:
            for i in range(100):
                out = writer_client.put_image(repositoryName=repository,
                                              imageManifest=manifest(1000 + i, config, layer))
                written.append(out["image"]["imageId"]["imageDigest"])
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            failed.append(e)

    def pages(call, key):
        items, token, count = [], None, 0
        while True:
            out = call(**({"nextToken": token} if token else {}))
            expect(len(out[key]) <= 7, len(out[key]))
            items += out[key]
            count += 1
            token = out.get("nextToken")
            if not token:
                return items, count
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not written and not failed:
            time.sleep(0.01)
        at_start = len(written)
        details, n = pages(lambda **k: ecr.describe_images(repositoryName=repository, maxResults=7, **k),
                           "imageDetails")
        ids, m = pages(lambda **k: ecr.list_images(repositoryName=repository, maxResults=7, **k), "imageIds")
        during = len(written) - at_start
    finally:
        thread.join()
    expect(not failed, failed)
    digests = [d["imageDigest"] for d in details]
    expect(len(digests) == len(set(digests)), "DescribeImages listed an image twice")
    missing = set(before) - set(digests)
    expect(not missing, f"DescribeImages missed {len(missing)} images that existed before paging")
    pairs = [(i["imageDigest"], i.get("imageTag")) for i in ids]
    expect(len(pairs) == len(set(pairs)), "ListImages listed an image twice")
    expect(set(before.items()) <= set(pairs), "ListImages missed images that existed before paging")
    expect(during > 0, "the writer wrote nothing while the pages were read; the check proved nothing")
    print(f"    {n} + {m} pages read while the writer put {during} images")
    ecr.delete_repository(repositoryName=repository, force=True)


check("boto3-pagination-under-a-concurrent-writer", concurrent_pagination)


def last_recorded_pull_time():
    image = errors_manifest(3)
    digest = ecr.put_image(repositoryName=errors_repo, imageManifest=image, imageTag="pulled")["image"]["imageId"]

    def detail():
        return ecr.describe_images(repositoryName=errors_repo, imageIds=[{"imageTag": "pulled"}])["imageDetails"][0]

    expect("lastRecordedPullTime" not in detail(), "a pull time before any pull")
    ecr.list_images(repositoryName=errors_repo)
    ecr.describe_images(repositoryName=errors_repo)
    expect("lastRecordedPullTime" not in detail(), "DescribeImages or ListImages counted as a pull")
    got = ecr.batch_get_image(repositoryName=errors_repo, imageIds=[{"imageDigest": digest["imageDigest"]}])
    expect(got["images"] and not got["failures"], got)
    pulled = detail().get("lastRecordedPullTime")
    expect(pulled is not None, "BatchGetImage was not recorded as a pull")
    now = datetime.datetime.now(datetime.timezone.utc)
    expect(abs((now - pulled).total_seconds()) < 300, (pulled, now))


check("boto3-last-recorded-pull-time", last_recorded_pull_time)
check("boto3-errors-cleanup", lambda: ecr.delete_repository(repositoryName=errors_repo, force=True))
finish()
