"""An access key id names one bucket: the schema enforces it (not a check before the insert), and a
bucket is created with its credentials in one transaction. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import os
import threading

import pytest

from mediagate.catalog import Catalog
from mediagate.core.buckets import AKSK, create_bucket
from mediagate.core.errors import Conflict
from mediagate.core.secrets import SecretBox

BOX = SecretBox(base64.urlsafe_b64encode(os.urandom(32)))
RACERS = 8


def test_concurrent_creates_with_one_access_key_one_wins(catalog: Catalog) -> None:
    barrier = threading.Barrier(RACERS)
    outcomes: dict[str, str] = {}

    def create(n: int) -> None:
        barrier.wait()
        try:
            create_bucket(catalog, BOX, f"race-{n}", access_key_id="AKRACE")
            outcomes[f"race-{n}"] = "created"
        except Conflict as exc:
            outcomes[f"race-{n}"] = exc.code

    threads = [threading.Thread(target=create, args=(n,)) for n in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [name for name, outcome in outcomes.items() if outcome == "created"]
    assert len(winners) == 1, outcomes
    assert sorted(set(outcomes.values())) == ["access_key_exists", "created"]
    # the losers left nothing behind: no bucket without credentials, one owner of the key
    assert [b.name for b in catalog.list_buckets()] == winners
    found = catalog.find_credential(AKSK, "AKRACE")
    assert found is not None and found[1].name == winners[0]


def test_the_database_refuses_a_second_bucket_for_an_access_key(catalog: Catalog) -> None:
    """Even past the application (two nodes, an old binary): the index, not a lookup, decides."""
    one = catalog.create_bucket("one")
    two = catalog.create_bucket("two")
    catalog.add_credential(one.id, AKSK, "AKDUP", BOX.seal("s1"))
    with pytest.raises(Conflict) as info:
        catalog.add_credential(two.id, AKSK, "AKDUP", BOX.seal("s2"))
    assert info.value.code == "access_key_exists"
    catalog.revoke_credential(catalog.credentials(one.id, AKSK)[0].id)
    with pytest.raises(Conflict):  # revoked keys keep their bucket: tokens minted from them stay refused
        catalog.add_credential(two.id, AKSK, "AKDUP", BOX.seal("s2"))


def test_operators_and_form_secrets_may_repeat_across_buckets(catalog: Catalog) -> None:
    create_bucket(catalog, BOX, "alpha", operator="shared-op")
    create_bucket(catalog, BOX, "beta", operator="shared-op")
    assert [b.name for b in catalog.list_buckets()] == ["alpha", "beta"]


def test_a_bucket_whose_credentials_fail_is_not_created(catalog: Catalog) -> None:
    create_bucket(catalog, BOX, "first", access_key_id="AKONE")
    with pytest.raises(Conflict):
        create_bucket(catalog, BOX, "second", access_key_id="AKONE")
    assert catalog.get_bucket("second") is None
    create_bucket(catalog, BOX, "second", access_key_id="AKTWO")  # the name is still free
