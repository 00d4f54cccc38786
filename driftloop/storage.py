"""Read and write local paths and s3:// URIs (boto3, honouring AWS_ENDPOINT_URL)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from driftloop.errors import StorageError

# A table compressed whole (`customers.csv.gz`, `customers.tar.gz`): read as its text (`table.decompressed`), and
# named as the plain file is (its format from `.csv`, its model name `customers`)
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".bz2", ".xz", ".zip")


def plain_name(name: str) -> str:
    """The file name less a compression suffix and a `.tar` under it: `customers.csv.gz` → `customers.csv`."""
    lowered = name.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if lowered.endswith(suffix):
            name, lowered = name[: -len(suffix)], lowered[: -len(suffix)]
    return name[: -len(".tar")] if lowered.endswith(".tar") else name


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b.csv` → (`bucket`, `a/b.csv`)."""
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri}: expected s3://BUCKET/KEY")
    return bucket, key


def _s3_client():
    import boto3

    # boto3 reads AWS_ENDPOINT_URL itself; passing it explicitly also covers older botocore.
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return boto3.client("s3", endpoint_url=endpoint or None)


def read_bytes(uri: str) -> bytes:
    """The whole object. Raises StorageError naming the URI when it is missing."""
    if is_s3(uri):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(uri)
        try:
            return _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "error")
            raise StorageError(f"{uri}: cannot read S3 object ({code})") from e
        except BotoCoreError as e:
            raise StorageError(f"{uri}: cannot reach S3 ({e})") from e
    try:
        return Path(uri).read_bytes()
    except FileNotFoundError as e:
        raise StorageError(f"{uri}: file not found") from e
    except IsADirectoryError as e:
        raise StorageError(f"{uri}: is a directory, expected a file") from e
    except OSError as e:
        raise StorageError(f"{uri}: cannot read ({e.strerror})") from e


def write_bytes(uri: str, data: bytes) -> None:
    """Write a whole local file (its folder created) or S3 object. Raises StorageError naming the URI."""
    if is_s3(uri):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(uri)
        try:
            _s3_client().put_object(Bucket=bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"{uri}: cannot write S3 object ({e})") from e
        return
    try:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_bytes(data)
    except OSError as e:
        raise StorageError(f"{uri}: cannot write ({e.strerror})") from e


def write_file(uri: str, path: Path) -> None:
    """A finished local file to its place: a local file (moved; its folder created) or an S3 object (uploaded, in
    parts when large, never held in memory whole). Raises StorageError naming the URI."""
    if is_s3(uri):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3(uri)
        try:
            _s3_client().upload_file(str(path), bucket, key)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"{uri}: cannot write S3 object ({e})") from e
        return
    try:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), uri)
    except OSError as e:
        raise StorageError(f"{uri}: cannot write ({e.strerror})") from e


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(uri: str) -> str:
    """What identifies the object's content now, without reading it from S3.

    S3: `etag:<ETag>` (plus `@<VersionId>` on a versioned bucket), which changes whenever the
    object is overwritten; a local file: `sha256:<hex>` of its bytes. Raises StorageError
    naming the URI when it is missing or unreachable.
    """
    if not is_s3(uri):
        return f"sha256:{sha256(read_bytes(uri))}"
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        head = _s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "error")
        raise StorageError(f"{uri}: cannot read S3 object ({code})") from e
    except BotoCoreError as e:
        raise StorageError(f"{uri}: cannot reach S3 ({e})") from e
    version = head.get("VersionId")
    return f"etag:{head['ETag'].strip(chr(34))}" + (f"@{version}" if version and version != "null" else "")


def upload_dir(local_dir: Path, uri: str) -> None:
    """Copy a directory tree to a local directory or an s3:// prefix."""
    if is_s3(uri):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, prefix = split_s3(uri)
        client = _s3_client()
        for path in sorted(local_dir.rglob("*")):
            if path.is_file():
                key = "/".join(filter(None, [prefix.rstrip("/"), path.relative_to(local_dir).as_posix()]))
                try:
                    client.upload_file(str(path), bucket, key)
                except (ClientError, BotoCoreError) as e:
                    raise StorageError(f"s3://{bucket}/{key}: cannot write ({e})") from e
        return
    target = Path(uri)
    if target.resolve() == local_dir.resolve():
        return
    shutil.copytree(local_dir, target, dirs_exist_ok=True)
