"""`mediagate policy explain`, run as a real CLI process against a real home.

Policies and signatures are made here with the seed's algorithms (hashlib/hmac), not with our
signing module, so a mistake there cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from mediagate.config import Settings
from tests.conftest import make_home
from tests.support.cli import run_mediagate

OPERATOR, PASSWORD, FORM_SECRET = "op-demo", "pass-word-1", "form-secret-1"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    settings: Settings = make_home(tmp_path_factory.mktemp("home"))
    for name, operator, password, secret in (
        ("demo", OPERATOR, PASSWORD, FORM_SECRET),
        ("other", "op-other", "other-pass", "other-secret"),
    ):
        done = run_mediagate(
            settings.home,
            "bucket",
            "create",
            name,
            "--operator",
            operator,
            "--password",
            password,
            "--form-api-secret",
            secret,
        )
        assert done.returncode == 0, done.stderr
    return settings.home


def explain(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = run_mediagate(home, "policy", "explain", *args, "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def b64_policy(**fields: Any) -> str:
    doc = {"bucket": "demo", "save-key": "/{year}/{filemd5}{.suffix}", "expiration": int(time.time()) + 1800}
    doc.update(fields)
    return base64.b64encode(json.dumps(doc).encode()).decode()


def md5_signature(policy: str, secret: str = FORM_SECRET) -> str:
    return hashlib.md5(f"{policy}&{secret}".encode()).hexdigest()


def authorization(
    policy: str, uri: str, date: str, operator: str = OPERATOR, password: str = PASSWORD
) -> str:
    key = hashlib.md5(password.encode()).hexdigest().encode()
    message = f"POST&{uri}&{date}&{policy}".encode()
    return f"UPYUN {operator}:" + base64.b64encode(hmac.new(key, message, hashlib.sha1).digest()).decode()


def now_date() -> str:
    return format_datetime(datetime.now(UTC), usegmt=True)


def errors(result: dict[str, Any]) -> dict[str, str]:
    return {f["topic"]: f["message"] for f in result["findings"] if f["severity"] == "error"}


# -- verdicts -----------------------------------------------------------------------------------------


def test_valid_policy_with_md5_signature(home: Path) -> None:
    policy = b64_policy(**{"content-length-range": "10,5000", "allow-file-type": "jpg,png"})
    code, result = explain(home, "--bucket", "demo", policy, "--signature", md5_signature(policy))
    assert code == 0, result
    assert result["accepted"] is True
    assert result["dialect"] == "UPYUN FORM policy"
    assert not errors(result)
    allows = " ".join(result["allows"])
    assert "10 to 5000 bytes" in allows
    assert "jpg, png" in allows


def test_valid_policy_with_authorization(home: Path) -> None:
    date = now_date()
    policy = b64_policy(date=date)
    for uri in ("/demo", "/demo/"):
        code, result = explain(
            home, "-b", "demo", policy, "--authorization", authorization(policy, uri, date)
        )
        assert code == 0, result
    code, result = explain(
        home,
        "-b",
        "demo",
        policy,
        "--authorization",
        authorization(policy, "/demo/", date),
        "--uri",
        "/demo/",
    )
    assert code == 0, result


def test_expired(home: Path) -> None:
    policy = b64_policy(expiration=int(time.time()) - 3 * 3600)
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy))
    assert code == 1
    assert errors(result)["expiration"].startswith("expired 3 h ago")


@pytest.mark.parametrize(
    "expiration", [10**12, 10**20, pytest.param(10**400, id="1e400"), "9999999999999999999"]
)
def test_far_future_expiration_is_a_warning_not_a_crash(home: Path, expiration: int | str) -> None:
    """The server accepts any integer expiration; explaining one past the year 9999 crashed."""
    policy = b64_policy(expiration=expiration)
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy))
    assert code == 0, result
    [finding] = [f for f in result["findings"] if f["topic"] == "expiration"]
    assert finding["severity"] == "warning"
    assert "after the year 9999" in finding["message"], finding
    assert any("after the year 9999" in line for line in result["allows"])
    rich = run_mediagate(
        home, "policy", "explain", "-b", "demo", policy, "--signature", md5_signature(policy)
    )
    assert rich.returncode == 0 and "Traceback" not in rich.stderr, rich.stderr
    assert "after the year" in rich.stdout


def test_far_past_expiration_is_expired(home: Path) -> None:
    policy = b64_policy(expiration=-(10**20))
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy))
    assert code == 1
    assert errors(result)["expiration"] == "expired more than 1000 years ago (before the year 1)"


def test_wrong_secret(home: Path) -> None:
    policy = b64_policy()
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy, "not-the-secret"))
    assert code == 1
    assert "does not match" in errors(result)["signature"]
    date = now_date()
    policy = b64_policy(date=date)
    bad = authorization(policy, "/demo/", date, password="wrong")
    code, result = explain(home, "-b", "demo", policy, "--authorization", bad)
    assert code == 1
    assert "does not match" in errors(result)["signature"]


def test_policy_changed_after_signing(home: Path) -> None:
    signed = b64_policy(**{"save-key": "/a.jpg"})
    tampered = b64_policy(**{"save-key": "/b.jpg"})
    code, result = explain(home, "-b", "demo", tampered, "--signature", md5_signature(signed))
    assert code == 1
    assert "signature" in errors(result)


def test_wrong_operator(home: Path) -> None:
    date = now_date()
    policy = b64_policy(date=date)
    auth = authorization(policy, "/demo/", date, operator="op-other", password="other-pass")
    code, result = explain(home, "-b", "demo", policy, "--authorization", auth)
    assert code == 1
    message = errors(result)["operator"]
    assert "'op-other' which is not a credential of bucket 'demo'" in message
    assert "other" in message


def test_bucket_mismatch(home: Path) -> None:
    policy = b64_policy(bucket="other")
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy))
    assert code == 1
    assert errors(result)["bucket"] == "bucket in policy is 'other' but the URL bucket is 'demo'"
    sdk_style = b64_policy(service="other")  # the SDK sends 'service' as well
    code, result = explain(home, "-b", "demo", sdk_style, "--signature", md5_signature(sdk_style))
    assert code == 1
    assert "service in policy is 'other'" in errors(result)["bucket"]


def test_escaping_save_key(home: Path) -> None:
    policy = b64_policy(**{"save-key": "../x"})
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy))
    assert code == 1
    assert errors(result)["save-key"] == "save-key '../x' escapes the bucket ('..' segments are refused)"


def test_every_bad_field_is_reported(home: Path) -> None:
    policy = b64_policy(
        **{"content-length-range": "10,5", "notify-url": "ftp://x", "expiration": int(time.time()) - 60}
    )
    code, result = explain(home, "-b", "demo", policy, "--signature", md5_signature(policy))
    assert code == 1
    found = errors(result)
    assert "min 10 is greater than max 5" in found["content-length-range"]
    assert "notify-url" in found
    assert "expiration" in found
    assert "signature" not in found  # the signature itself is right


def test_no_signature_given(home: Path) -> None:
    code, result = explain(home, "-b", "demo", b64_policy())
    assert code == 1
    assert "--signature" in errors(result)["signature"]


def test_unknown_bucket_and_unknown_format(home: Path) -> None:
    policy = b64_policy(bucket="nope")
    code, result = explain(home, "-b", "nope", policy, "--signature", md5_signature(policy))
    assert code == 1
    assert "does not exist" in errors(result)["bucket"]
    code, result = explain(home, "-b", "demo", "certainly not a token")
    assert code == 1
    assert result["dialect"] == "unknown"


# -- REST Authorization --------------------------------------------------------------------------------


def rest_header(method: str, uri: str, date: str, operator: str = OPERATOR, password: str = PASSWORD) -> str:
    key = hashlib.md5(password.encode()).hexdigest().encode()
    signature = base64.b64encode(hmac.new(key, f"{method}&{uri}&{date}".encode(), hashlib.sha1).digest())
    return f"UPYUN {operator}:{signature.decode()}"


def test_rest_authorization(home: Path) -> None:
    date = now_date()
    header = rest_header("PUT", "/demo/a%20b.txt", date)
    args = ("-b", "demo", header, "--uri", "/demo/a%20b.txt", "--date", date)
    code, result = explain(home, *args, "--method", "PUT")
    assert code == 0, result
    code, result = explain(home, *args, "--method", "DELETE")
    assert code == 1
    assert "method PUT" in errors(result)["signature"]
    stale = format_datetime(datetime.now(UTC) - timedelta(hours=2), usegmt=True)
    code, result = explain(
        home,
        "-b",
        "demo",
        rest_header("GET", "/demo/x", stale),
        "--uri",
        "/demo/x",
        "--date",
        stale,
        "--method",
        "GET",
    )
    assert code == 1
    assert "2 h behind" in errors(result)["date"]


# -- human output ---------------------------------------------------------------------------------------


def test_rich_output_and_exit_codes(home: Path) -> None:
    policy = b64_policy()
    ok = run_mediagate(home, "policy", "explain", "-b", "demo", policy, "--signature", md5_signature(policy))
    assert ok.returncode == 0
    assert "OK" in ok.stdout
    assert "UPYUN FORM policy" in ok.stdout
    assert FORM_SECRET not in ok.stdout
    bad = run_mediagate(home, "policy", "explain", "-b", "demo", policy, "--signature", "0" * 32)
    assert bad.returncode == 1
    assert "WILL FAIL" in bad.stdout
    assert FORM_SECRET not in bad.stdout + bad.stderr
