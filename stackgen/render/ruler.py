"""mimir/rules/: the SLO and service rules as namespace files for a long-term store's ruler.

With long_term_storage.evaluate: ruler (Mimir or Cortex), `mimirtool rules load mimir/rules/*.yaml`
(or `cortextool rules load`) loads one namespace per service. The groups are the rendered rule
files' own, text and all: what promtool checked and unit-tested is what the ruler runs. The
Thanos ruler reads Prometheus rule files as they are (prometheus/rules/<service>/).
"""

from __future__ import annotations

import re

from stackgen.durations import format_duration
from stackgen.errors import LimitExceeded
from stackgen.model import Spec
from stackgen.render.common import header
from stackgen.render.rule_groups import group_items, group_sizes, service_rule_files

RULER_DIR = "mimir/rules"
LIMITS_PATH = ("stack", "long_term_storage", "ruler_limits")


def namespace_file(service: str) -> str:
    return f"{RULER_DIR}/{service}.yaml"


def render(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    storage = spec.stack.long_term_storage
    if not storage or not storage.in_ruler or storage.kind == "thanos":
        return {}
    out: dict[str, str] = {}
    groups = 0
    for service in spec.services:
        paths = service_rule_files(files, service.name)
        if not paths:
            continue
        for path in paths:
            for name, rules in group_sizes(files[path]):
                groups += 1
                if rules > storage.rules_per_group:
                    raise LimitExceeded(
                        LIMITS_PATH,
                        f"rule group {name} ({path}) has {rules} rules; the {storage.kind} ruler allows "
                        f"{storage.rules_per_group} per group. Raise ruler_max_rules_per_rule_group for "
                        "the tenant and set ruler_limits.rules_per_group to match",
                    )
        text = header(
            spec.source_file,
            f"{storage.kind} ruler namespace {service.name}"
            + (f" (tenant {storage.tenant})" if storage.tenant else "")
            + ": its SLO and alert rules, the groups of prometheus/rules/"
            + f"{service.name}/ with query_offset {format_duration(storage.query_offset)} (remote-written "
            + "samples arrive late). Load: mimirtool rules load --address=<ruler> "
            + f"--id={storage.tenant or '<tenant>'} {namespace_file(service.name)}",
        )
        text += f"namespace: {service.name}\ngroups:\n"
        offset = format_duration(storage.query_offset)
        for path in paths:
            # Each group reads query_offset behind now: a remote-written sample arrives seconds
            # after its scrape, and a base window evaluated before it arrives misses it (seen with
            # Cortex 1.21: no page in 5 minutes of 50% errors without it, 26 s with it).
            items = re.sub(
                r"^- name: (.*)$", rf"- name: \1\n  query_offset: {offset}", group_items(files[path]), flags=re.M
            )
            text += f"# From {path.removeprefix('prometheus/')}\n" + items
        out[namespace_file(service.name)] = text
    if groups > storage.groups_per_tenant:
        raise LimitExceeded(
            LIMITS_PATH,
            f"{groups} rule groups for tenant {storage.tenant or '(default)'}; the {storage.kind} ruler "
            f"allows {storage.groups_per_tenant}. Raise ruler_max_rule_groups_per_tenant for the tenant "
            "and set ruler_limits.groups_per_tenant to match",
        )
    return out
