#!/usr/bin/env python3
"""The ECR control plane through boto3, pointed at berth by endpoint_url.

Usage: ecr_boto3.py ENDPOINT ACCESS_KEY_ID SECRET_FILE ACCOUNT
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
secret = open(secret_file).read().strip()
config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})


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
    assert r["repositoryName"] == repo and r["registryId"] == account, r
    assert isinstance(r["createdAt"], datetime.datetime), r["createdAt"]
    assert r["repositoryArn"] == f"arn:aws:ecr:us-east-1:{account}:repository/{repo}", r


check("boto3-create-repository", create)


def paginate():
    for i in range(11):
        ecr.create_repository(repositoryName=f"boto3/page-{pid}-{i:02d}")
    names = []
    for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 4}):
        assert len(page["repositories"]) <= 4, len(page["repositories"])
        names += [r["repositoryName"] for r in page["repositories"]]
    mine = [n for n in names if n.startswith(f"boto3/page-{pid}-")]
    assert mine == sorted(mine) and len(mine) == 11, mine
    assert len(names) == len(set(names)), "a repository was listed twice"


check("boto3-paginate-describe-repositories", paginate)


def token():
    data = ecr.get_authorization_token()["authorizationData"][0]
    import base64
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    assert user == "AWS" and password and ":" not in password
    assert data["expiresAt"] > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=11)


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
             lambda: ecr.get_lifecycle_policy(repositoryName=repo))
# Images and layers: one layer and config uploaded through the layer API, then 1,000 images
# (distinct by an annotation) put by manifest, paged through 7 at a time.
import hashlib
import json

images_repo = f"boto3/images-{pid}"


def upload_layer(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    upload = ecr.initiate_layer_upload(repositoryName=images_repo)["uploadId"]
    half = len(data) // 2
    ecr.upload_layer_part(repositoryName=images_repo, uploadId=upload, partFirstByte=0, partLastByte=half - 1,
                          layerPartBlob=data[:half])
    ecr.upload_layer_part(repositoryName=images_repo, uploadId=upload, partFirstByte=half,
                          partLastByte=len(data) - 1, layerPartBlob=data[half:])
    done = ecr.complete_layer_upload(repositoryName=images_repo, uploadId=upload, layerDigests=[digest])
    assert done["layerDigest"] == digest, done
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
    assert avail["layers"][0]["layerAvailability"] == "AVAILABLE", avail
    state["config"], state["layer"] = config, layer
    for i in range(1000):
        ecr.put_image(repositoryName=images_repo, imageManifest=manifest(i, config, layer), imageTag=f"t{i:04d}")


check("boto3-put-1000-images", layers_and_images)


def paginate_images():
    seen = []
    for page in ecr.get_paginator("list_images").paginate(repositoryName=images_repo,
                                                          PaginationConfig={"PageSize": 7}):
        assert len(page["imageIds"]) <= 7
        seen += [i["imageTag"] for i in page["imageIds"]]
    assert len(seen) == 1000 and len(set(seen)) == 1000, (len(seen), len(set(seen)))
    details = []
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=images_repo,
                                                              PaginationConfig={"PageSize": 7}):
        details += page["imageDetails"]
    assert len({d["imageDigest"] for d in details}) == 1000
    size = state["config"][1] + state["layer"][1]
    assert all(d["imageSizeInBytes"] == size for d in details), details[0]


check("boto3-paginate-1000-images-by-7", paginate_images)


def get_and_delete():
    got = ecr.batch_get_image(repositoryName=images_repo, imageIds=[{"imageTag": "t0007"}, {"imageTag": "missing"}])
    assert json.loads(got["images"][0]["imageManifest"])["annotations"]["index"] == "7", got
    assert got["failures"][0]["failureCode"] == "ImageNotFound", got["failures"]
    deleted = ecr.batch_delete_image(repositoryName=images_repo, imageIds=[{"imageTag": "t0007"}])
    assert deleted["imageIds"][0]["imageTag"] == "t0007" and not deleted["failures"], deleted
    left = ecr.list_images(repositoryName=images_repo, filter={"tagStatus": "TAGGED"}, maxResults=1000)["imageIds"]
    assert "t0007" not in {i.get("imageTag") for i in left} and len(left) == 999


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
finish()
