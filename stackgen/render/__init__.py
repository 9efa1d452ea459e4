"""One renderer per artifact; render_all() collects {relative path: text} for the writer."""

from __future__ import annotations

from collections.abc import Callable

from stackgen.model import Spec
from stackgen.render import (
    alertmanager,
    alloy,
    compose,
    docs,
    grafana,
    loki,
    prometheus,
    promtail,
    rule_tests,
    rules,
)

RENDERERS: tuple[Callable[[Spec], dict[str, str]], ...] = (
    prometheus.render,
    rules.render,
    rule_tests.render,
    alertmanager.render,
    loki.render,
    promtail.render,
    alloy.render,
    grafana.render,
    compose.render,
)


def render_all(spec: Spec) -> dict[str, str]:
    """Every generated file, keyed by its path relative to the output directory."""
    files: dict[str, str] = {}
    for renderer in RENDERERS:
        produced = renderer(spec)
        clash = files.keys() & produced.keys()
        if clash:
            raise AssertionError(f"two renderers write {sorted(clash)}")
        files.update(produced)
    files.update(docs.render(spec, sorted(files)))
    return dict(sorted(files.items()))
