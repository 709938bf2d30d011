"""Upload tokens (core.uploadtokens): checked before any byte, limited to a bucket, a key prefix,
a size and types, spent atomically (N racing uploads on PostgreSQL spend exactly max_uses), and
dead with the key that issued them. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from mediagate.catalog import Catalog
from mediagate.core.apikeys import ApiKey, create_key, revoke_key
from mediagate.core.errors import (
    BadRequest,
    Forbidden,
    MediagateError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from mediagate.core.uploadtokens import (
    check_upload_token,
    issue_upload_token,
    list_upload_tokens,
    release_upload_token,
    revoke_upload_token,
)


@pytest.fixture
def writer(catalog: Catalog) -> ApiKey:
    catalog.create_bucket("photos")
    catalog.create_bucket("other")
    key, _ = create_key(catalog, bucket="photos", scopes=["read", "write"])
    return key


def refusal(exc: pytest.ExceptionInfo[MediagateError]) -> tuple[int, str]:
    return exc.value.status, exc.value.code


def test_a_one_time_token_uploads_once(catalog: Catalog, writer: ApiKey) -> None:
    token, secret = issue_upload_token(catalog, writer, "photos", prefix="avatars/", max_size=1000)
    assert secret.startswith("mgt_") and token.max_uses == 1 and token.uses == 0
    grant = check_upload_token(catalog, secret, bucket="photos", filename="me.png", size=10)
    assert (grant.key, grant.uses_left, grant.max_size) == ("avatars/me.png", 0, 1000)
    with pytest.raises(Forbidden) as again:
        check_upload_token(catalog, secret, bucket="photos", filename="me.png", size=10)
    assert refusal(again) == (403, "token_used_up")


def test_a_failed_upload_gives_its_use_back(catalog: Catalog, writer: ApiKey) -> None:
    _, secret = issue_upload_token(catalog, writer, "photos")
    grant = check_upload_token(catalog, secret, bucket="photos", key="a.txt")
    release_upload_token(catalog, grant)
    assert check_upload_token(catalog, secret, bucket="photos", key="a.txt").uses_left == 0
    [listed] = list_upload_tokens(catalog, "photos")
    assert listed.uses == 1


def test_limits_are_checked_before_a_use_is_spent(catalog: Catalog, writer: ApiKey) -> None:
    _, secret = issue_upload_token(
        catalog, writer, "photos", prefix="u1/", max_size=100, content_types=["image/*"], max_uses=1
    )
    with pytest.raises(PayloadTooLarge) as big:
        check_upload_token(catalog, secret, bucket="photos", key="u1/a.png", size=101)
    assert refusal(big) == (413, "token_max_size")
    with pytest.raises(Forbidden) as outside:
        check_upload_token(catalog, secret, bucket="photos", key="u2/a.png")
    assert refusal(outside) == (403, "key_outside_prefix")
    with pytest.raises(BadRequest) as escape:
        check_upload_token(catalog, secret, bucket="photos", key="u1/../u2/a.png")
    assert refusal(escape) == (400, "invalid_key")
    with pytest.raises(Forbidden) as kind:
        check_upload_token(catalog, secret, bucket="photos", key="u1/a.txt", content_type="text/plain")
    assert refusal(kind) == (403, "content_type_not_allowed")
    with pytest.raises(BadRequest) as nameless:
        check_upload_token(catalog, secret, bucket="photos")
    assert nameless.value.code == "key_required"
    grant = check_upload_token(
        catalog, secret, bucket="photos", key="/u1/a.png", content_type="image/png; q=1"
    )
    assert grant.key == "u1/a.png"  # every refusal above left its one use


def test_a_fixed_key_token(catalog: Catalog, writer: ApiKey) -> None:
    _, secret = issue_upload_token(catalog, writer, "photos", key="/exact/name.jpg", max_uses=3)
    with pytest.raises(Forbidden):
        check_upload_token(catalog, secret, bucket="photos", key="exact/other.jpg")
    named = check_upload_token(catalog, secret, bucket="photos", filename="whatever.png")
    assert named.key == "exact/name.jpg"
    grant = check_upload_token(catalog, secret, bucket="photos", key="exact/name.jpg")
    assert grant.uses_left == 1
    assert grant.upload_grant().render_key(None) == "exact/name.jpg"  # type: ignore[arg-type]


def test_a_token_is_refused_on_another_bucket(catalog: Catalog, writer: ApiKey) -> None:
    _, secret = issue_upload_token(catalog, writer, "photos")
    with pytest.raises(Forbidden) as other:
        check_upload_token(catalog, secret, bucket="other", key="a.txt")
    assert refusal(other) == (403, "token_bucket_mismatch")
    with pytest.raises(Forbidden) as issue:
        issue_upload_token(catalog, writer, "other")
    assert issue.value.code == "bucket_forbidden"


def test_revoking_the_key_or_the_token_kills_it(catalog: Catalog, writer: ApiKey) -> None:
    _, first = issue_upload_token(catalog, writer, "photos", max_uses=5)
    token, second = issue_upload_token(catalog, writer, "photos", max_uses=5)
    revoke_upload_token(catalog, "photos", token.token_id)
    with pytest.raises(Unauthorized):
        check_upload_token(catalog, second, bucket="photos", key="a")
    with pytest.raises(NotFound):
        revoke_upload_token(catalog, "photos", token.token_id)
    check_upload_token(catalog, first, bucket="photos", key="a")
    revoke_key(catalog, writer.key_id)
    with pytest.raises(Unauthorized) as dead:
        check_upload_token(catalog, first, bucket="photos", key="a")
    assert refusal(dead) == (401, "invalid_upload_token")
    with pytest.raises(Unauthorized):
        check_upload_token(catalog, first, bucket="photos", key="a", consume=False)


def test_an_expired_token_is_refused_but_a_session_may_go_on(catalog: Catalog, writer: ApiKey) -> None:
    _, secret = issue_upload_token(catalog, writer, "photos", ttl=1)
    check_upload_token(catalog, secret, bucket="photos", key="a")  # the creation of a session
    time.sleep(1.1)
    with pytest.raises(Forbidden) as late:
        check_upload_token(catalog, secret, bucket="photos", key="b")
    assert refusal(late) == (403, "token_expired")
    assert check_upload_token(catalog, secret, bucket="photos", key="a", consume=False).key == "a"


def test_wrong_secrets_and_bad_requests(catalog: Catalog, writer: ApiKey) -> None:
    _, secret = issue_upload_token(catalog, writer, "photos")
    for guess in ("", secret[:-1] + ("0" if secret[-1] != "0" else "1"), "mgk_" + secret[4:]):
        with pytest.raises(Unauthorized):
            check_upload_token(catalog, guess, bucket="photos", key="a")
    for bad in (
        {"ttl": 0},
        {"ttl": 86_401},
        {"max_uses": 0},
        {"content_types": ["not a type"]},
        {"prefix": "a/../b"},
        {"key": "x/y", "prefix": "z/"},
        {"max_size": -1},
    ):
        with pytest.raises(BadRequest) as refused:
            issue_upload_token(catalog, writer, "photos", **bad)  # type: ignore[arg-type]
        assert refused.value.code == "invalid_token_request", bad


def test_racing_uploads_spend_exactly_max_uses(catalog: Catalog, writer: ApiKey) -> None:
    """Sixteen threads (connections) race for three uses: a conditional UPDATE, not a read and
    then a write, so exactly three win on PostgreSQL's READ COMMITTED too."""
    _, secret = issue_upload_token(catalog, writer, "photos", max_uses=3)
    barrier = threading.Barrier(16)
    outcomes: list[str] = []

    def upload(n: int) -> None:
        barrier.wait()
        try:
            check_upload_token(catalog, secret, bucket="photos", key=f"k{n}")
            outcomes.append("ok")
        except MediagateError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok"] * 3 + ["token_used_up"] * 13
    [listed] = list_upload_tokens(catalog, "photos")
    assert listed.uses == 3


def test_a_token_replaces_an_existing_object_only_if_issued_to(catalog: Catalog, writer: ApiKey) -> None:
    plain, secret = issue_upload_token(catalog, writer, "photos", prefix="u/")
    assert plain.overwrite is False
    grant = check_upload_token(catalog, secret, bucket="photos", key="u/a.png")
    assert not grant.overwrite and grant.upload_grant().insert_only  # the commit is insert-only
    allowed, secret = issue_upload_token(catalog, writer, "photos", prefix="u/", overwrite=True)
    assert allowed.overwrite is True
    grant = check_upload_token(catalog, secret, bucket="photos", key="u/a.png")
    assert grant.overwrite and not grant.upload_grant().insert_only
    assert {t.token_id: t.overwrite for t in list_upload_tokens(catalog, "photos")} == {
        plain.token_id: False,
        allowed.token_id: True,
    }


def test_two_nodes_issuing_at_once_never_pass_the_bucket_limit(catalog: Catalog, catalog_url: str) -> None:
    """``max_upload_tokens_per_bucket`` is counted in the insert's own transaction (the bucket row
    locked on PostgreSQL, one writer on SQLite): sixteen issues racing on two catalogs (two nodes)
    for five places get exactly five tokens; the rest are 409 ``limit_exceeded``. The same holds
    for API keys (one code path, ``Catalog._within``)."""
    catalog.create_bucket("photos")
    issuer, _ = create_key(catalog, bucket="photos", scopes=["write"])
    other = Catalog(catalog_url)
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def issue(n: int) -> None:
        node = catalog if n % 2 else other
        barrier.wait()
        try:
            issue_upload_token(node, issuer, "photos", max_per_bucket=5)
            outcomes.append("issued")
        except MediagateError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert sorted(outcomes) == ["issued"] * 5 + ["limit_exceeded"] * 11
    keys = []
    for _ in range(3):
        keys.append(create_key(catalog, bucket="photos", scopes=["read"], max_per_bucket=4)[0])
    with pytest.raises(MediagateError) as refused:
        create_key(catalog, bucket="photos", scopes=["read"], max_per_bucket=4)
    assert refusal(refused) == (409, "limit_exceeded")
    revoke_key(catalog, keys[0].key_id)
    create_key(catalog, bucket="photos", scopes=["read"], max_per_bucket=4)
