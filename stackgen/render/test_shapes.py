"""SLOs of one shape share one promtool alerts test.

An SLO's rules are two base rules (its SLI's selectors, per SLO) and, above them, windows,
rollups, budget and alerts that read only the recorded base series. Those upper rules depend
on the SLO's shape (SLI kind, objective, period, tiers, budget line, grouping) and on its names;
the names only label them. So the alerts test of one SLO of a shape, which replays days
of traffic, proves the math of every SLO of that shape, and each SLO keeps its own recording
test, which checks its base rules and windows against its own selectors in minutes of traffic.
`tests/test_shapes.py` proves the claim: SLOs of one shape have the same upper rules, names
aside, and a covered SLO passes its own alerts test.

Why: the alerts tests were two thirds of a render and nearly all of `stackgen validate`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stackgen.model import SLO, Spec

Shape = tuple[Any, ...]


def shape(slo: SLO) -> Shape:
    """What the upper rules' math reads. Names, labels, selectors and text are not in it."""
    sli = slo.sli
    return (
        sli.kind,
        sli.native,
        sli.metric,
        tuple(getattr(sli, f) is not None for f in ("bad", "good", "total", "histogram", "threshold")),
        slo.objective.normalize(),
        slo.period,
        slo.tiers,
        Decimal(slo.budget_low).normalize(),
        slo.group_by,
        slo.max_groups,
    )


Key = tuple[str, str]  # (service, SLO name)
_cache: tuple[Spec, dict[Key, SLO], dict[Key, list[SLO]]] | None = None


def _shapes(spec: Spec) -> tuple[dict[Key, SLO], dict[Key, list[SLO]]]:
    """(service, SLO) -> the SLO whose alerts test covers it: the first testable SLO of its shape
    in spec order whose test is fullest (itself, for that one); and each such SLO -> the others
    it covers. Untestable SLOs are in neither: they get their own no-data test."""
    global _cache
    if _cache is not None and _cache[0] is spec:
        return _cache[1], _cache[2]
    from stackgen.render.rule_tests import group_labels, testable  # rule_tests reads the rules labelled here

    def full(slo: SLO) -> bool:
        """Its test can synthesise one group over max_groups (else that case is a no-data one)."""
        return not slo.group_by or group_labels(slo, slo.max_groups + 1) is not None

    members: dict[Shape, list[SLO]] = {}
    for slo in spec.slos:
        if testable(slo):
            members.setdefault(shape(slo), []).append(slo)
    rep_of: dict[Key, SLO] = {}
    covers: dict[Key, list[SLO]] = {}
    for group in members.values():
        # The first SLO in spec order, unless a later one's test is fuller (grouped SLOs).
        rep = next((s for s in group if full(s)), group[0])
        for slo in group:
            rep_of[(slo.service, slo.name)] = rep
            if slo is not rep:
                covers.setdefault((rep.service, rep.name), []).append(slo)
    _cache = (spec, rep_of, covers)
    return rep_of, covers


def representative(spec: Spec, slo: SLO) -> SLO | None:
    """The SLO whose alerts test covers this one (itself when it is its shape's); None when it
    is not testable."""
    return _shapes(spec)[0].get((slo.service, slo.name))


def covered(spec: Spec, slo: SLO) -> list[SLO]:
    """The other SLOs whose alert rules this SLO's alerts test covers, in spec order."""
    return _shapes(spec)[1].get((slo.service, slo.name), [])
