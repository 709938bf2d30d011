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
CreateMultipartUpload,     ``put`` of large files,         s3:PutObject
UploadPart,                ``writer`` (uploads streamed
CompleteMultipartUpload    while they arrive)
AbortMultipartUpload       a ``put`` or ``writer`` that    s3:AbortMultipartUpload
                           fails, ``abort_stale_writes``
ListMultipartUploads       ``abort_stale_writes`` (GC)     s3:ListBucketMultipartUploads
CopyObject (UploadPartCopy ``copy``                        s3:GetObject, s3:PutObject
above the threshold)
GetObject (with Range)     ``open``, ``assemble``,         s3:GetObject
                           presigned ``read_url``
HeadObject                 ``size``, ``exists``            s3:GetObject (+ s3:ListBucket, without
                                                           which a missing key answers 403, not 404)
DeleteObject               ``delete``                      s3:DeleteObject
=========================  ==============================  ===========================================

botocore's ``NoSuchKey``/``404`` become :class:`BlobNotFound` here, at the border; an endpoint that
cannot be reached, answers 5xx or refuses us (every other botocore error) becomes the core's
``StorageUnavailable`` (503) in :func:`_outage`, with botocore's error chained for the log.
Memory is bounded: a ``put`` holds at most ``max_concurrency`` parts of ``part_size`` bytes, a
``writer`` spools its parts (the one being filled and at most two being sent) to anonymous local
files, reads hold one chunk at a time.

A ``writer`` (:class:`S3Writer`) is a multipart upload under the blob's own key: parts are sent as
they fill while the body still arrives, and the object exists only once CompleteMultipartUpload
returns, so a refused or broken upload is aborted and leaves neither an object nor an open
multipart upload. Uploads whose process died are aborted by ``abort_stale_writes`` (the garbage
collector, with ``s3_stale_upload_seconds`` of grace; an S3 lifecycle rule
``AbortIncompleteMultipartUpload`` is a good second net). An upload this process gave up on while
S3 was out of reach (its AbortMultipartUpload failed too, or boto3's ``put`` could not abort) is
remembered by key and aborted at the collector's first round once S3 answers again, without the
grace: its blob id is never used again, so nothing can still be feeding it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from mediagate.core.errors import StorageUnavailable
from mediagate.storage.base import CHUNK_SIZE, BlobNotFound, Buffer, check_blob_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from mediagate.config import Settings

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB
"""S3's smallest part (every part but the last)."""
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def _outage(storage: S3Storage | None = None) -> Iterator[None]:
    """botocore/boto3 failures that are not a missing blob become ``StorageUnavailable``. A
    bucket that is gone (an S3-compatible store restarted empty, a bucket deleted by hand) makes
    ``storage`` look for it again on its next call, and create it if it may."""
    try:
        yield
    except (BotoCoreError, ClientError, Boto3Error) as exc:
        if storage is not None and _no_such_bucket(exc):
            storage.bucket_lost()
        raise StorageUnavailable() from exc


def _no_such_bucket(exc: BaseException | None) -> bool:
    """NoSuchBucket, maybe wrapped (boto3's transfer manager raises S3UploadFailedError)."""
    while exc is not None:
        if isinstance(exc, ClientError) and _error_code(exc) == "NoSuchBucket":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
        spool_dir: Path | None = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes (s3_part_size)")
        self.client = client
        self.bucket = bucket
        self.part_size = part_size
        self.stream_from: int | None = part_size
        self.spool_dir = spool_dir
        """Where a writer spools the parts it has not sent yet (None: the system's temp dir)."""
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
        self._writing: set[str] = set()
        """Upload ids of this process's writers in progress (never stale while we feed them)."""
        self._seen: dict[str, datetime] = {}
        """When ``abort_stale_writes`` first listed each upload it did not abort."""
        self._given_up: set[str] = set()
        """Keys of uploads this process abandoned during an outage, to abort when S3 is back."""
        self._given_up_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        config = Config(
            # a custom endpoint (MinIO, Ceph, moto) rarely has wildcard DNS for virtual hosts
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            signature_version="s3v4",  # presigned read URLs too (SigV2 is refused by newer regions)
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
            part_size=settings.s3_part_size,
            multipart_threshold=settings.s3_part_size,
            spool_dir=settings.staging_dir,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _key(self, blob_id: str) -> str:
        with _outage(self):
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

    def bucket_lost(self) -> None:
        """The bucket answered NoSuchBucket: check (and create, if allowed) again on next use.
        Without ``create_bucket`` nothing changes: every call stays a 503 until it is back."""
        if self.create_bucket:
            self._ready = False

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
        with _outage(self):
            try:
                return self.client.get_object(**kwargs)
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise BlobNotFound(blob_id) from exc
                raise

    # -- the Storage protocol --------------------------------------------------------------------

    def put(self, blob_id: str, source: Path) -> None:
        """Upload ``source`` (multipart above the threshold), then delete it."""
        key = self._key(blob_id)
        try:
            with _outage(self):
                self.client.upload_file(str(source), self.bucket, key, Config=self.transfer)
        except StorageUnavailable:
            if source.stat().st_size >= self.transfer.multipart_threshold:
                self.give_up(key)  # boto3's own abort may have failed in the same outage
            raise
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
        with _outage(self):
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
        with _outage(self):
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

    def copy(self, source_id: str, dest_id: str) -> None:
        """Server-side: no byte passes through this process (boto3's managed copy, a multipart
        copy above the threshold, aborted if it fails)."""
        source, dest = self._key(source_id), self._key(dest_id)
        with _outage(self):
            try:
                self.client.copy(
                    {"Bucket": self.bucket, "Key": source}, self.bucket, dest, Config=self.transfer
                )
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise BlobNotFound(source_id) from exc
                raise

    def read_url(self, blob_id: str, *, expires: int, content_type: str) -> str | None:
        """A presigned GetObject URL (computed locally, no request) whose answer carries
        ``content_type`` whatever the object's own metadata says (a response override)."""
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self.prefix + check_blob_id(blob_id),
            "ResponseContentType": content_type,
        }
        with _outage(self):
            return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))

    def writer(self, blob_id: str) -> S3Writer:
        """Start a multipart upload for ``blob_id`` (CreateMultipartUpload)."""
        key = self._key(blob_id)
        with _outage(self):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        self._writing.add(upload_id)
        return S3Writer(self, blob_id, key, upload_id)

    def give_up(self, key: str) -> None:
        """Any multipart upload under ``key`` is garbage (an abandoned blob's key): the next
        ``abort_stale_writes`` aborts it whatever its age."""
        with self._given_up_lock:
            self._given_up.add(key)

    def abort_stale_writes(self, started_before: datetime) -> int:
        """Abort this store's multipart uploads (keys that are our blob ids under our prefix)
        started before ``started_before`` and not fed by this process: what a process that died
        mid-upload left. "Started" is the later of the store's ``Initiated`` and when this
        process first listed the upload, since some S3-compatible stores (moto among them)
        report a made-up ``Initiated``; so after a restart a stale upload goes one grace later."""
        aborted = 0
        pattern = re.compile(re.escape(self.prefix) + r"[0-9a-f]{32}")
        now = datetime.now(UTC)
        seen: dict[str, datetime] = {}
        refused: set[str] = set()
        with self._given_up_lock:
            given_up, self._given_up = self._given_up, set()
        try:
            with _outage(self):
                self._ensure_bucket()
                paginator = self.client.get_paginator("list_multipart_uploads")
                for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                    for upload in page.get("Uploads", []):
                        key, upload_id = upload.get("Key", ""), upload.get("UploadId", "")
                        if not pattern.fullmatch(key) or upload_id in self._writing:
                            continue
                        first = seen[upload_id] = self._seen.get(upload_id, now)
                        initiated = upload.get("Initiated", now)
                        if max(first, initiated) >= started_before and key not in given_up:
                            continue
                        try:
                            if self._abort(key, upload_id):
                                aborted += 1
                        except StorageUnavailable as exc:
                            if not isinstance(exc.__cause__, ClientError):
                                raise
                            refused.add(key)  # a 5xx, a missing permission: tried next round
                            continue
                        del seen[upload_id]
        except BaseException:
            with self._given_up_lock:
                self._given_up |= given_up  # S3 still out of reach: the next round tries again
            raise
        with self._given_up_lock:
            self._given_up |= refused & given_up
        self._seen = seen
        return aborted

    def _abort(self, key: str, upload_id: str) -> bool:
        """AbortMultipartUpload; False when the upload was gone already (finished or aborted
        meanwhile). Any other refusal is the store's trouble: ``StorageUnavailable``."""
        with _outage(self):
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if _error_code(exc) != "NoSuchUpload":
                    raise
                return False
        return True


class S3Writer:
    """A multipart upload fed while the body arrives: parts of at least ``part_size`` bytes, one
    being filled while at most ``IN_FLIGHT`` earlier ones are sent (UploadPart in threads of the
    writer's own), so sending overlaps receiving. A part is spooled to an anonymous file
    (``spool_dir``; unlinked from the start, so nothing outlives the process) rather than held in
    memory: the kernel's page cache holds it, and memory stays flat whatever the part size."""

    IN_FLIGHT = 2

    def __init__(self, storage: S3Storage, blob_id: str, key: str, upload_id: str) -> None:
        self.blob_id = blob_id
        self._storage = storage
        self._key = key
        self._upload_id = upload_id
        self._filling: _Part | None = None
        self._parts: list[dict[str, Any]] = []
        self._sending: deque[Future[None]] = deque()
        self._sender = ThreadPoolExecutor(max_workers=self.IN_FLIGHT, thread_name_prefix="s3-part")
        self._ended = False

    def write(self, data: Buffer) -> None:
        if self._filling is None:
            self._filling = _Part(self._storage.spool_dir)
        self._filling.write(data)
        if self._filling.size >= self._storage.part_size:
            self._send()

    def _send(self) -> None:
        """Hand the filled part to a sender once fewer than ``IN_FLIGHT`` parts are being sent."""
        part, self._filling = self._filling or _Part(self._storage.spool_dir), None
        try:
            self._wait(self.IN_FLIGHT - 1)
        except BaseException:
            part.close()
            raise
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        self._sending.append(self._sender.submit(self._upload_part, number, part))

    def _upload_part(self, number: int, part: _Part) -> None:
        storage = self._storage
        try:
            part.rewind()
            with _outage(storage):
                answer = storage.client.upload_part(
                    Bucket=storage.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    PartNumber=number,
                    ContentLength=part.size,
                    Body=part,  # type: ignore[arg-type]
                )
        finally:
            part.close()
        self._parts[number - 1]["ETag"] = answer["ETag"]

    def _wait(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` parts are still being sent; raise the first failure."""
        while len(self._sending) > keep:
            self._sending.popleft().result()

    def finish(self) -> None:
        if self._filling is not None or not self._parts:  # the last part may be short (or empty)
            self._send()
        self._wait()
        self._sender.shutdown(wait=False)

    def commit(self) -> None:
        storage = self._storage
        with _outage(storage):
            storage.client.complete_multipart_upload(
                Bucket=storage.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
            )
        self._ended = True
        storage._writing.discard(self._upload_id)

    def abort(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._filling is not None:
            self._filling.close()
            self._filling = None
        while self._sending:
            with contextlib.suppress(Exception):  # its error is the caller's, already raised
                self._sending.popleft().result()
        self._sender.shutdown(wait=False)
        storage = self._storage
        storage._writing.discard(self._upload_id)
        try:
            storage._abort(self._key, self._upload_id)
        except StorageUnavailable:
            storage.give_up(self._key)
            raise


def _stream(body: Any) -> Iterator[bytes]:
    """A GetObject body chunk by chunk; the connection is released even if the reader stops early."""
    try:
        with _outage():
            yield from body.iter_chunks(CHUNK_SIZE)
    finally:
        body.close()


class _Part:
    """One part's bytes in an anonymous spool file, read back by botocore as the request body
    (in large reads: http.client would otherwise send it 16 KiB at a time)."""

    READ_SIZE = 1024 * 1024

    def __init__(self, directory: Path | None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory, buffering=0)  # noqa: SIM115 - see close
        self.size = 0

    def write(self, data: Buffer) -> None:
        fd = self._file.fileno()
        for chunk in data:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            self.size += len(chunk)

    def rewind(self) -> None:
        self._file.seek(0)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(self.READ_SIZE if 0 <= size < self.READ_SIZE else size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
