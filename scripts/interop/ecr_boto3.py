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
check("boto3-delete-repository", lambda: ecr.delete_repository(repositoryName=repo))
expect_error("boto3-deleted-is-gone", "RepositoryNotFoundException",
             lambda: ecr.describe_repositories(repositoryNames=[repo]))
finish()
