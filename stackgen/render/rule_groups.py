"""Rule groups read back from rendered rule files, for artifacts that carry them unchanged
(PrometheusRule objects, ruler namespace files): the same text promtool checked and tested."""

from __future__ import annotations

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def service_rule_files(files: dict[str, str], service: str) -> list[str]:
    prefix = f"prometheus/rules/{service}/"
    return sorted(p for p in files if p.startswith(prefix) and p.endswith(".rules.yml"))


def stack_rule_files(files: dict[str, str]) -> list[str]:
    """Rule files of no service: stack.rules.yml, plain alerts of no service, alert packs."""
    return sorted(p for p in files if p.startswith("prometheus/rules/") and p.count("/") == 2 and p.endswith(".yml"))


def group_items(text: str) -> str:
    """The list items under a rule file's `groups:` (comments included), at column 0."""
    _, sep, items = text.partition("\ngroups:\n")
    if not sep:
        raise AssertionError(f"not a rendered rule file: {text[:80]!r}")
    return items if items.endswith("\n") else items + "\n"


def group_sizes(text: str) -> list[tuple[str, int]]:
    """(group name, number of rules) of each group in a rule file."""
    data = yaml.load(text, Loader=_Loader)
    return [(group["name"], len(group["rules"])) for group in data["groups"]]
