"""``promote`` (``service/rollout/promotion.py``) on one store: a refusal is a decision in the
history that a rollback skips; a caller's ``expect`` that no longer holds is a 409."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.errors import AliasChanged
from service.rollout.aliases import PRODUCTION, AliasStore
from service.rollout.gate import Gate
from service.rollout.promotion import promote

GATE = Gate({1: 0.90, 2: 0.95, 3: 0.80}.get, 0.005)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AliasStore]:
    aliases = AliasStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    aliases.ensure_production("m", 1, "first")
    yield aliases
    aliases.close()


def test_a_refused_promotion_is_in_the_history_and_the_alias_stays(store: AliasStore) -> None:
    assert promote(store, "m", 2, PRODUCTION, GATE, "a", reason="better").promoted
    refused = promote(store, "m", 3, PRODUCTION, GATE, "b", reason="worse")
    assert not refused.promoted
    assert refused.verdict is not None
    assert refused.verdict.production_version == 2
    last = store.history("m")[0]
    assert (last.kind, last.from_version, last.to_version, last.actor) == ("refused", 2, 3, "b")
    assert "0.8000 < 0.9500" in last.reason
    assert store.aliases("m")[PRODUCTION] == 2
    back = store.rollback("m", PRODUCTION, actor="c", reason="undo", available=[1, 2, 3])
    assert (back.previous, back.version) == (2, 1)  # the move undone, not the refusal


def test_a_move_expecting_a_version_the_alias_no_longer_names_is_409(store: AliasStore) -> None:
    promote(store, "m", 2, PRODUCTION, None, "a", reason="moved meanwhile")
    with pytest.raises(AliasChanged, match="names version 2, not 1") as raised:
        promote(store, "m", 3, PRODUCTION, None, "b", expect=1, reason="late")
    assert raised.value.status_code == 409
    assert store.aliases("m")[PRODUCTION] == 2
