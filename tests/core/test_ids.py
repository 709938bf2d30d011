"""Names made without a system call: unique, and blob ids that keep recent blobs together."""

from __future__ import annotations

from mediagate.core.ids import BLOB_WINDOW_SECONDS, blob_hex, unique_hex
from mediagate.storage.base import check_blob_id


def test_unique_hex_looks_like_uuid4_hex_and_never_repeats() -> None:
    made = {unique_hex() for _ in range(20_000)}
    assert len(made) == 20_000
    assert all(len(h) == 32 and int(h, 16) >= 0 for h in made)


def test_blob_ids_are_valid_and_unique() -> None:
    made = {blob_hex() for _ in range(20_000)}
    assert len(made) == 20_000
    for blob_id in list(made)[:100]:
        assert check_blob_id(blob_id) == blob_id and len(blob_id) == 32


def test_blob_ids_made_close_together_share_their_storage_directory() -> None:
    start = 1_700_000_000.0 - 1_700_000_000.0 % BLOB_WINDOW_SECONDS
    ids = [blob_hex(lambda t=t: start + t) for t in (0.0, 1.5, BLOB_WINDOW_SECONDS - 0.01)]
    assert len({i[:4] for i in ids}) == 1
    assert len({i[4:] for i in ids}) == 3


def test_blob_ids_move_to_another_directory_each_window_and_cycle_through_all() -> None:
    first = blob_hex(lambda: 0.0)[:4]
    second = blob_hex(lambda: float(BLOB_WINDOW_SECONDS))[:4]
    assert (first, second) == ("0000", "0001")
    assert blob_hex(lambda: float(BLOB_WINDOW_SECONDS * 0x10000))[:4] == "0000"
    assert blob_hex(lambda: float(BLOB_WINDOW_SECONDS * 0xFFFF))[:4] == "ffff"
