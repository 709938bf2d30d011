"""Re-sealing every stored secret with the current sealing key (the last step of a key rotation).

Safe while nodes serve: each secret is replaced in its own compare-and-set update, and every node
that lists both keys opens the old and the new sealing alike. Running it twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mediagate.catalog import Catalog
from mediagate.core.secrets import SecretBox, WrongSecretKey

PAGE = 500


@dataclass
class Rotation:
    resealed: int = 0
    current: int = 0
    """Already sealed with the current key."""
    unreadable: list[int] = field(default_factory=list)
    """Credential ids no configured key opens (sealed with a key that was dropped too early)."""


def reseal_all(
    catalog: Catalog, box: SecretBox, advance: Callable[[int], object] = lambda n: None
) -> Rotation:
    """Re-seal every credential's secret with ``box``'s current key; ``advance(n)`` after each page."""
    result = Rotation()
    after = 0
    while page := catalog.sealed_secrets(after_id=after, limit=PAGE):
        for credential_id, sealed in page:
            if box.is_current(sealed):
                result.current += 1
                continue
            try:
                fresh = box.rotate(sealed)
            except WrongSecretKey:
                result.unreadable.append(credential_id)
                continue
            if catalog.reseal_credential(credential_id, sealed, fresh):
                result.resealed += 1
            else:  # changed meanwhile: whoever changed it sealed with a key they had, look again
                result.current += 1
        after = page[-1][0]
        advance(len(page))
    return result
