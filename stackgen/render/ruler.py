"""mimir/rules/: the SLO and service rules as namespace files for a long-term store's ruler.

With long_term_storage.evaluate: ruler (Mimir or Cortex), `mimirtool rules load mimir/rules/*.yaml`
(or `cortextool rules load`) loads one namespace per service. The groups are the rendered rule
files' own, text and all: what promtool checked and unit-tested is what the ruler runs. To fit
the ruler's limits (Mimir's defaults: 20 rules per group, 70 groups per tenant; ruler_limits in
the spec) consecutive groups of a service are packed into one while they fit, in order; past the
tenant's group limit, every service's groups go into one namespace. The Thanos ruler reads
Prometheus rule files as they are (prometheus/rules/<service>/).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackgen.durations import format_duration
from stackgen.errors import LimitExceeded
from stackgen.model import Spec
from stackgen.render.common import header
from stackgen.render.rule_groups import group_items, service_rule_files

RULER_DIR = "mimir/rules"
LIMITS_PATH = ("stack", "long_term_storage", "ruler_limits")


def namespace_file(service: str) -> str:
    return f"{RULER_DIR}/{service}.yaml"


@dataclass
class SourceGroup:
    """A rendered rule group as text: its comment lines, name, and rule lines (under `rules:`)."""

    path: str
    name: str
    comments: list[str]
    rule_lines: list[str]

    @property
    def size(self) -> int:
        return sum(line.startswith(("  - record:", "  - alert:")) for line in self.rule_lines)


def source_groups(path: str, text: str) -> list[SourceGroup]:
    """A rule file's groups as text. Inside a group's rules every line is kept (a block
    scalar may hold blank lines); blank and column-0 comment lines at the end of a group
    belong to the next one (its heading)."""
    groups: list[SourceGroup] = []
    pending: list[str] = []
    in_rules = False

    def heading_of_next() -> list[str]:
        lines = groups[-1].rule_lines if groups else []
        cut = len(lines)
        while cut and (not lines[cut - 1] or lines[cut - 1].startswith("#")):
            cut -= 1
        tail = lines[cut:]
        del lines[cut:]
        return tail

    for line in group_items(text).splitlines():
        if line.startswith("- name: "):
            heading = heading_of_next() + pending
            groups.append(SourceGroup(path, line.removeprefix("- name: "), heading, []))
            pending, in_rules = [], False
        elif in_rules:
            groups[-1].rule_lines.append(line)
        elif line.startswith("#") or not line:
            pending.append(line)
        elif line == "  rules:":
            in_rules = True
        else:  # a group setting (interval, limit): stackgen renders none, and packing would drop it
            raise AssertionError(f"{path}: group {groups[-1].name} has {line.strip()!r}")
    heading_of_next()  # a file's trailing blank lines
    return groups


def pack(groups: list[SourceGroup], limit: int) -> list[list[SourceGroup]]:
    """Consecutive groups joined while the rules fit the per-group limit, in order: a group's
    rules stay together and in order (an SLO's alerts follow the ratios they read)."""
    packed: list[list[SourceGroup]] = []
    size = 0
    for group in groups:
        if packed and size + group.size <= limit:
            packed[-1].append(group)
            size += group.size
        else:
            packed.append([group])
            size = group.size
    return packed


def packed_name(service: str, members: list[SourceGroup], index: int, count: int) -> str:
    if len(members) == 1:
        return members[0].name
    return f"{service}:packed:{index}" if count > 1 else f"{service}:packed"


def packed_text(service: str, members: list[SourceGroup], index: int, count: int, offset: str) -> str:
    name = packed_name(service, members, index, count)
    if len(members) == 1:
        group = members[0]
        head = [*group.comments, f"# From {group.path.removeprefix('prometheus/')}"]
        return "\n".join([*head, f"- name: {name}", f"  query_offset: {offset}", "  rules:", *group.rule_lines]) + "\n"
    lines = [f"# {len(members)} rule groups packed into one, in order, to fit the ruler's limits:"]
    lines += [f"- name: {name}", f"  query_offset: {offset}", "  rules:"]
    for group in members:
        lines.append(f"  # group {group.name} from {group.path.removeprefix('prometheus/')}")
        lines += [("  " + c if c else c) for c in group.comments]
        lines += group.rule_lines
    return "\n".join(lines) + "\n"


def fewest_rules_per_group(groups: list[SourceGroup], groups_limit: int) -> int:
    """The smallest rules-per-group limit under which `groups`, packed, fit groups_limit."""
    low, high = max(g.size for g in groups), sum(g.size for g in groups)
    while low < high:
        mid = (low + high) // 2
        if len(pack(groups, mid)) <= groups_limit:
            high = mid
        else:
            low = mid + 1
    return low


ALL_SERVICES_FILE = f"{RULER_DIR}/_all-services.yaml"


def render(spec: Spec, files: dict[str, str]) -> dict[str, str]:
    storage = spec.stack.long_term_storage
    if not storage or not storage.in_ruler or storage.kind == "thanos":
        return {}
    per_service: dict[str, list[SourceGroup]] = {}
    for service in spec.services:
        # An SLO's rules before its dashboard rules, which read its ratios: packed into one
        # group, they then read this evaluation's.
        paths = sorted(service_rule_files(files, service.name), key=lambda p: p.replace(".dashboard.", ".~."))
        groups = [g for path in paths for g in source_groups(path, files[path])]
        for group in groups:
            if group.size > storage.rules_per_group:
                raise LimitExceeded(
                    LIMITS_PATH,
                    f"rule group {group.name} ({group.path}) has {group.size} rules; the {storage.kind} ruler "
                    f"allows {storage.rules_per_group} per group. Raise ruler_max_rules_per_rule_group for "
                    "the tenant and set ruler_limits.rules_per_group to match",
                )
        if groups:
            per_service[service.name] = groups
    # A namespace per service (each team sees its own) while that fits the tenant's group
    # limit; past it, one namespace with every service's groups packed together.
    namespaces = {name: pack(groups, storage.rules_per_group) for name, groups in per_service.items()}
    total = sum(len(p) for p in namespaces.values())
    shared = total > storage.groups_per_tenant
    if shared:
        every = [g for groups in per_service.values() for g in groups]
        namespaces = {spec.stack.name: pack(every, storage.rules_per_group)}
        packed = len(namespaces[spec.stack.name])
        if packed > storage.groups_per_tenant:
            raise LimitExceeded(
                LIMITS_PATH,
                f"{sum(g.size for g in every)} rules in {len(every)} rule groups need {packed} groups for tenant "
                f"{storage.tenant or '(default)'}, packed up to {storage.rules_per_group} rules each; the "
                f"{storage.kind} ruler allows {storage.groups_per_tenant}. Raise ruler_max_rule_groups_per_tenant "
                f"to {packed}, or ruler_max_rules_per_rule_group to "
                f"{fewest_rules_per_group(every, storage.groups_per_tenant)}, for the tenant and set ruler_limits "
                "to match",
            )
    out: dict[str, str] = {}
    offset = format_duration(storage.query_offset)
    for name, packed_groups in namespaces.items():
        what = (
            f"the groups of every service ({len(per_service)} namespaces would need {total} groups, over the "
            f"tenant's {storage.groups_per_tenant})"
            if shared
            else f"its SLO and alert rules, the groups of prometheus/rules/{name}/"
        )
        path = ALL_SERVICES_FILE if shared else namespace_file(name)
        text = header(
            spec.source_file,
            f"{storage.kind} ruler namespace {name}"
            + (f" (tenant {storage.tenant})" if storage.tenant else "")
            + f": {what}, packed in order up to {storage.rules_per_group} rules per group, with query_offset "
            + f"{offset} (remote-written samples arrive late). Load: mimirtool rules load --address=<ruler> "
            + f"--id={storage.tenant or '<tenant>'} {path}",
        )
        text += f"namespace: {name}\ngroups:\n"
        # Each group reads query_offset behind now: a remote-written sample arrives seconds after
        # its scrape, and a base window evaluated before it arrives misses it (seen with Cortex
        # 1.21: no page in 5 minutes of 50% errors without it, 26 s with it).
        text += "".join(
            packed_text(name, members, i, len(packed_groups), offset) for i, members in enumerate(packed_groups, 1)
        )
        out[path] = text
    return out
