"""Signatures seen recently (Wantu manage tokens): the first method wins until the record expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediagate.catalog import Catalog


def test_the_first_method_is_kept_until_expiry(catalog: Catalog) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert catalog.claim_signature("d" * 64, "GET", later) == "GET"
    assert catalog.claim_signature("d" * 64, "GET", later) == "GET"
    assert catalog.claim_signature("d" * 64, "DELETE", later) == "GET"
    assert catalog.claim_signature("e" * 64, "DELETE", later) == "DELETE"


def test_an_expired_record_is_replaced_and_pruned(catalog: Catalog) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert catalog.claim_signature("a" * 64, "GET", past) == "GET"
    assert catalog.claim_signature("a" * 64, "DELETE", datetime.now(UTC) + timedelta(minutes=1)) == "DELETE"
    catalog.claim_signature("b" * 64, "GET", past)
    assert catalog.prune_signatures(datetime.now(UTC)) == 1
    assert catalog.claim_signature("a" * 64, "POST", datetime.now(UTC)) == "DELETE"
