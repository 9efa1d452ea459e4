"""receivers: and routing: -> Receiver, Routing (severities, categories, teams, escalation)."""

from __future__ import annotations

import difflib
import functools
import zoneinfo
from typing import Any

from stackgen.model.base import BuilderBase, Path_, pairs
from stackgen.model.types import (
    BUILTIN_SEVERITIES,
    IMPACTS,
    BusinessHours,
    EscalationLevel,
    Receiver,
    Routing,
    SeverityRoute,
)

# (group_wait, group_interval, repeat_interval) in seconds when a severity route leaves them out.
TIMING_DEFAULTS = {
    "critical": (10, 300, 3600),
    "warning": (30, 300, 4 * 3600),
    "info": (60, 600, 24 * 3600),
}
OTHER_TIMING = (30, 300, 4 * 3600)


# Alertmanager's week runs from sunday (0) to saturday (6): monday:sunday runs backwards.
WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


@functools.cache
def _time_zones() -> frozenset[str]:
    """The IANA zones this machine knows (Go reads the same database); empty if it has none."""
    try:
        return frozenset(zoneinfo.available_timezones())
    except OSError:
        return frozenset()


class RoutingBuilder(BuilderBase):
    def build_receivers(self, raw: list[dict[str, Any]]) -> tuple[Receiver, ...]:
        self.unique(raw, ("receivers",), "receiver")
        out = []
        for item in raw:
            settings = {k: v for k, v in item.items() if k not in ("name", "type", "description")}
            if item["type"] == "email" and isinstance(settings.get("to"), list):
                settings["to"] = ", ".join(settings["to"])  # Alertmanager: one field, comma-separated
            out.append(Receiver(item["name"], item["type"], item.get("description", ""), pairs(settings)))
        # A Slack incoming webhook is bound to the one channel it was created for: Slack ignores
        # `channel`, so receivers of different channels sharing one would all post to the same.
        first_channel: dict[str, tuple[str, str]] = {}
        for i, item in enumerate(raw):
            if item["type"] != "slack" or "api_url_file" not in item:
                continue
            channel = str(item.get("channel", ""))
            seen = first_channel.setdefault(item["api_url_file"], (item["name"], channel))
            if seen[1] != channel:
                self.fail(
                    ("receivers", i, "api_url_file"),
                    f"the Slack webhook in {item['api_url_file']!r} also serves receiver {seen[0]} ({seen[1]}), "
                    f"but a Slack incoming webhook posts to the one channel it was made for: give {channel} "
                    "its own webhook file",
                )
        return tuple(out)

    def build_routing(self, raw: dict[str, Any], known: set[str], receivers: tuple[Receiver, ...]) -> Routing:
        p: Path_ = ("routing",)
        self.check_receivers(raw["default_receiver"], (*p, "default_receiver"), known)
        severities = []
        for sev, r in raw["severities"].items():
            sp: Path_ = (*p, "severities", sev)
            wait, interval, repeat = TIMING_DEFAULTS.get(sev, OTHER_TIMING)
            severities.append(
                SeverityRoute(
                    sev,
                    self.check_receivers(r["receivers"], (*sp, "receivers"), known),
                    self.duration(r.get("group_wait"), (*sp, "group_wait"), wait, allow_zero=True),
                    self.duration(r.get("group_interval"), (*sp, "group_interval"), interval),
                    self.duration(r.get("repeat_interval"), (*sp, "repeat_interval"), repeat),
                    bool(r.get("business_hours_only", False)),
                )
            )
            if r.get("business_hours_only") and "business_hours" not in raw:
                self.fail(
                    (*sp, "business_hours_only"),
                    "needs routing.business_hours (weekdays, start, end)",
                )
        names = tuple(s.severity for s in severities)
        if "none" in names:
            self.fail((*p, "severities", "none"), "'none' is the Watchdog's severity; pick another name")
        for builtin in BUILTIN_SEVERITIES:
            if builtin not in names:
                self.fail((*p, "severities"), f"needs a route for {builtin!r}: stackgen's own alerts use it")

        def per_severity(block: dict[str, Any], path: Path_) -> tuple[tuple[str, tuple[str, ...]], ...]:
            for sev in block:
                self.check_severity(sev, (*path, sev), names)
            return tuple((sev, self.check_receivers(block[sev], (*path, sev), known)) for sev in names if sev in block)

        categories = tuple(
            (c, per_severity(block, (*p, "categories", c))) for c, block in raw.get("categories", {}).items()
        )
        teams = tuple((t, per_severity(v, (*p, "teams", t))) for t, v in sorted(raw.get("teams", {}).items()))
        label_routes = []
        for i, entry in enumerate(raw.get("labels", [])):
            match = tuple(sorted((str(k), str(v)) for k, v in entry["match"].items()))
            if any(k in ("alertname", "escalation_level") for k, _ in match):
                self.fail(
                    (*p, "labels", i, "match"),
                    "alertname and escalation_level are routed by stackgen itself; match on the alert's other labels",
                )
            label_routes.append((match, per_severity(entry["receivers"], (*p, "labels", i, "receivers"))))
        escalation = []
        levels = raw.get("escalation", [])
        previous_after = 0
        for level in sorted(levels, key=lambda x: x["level"]):
            ep: Path_ = (*p, "escalation", levels.index(level))
            after = self.duration(level["after"], (*ep, "after"), 900)
            if after <= previous_after:
                self.fail((*ep, "after"), "each escalation level must wait longer than the one before")
            previous_after = after
            escalation.append(
                EscalationLevel(
                    level["level"],
                    after,
                    self.check_receivers(level["receivers"], (*ep, "receivers"), known),
                )
            )
        if len({lv["level"] for lv in levels}) != len(levels):
            self.fail((*p, "escalation"), "escalation levels must be unique")
        escalating = tuple(raw.get("escalation_severities", ["critical"]))
        for i, sev in enumerate(escalating):
            self.check_severity(sev, (*p, "escalation_severities", i), names)
        hours = None
        if "business_hours" in raw:
            bh = raw["business_hours"]
            hours = BusinessHours(bh.get("timezone", "UTC"), bh["weekdays"], bh["start"], bh["end"])
            # Judged as Alertmanager judges them (amtool check-config): a range of weekdays runs
            # forwards, times are 00:00-24:00, the zone is in the IANA database Go reads.
            if bh["start"] >= bh["end"]:
                self.fail((*p, "business_hours", "end"), "must be after start")
            days = bh["weekdays"].split(":")
            if len(days) == 2 and WEEKDAYS.index(days[0]) > WEEKDAYS.index(days[1]):
                self.fail(
                    (*p, "business_hours", "weekdays"),
                    f"{bh['weekdays']} runs backwards: Alertmanager's week runs sunday to saturday "
                    "(monday:friday, or sunday:saturday for every day)",
                )
            zone = bh.get("timezone", "UTC")
            zones = _time_zones()
            if zones and zone not in zones and zone not in ("UTC", "Local"):
                close = difflib.get_close_matches(zone, sorted(zones), n=1)
                self.fail(
                    (*p, "business_hours", "timezone"),
                    f"{zone!r} is no IANA time zone" + (f": did you mean {close[0]!r}?" if close else ""),
                )
        watchdog = raw.get("watchdog", {})
        if watchdog:
            self.check_receivers(watchdog["receiver"], (*p, "watchdog", "receiver"), known)
        status = raw.get("status_page", {})
        if status:
            self.check_receivers(status["receiver"], (*p, "status_page", "receiver"), known)
            kind = next((r.type for r in receivers if r.name == status["receiver"]), "webhook")
            if kind != "webhook":
                self.fail((*p, "status_page", "receiver"), f"must be a webhook receiver, not {kind}")
        impacts = {impact: impact for impact in IMPACTS}
        impacts.update({k: str(v) for k, v in status.get("impact", {}).items()})
        if len(set(impacts.values())) != len(impacts):
            self.fail((*p, "status_page", "impact"), "outage and degraded need different values")
        return Routing(
            default_receiver=raw["default_receiver"],
            group_by=tuple(raw.get("group_by", ["alertname", "service", "slo"])),
            severities=tuple(severities),
            categories=categories,
            teams=teams,
            escalation=tuple(escalation),
            business_hours=hours,
            watchdog_receiver=watchdog.get("receiver"),
            watchdog_repeat=self.duration(watchdog.get("repeat_interval"), (*p, "watchdog", "repeat_interval"), 60),
            status_page_receiver=status.get("receiver"),
            escalation_severities=escalating,
            impact_values=tuple(sorted(impacts.items())),
            label_routes=tuple(label_routes),
        )
