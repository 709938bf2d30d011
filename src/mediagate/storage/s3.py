"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2), as ``<prefix><blob_id>``.

Blobs are immutable and written once, so the backend needs no locking: an object appears whole
when PutObject / CompleteMultipartUpload returns, or not at all (a failed multipart upload is
aborted by the transfer manager). Visibility stays the catalog's business, as for local blobs.

The S3 calls this module makes, and nothing else (the IAM policy it needs):

=========================  ==============================  ===========================================
call                       used by                         IAM permission
=========================  ==============================  ===========================================
HeadBucket, CreateBucket   first use (``create_bucket``)   s3:ListBucket, s3:CreateBucket (optional)
PutObject                  ``put`` below the threshold     s3:PutObject
CreateMultipartUpload,     ``put`` of large files          s3:PutObject
UploadPart,
CompleteMultipartUpload
AbortMultipartUpload       ``put`` that fails midway       s3:AbortMultipartUpload
GetObject (with Range)     ``open``, ``assemble``          s3:GetObject
HeadObject                 ``size``, ``exists``            s3:GetObject (+ s3:ListBucket, without
                                                           which a missing key answers 403, not 404)
DeleteObject               ``delete``                      s3:DeleteObject
=========================  ==============================  ===========================================

botocore's ``NoSuchKey``/``404`` become :class:`BlobNotFound` here, at the border; an endpoint that
cannot be reached, answers 5xx or refuses us (every other botocore error) becomes the core's
``StorageUnavailable`` (503) in :func:`_outage`, with botocore's error chained for the log.
Memory is bounded: a ``put`` holds at most ``max_concurrency`` parts of ``part_size`` bytes,
reads hold one chunk at a time.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mediagate.core.errors import StorageUnavailable
from mediagate.storage.base import CHUNK_SIZE, BlobNotFound, check_blob_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mediagate.config import Settings

MIB = 1024 * 1024
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _outage() -> Iterator[None]:
    """botocore/boto3 failures that are not a missing blob become ``StorageUnavailable``."""
    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        raise StorageUnavailable() from exc


class S3Storage:
    """A :class:`~mediagate.storage.base.Storage` over one bucket; thread-safe (boto3 clients are)."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "",
        region: str = "us-east-1",
        create_bucket: bool = True,
        part_size: int = 16 * MIB,
        multipart_threshold: int = 16 * MIB,
        max_concurrency: int = 4,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.region = region
        self.create_bucket = create_bucket
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=part_size,
            max_concurrency=max_concurrency,
            io_chunksize=256 * 1024,
            use_threads=max_concurrency > 1,
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        config = Config(
            # a custom endpoint (MinIO, Ceph, moto) rarely has wildcard DNS for virtual hosts
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=32,
            # default flexible checksums (boto3 >= 1.36) are refused by several S3-compatibles
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=config,
        )
        return cls(
            client,
            settings.s3_bucket,
            prefix=settings.s3_prefix,
            region=settings.s3_region,
            create_bucket=settings.s3_create_bucket,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, blob_id: str) -> str:
        with _outage():
            self._ensure_bucket()
        return self.prefix + check_blob_id(blob_id)

    def _ensure_bucket(self) -> None:
        """Create the bucket once per process if allowed and missing (HeadBucket first)."""
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                if not self.create_bucket:
                    raise RuntimeError(
                        f"S3 bucket {self.bucket!r} does not exist (create it, or allow s3_create_bucket)"
                    ) from exc
                self._create()
            self._ready = True

    def _create(self) -> None:
        try:
            if self.region == "us-east-1":
                self.client.create_bucket(Bucket=self.bucket)
            else:
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                )
        except ClientError as exc:
            # another node won the race
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _get(self, key: str, blob_id: str, byte_range: str | None = None) -> Any:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range is not None:
            kwargs["Range"] = byte_range
        with _outage():
            try:
                return self.client.get_object(**kwargs)
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise BlobNotFound(blob_id) from exc
                raise

    # -- the Storage protocol --------------------------------------------------------------------

    def put(self, blob_id: str, source: Path) -> None:
        """Upload ``source`` (multipart above the threshold), then delete it."""
        with _outage():
            key = self._key(blob_id)
            self.client.upload_file(str(source), self.bucket, key, Config=self.transfer)
        source.unlink(missing_ok=True)

    def open(self, blob_id: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        key = self._key(blob_id)
        if end is not None and end <= start:
            self.size(blob_id)  # still BlobNotFound for a missing blob
            return iter(())
        byte_range = None
        if start > 0 or end is not None:
            byte_range = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = self._get(key, blob_id, byte_range)
        except StorageUnavailable as exc:
            if isinstance(exc.__cause__, ClientError) and _error_code(exc.__cause__) == "InvalidRange":
                return iter(())  # start at or past the end (or an empty blob)
            raise
        return _stream(response["Body"])

    def size(self, blob_id: str) -> int:
        key = self._key(blob_id)
        with _outage():
            try:
                return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise BlobNotFound(blob_id) from exc
                raise

    def exists(self, blob_id: str) -> bool:
        try:
            self.size(blob_id)
        except BlobNotFound:
            return False
        return True

    def delete(self, blob_id: str) -> None:
        key = self._key(blob_id)
        with _outage():
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def assemble(self, part_ids: list[str], dest: Path) -> None:
        """Stream each part's GetObject body into ``dest`` in turn: one chunk in memory."""
        with open(dest, "xb") as out:
            for part_id in part_ids:
                response = self._get(self._key(part_id), part_id)
                for chunk in _stream(response["Body"]):
                    out.write(chunk)
            out.flush()
            os.fsync(out.fileno())

    def local_path(self, blob_id: str) -> Path | None:
        return None


def _stream(body: Any) -> Iterator[bytes]:
    """A GetObject body chunk by chunk; the connection is released even if the reader stops early."""
    try:
        with _outage():
            yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()
