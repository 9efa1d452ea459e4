"""promtool unit tests generated next to the rules (filled in by the SLO engine)."""

from __future__ import annotations

from stackgen.model import Spec


def render(spec: Spec) -> dict[str, str]:
    del spec
    return {}
