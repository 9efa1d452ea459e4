"""B2: evaluation cost of the generated SLO rules at steady state in a real Prometheus,
against the rule shapes of existing SLO generators:

- Sloth-shaped: every window rate()s the raw counters; the period is the mean of the 5m
  ratios (sum_over_time / count_over_time over 30d); one group at the global 1m interval.
- Pyrra-shaped: every window rate()s the raw counters in a 30s group; the period is
  increase() over the raw counters for 30d, in its own group at 2m30s (Pyrra's interval
  for windows of 28d to 35d).

Steady state: the history is as long as the longest window any of them reads (the 30d
period) plus a day, so no window is cut short. Synthetic data: one event-ratio SLO over a
counter with 100 label sets at 15 s (15 error series), 31 days. The series the rules read
are written alongside: stackgen's 1m base rates and their hourly sums, Sloth's 5m ratio,
each computed from the same counters as its rule would (rate() over exactly aligned
samples is exact), and loaded with `promtool tsdb create-blocks-from openmetrics` in blocks
of up to 20 days (it re-reads the whole input for each block).

At the end time every rule expression is queried with stats=all; totalQueryableSamples is
a count of samples read, which machine noise does not move. Per minute of evaluation: a
rule in a 30s group counts twice, one in a 2m30s group 0.4 times.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from fractions import Fraction
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SERIES, ERROR_SERIES = 100, 15
STEP, DAYS = 15, 31
PORT = 19190
END = 1_700_000_000 - 1_700_000_000 % 86400  # a whole hour: rollups are read at the hours
START = END - DAYS * 86400
INCIDENT = (END - 3 * 3600, END)  # the last 3 hours: error series fail 200x more often
ERROR_INC, INCIDENT_FACTOR, GOOD_INC = 0.005, 200, 1.0  # per series per 15s step
WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
TIERS = (("1h", "5m", 14.4), ("6h", "30m", 6), ("1d", "2h", 3), ("3d", "6h", 1))
BUDGET = 0.005
SERVICE, SLO, TEAM = "bench", "s0", "storefront"
GROUPED_SLO, ROUTES = "s0-by-route", 10  # the same SLI, one SLO per route (group_by)
BAD_SEL = f'bench_requests_total{{slo="{SLO}", code="500"}}'
TOTAL_SEL = f'bench_requests_total{{slo="{SLO}"}}'


def spec_text() -> str:
    spec = yaml.safe_load((ROOT / "slos.yaml").read_text())
    spec["services"] = [
        {
            "name": SERVICE,
            "team": TEAM,
            "slos": [
                {"name": SLO, "objective": 99.5, "sli": {"events": {"bad": BAD_SEL, "total": TOTAL_SEL}}},
                {
                    "name": GROUPED_SLO,
                    "objective": 99.5,
                    "group_by": ["route"],
                    "max_groups": ROUTES,
                    "sli": {"events": {"bad": BAD_SEL, "total": TOTAL_SEL}},
                },
            ],
        }
    ]
    # Only the bench service exists: drop what refers to the demo's others.
    spec["logs"]["alerts"] = {}
    spec.pop("alerts", None)
    for source in spec["logs"].get("sources", []):
        source.pop("service", None)
    spec["routing"]["teams"] = {k: v for k, v in spec["routing"].get("teams", {}).items() if k == TEAM}
    return yaml.safe_dump(spec)


def increment(t: int, error: bool) -> float:
    if not error:
        return GOOD_INC
    return ERROR_INC * (INCIDENT_FACTOR if INCIDENT[0] < t <= INCIDENT[1] else 1)


def write_openmetrics(path: Path) -> tuple[int, dict[int, tuple[float, float]]]:
    """Raw counters at 15 s, then the recorded series the rules read, at 1m: for the SLO, and
    per route for its grouped twin. Returns the line count and the (bad, total) counter sums
    at each whole minute, for the exact ratios."""
    steps = range(START, END + 1, STEP)
    by_route: dict[int, list[tuple[float, float]]] = {}  # minute -> per route (bad, total)
    lines = 0
    with path.open("w") as out:
        out.write("# TYPE bench_requests counter\n")
        values = [0.0] * SERIES
        labels = [
            f'bench_requests_total{{slo="{SLO}",route="r{k % ROUTES}",instance="i{k}",'
            f'code="{"500" if k < ERROR_SERIES else "200"}"}} '
            for k in range(SERIES)
        ]
        for t in steps:
            bad_inc, good_inc = increment(t, True), increment(t, False)
            if t > START:
                for k in range(SERIES):
                    values[k] += bad_inc if k < ERROR_SERIES else good_inc
            out.write("".join(f"{labels[k]}{values[k]:.3f} {t}\n" for k in range(SERIES)))
            lines += SERIES
            if t % 60 == 0:
                per = [[0.0, 0.0] for _ in range(ROUTES)]
                for k in range(SERIES):
                    if k < ERROR_SERIES:
                        per[k % ROUTES][0] += values[k]
                    per[k % ROUTES][1] += values[k]
                by_route[t] = [(bad, total) for bad, total in per]
        minutes = sorted(by_route)
        sums = {t: (sum(r[0] for r in rs), sum(r[1] for r in rs)) for t, rs in by_route.items()}

        def rate(table: dict[int, tuple[float, float]], t: int, which: int, window: int) -> float | None:
            if t - window not in table:
                return None
            return (table[t][which] - table[t - window][which]) / window

        # (labels, the (bad, total) counter sums it covers): the SLO, then each route of its twin.
        owners = [(f'service="{SERVICE}",slo="{SLO}",team="{TEAM}"', sums)] + [
            (
                f'route="r{r}",service="{SERVICE}",slo="{GROUPED_SLO}",team="{TEAM}"',
                {t: rs[r] for t, rs in by_route.items()},
            )
            for r in range(ROUTES)
        ]

        def family(name: str, which: int, hours: bool) -> None:
            nonlocal lines
            out.write(f"# TYPE {name} gauge\n")
            for owner, table in owners:
                base = {t: rate(table, t, which, 60) for t in minutes}
                for t in minutes:
                    if hours:
                        parts = [base.get(t - 60 * i) for i in range(60)]
                        value = None if any(p is None for p in parts) else sum(parts)  # type: ignore[arg-type]
                    else:
                        value = base[t]
                    if value is not None:
                        out.write(f"{name}{{{owner}}} {value!r} {t}\n")
                        lines += 1

        family("slo:sli_bad_events:rate1m", 0, hours=False)
        family("slo:sli_total_events:rate1m", 1, hours=False)
        family("slo:sli_bad_events:rate1m_sum1h", 0, hours=True)
        family("slo:sli_total_events:rate1m_sum1h", 1, hours=True)
        # The base rates tagged with their hour (numbered by the mark that ends it, mod 24),
        # as the rule slo:sli_events:rate1m_by_hour records them: the period reads this hour.
        out.write("# TYPE slo:sli_events:rate1m_by_hour gauge\n")
        by_hour: dict[int, list[int]] = {}
        for t in minutes:
            by_hour.setdefault(-(-t // 3600) % 24, []).append(t)
        for owner, table in owners:
            for which, events in ((0, "bad"), (1, "total")):
                for hour, hour_minutes in sorted(by_hour.items()):  # each series' samples together
                    for t in hour_minutes:
                        value = rate(table, t, which, 60)
                        if value is not None:
                            out.write(
                                f'slo:sli_events:rate1m_by_hour{{{owner},slo_events="{events}",slo_hour="{hour}"}} '
                                f"{value!r} {t}\n"
                            )
                            lines += 1
        out.write("# TYPE sloth:sli_error:ratio_rate5m gauge\n")
        for t in minutes:
            bad, total = rate(sums, t, 0, 300), rate(sums, t, 1, 300)
            if bad is not None and total:
                out.write(f'sloth:sli_error:ratio_rate5m{{slo="{SLO}"}} {bad / total!r} {t}\n')
                lines += 1
        out.write("# EOF\n")
    return lines, sums


def raw_window_rules(record: str) -> list[dict]:  # type: ignore[type-arg]
    """Every window as a ratio of rate()s over the raw counters (Sloth's and Pyrra's shape)."""
    return [
        {
            "record": f"{record}{w}",
            "labels": {"slo": SLO},
            "expr": f"sum(rate({BAD_SEL}[{w}])) / sum(rate({TOTAL_SEL}[{w}]))",
        }
        for w in WINDOWS
    ]


def burn_alerts(alert: str, record: str) -> list[dict]:  # type: ignore[type-arg]
    return [
        {
            "alert": f"{alert}{long}",
            "labels": {"slo": SLO},
            "expr": f'({record}{short}{{slo="{SLO}"}} > ({rate} * {BUDGET})) and '
            f'({record}{long}{{slo="{SLO}"}} > ({rate} * {BUDGET}))',
        }
        for long, short, rate in TIERS
    ]


def sloth_groups() -> list[dict]:  # type: ignore[type-arg]
    period = {
        "record": "sloth:sli_error:ratio_rate30d",
        "labels": {"slo": SLO},
        "expr": f'sum_over_time(sloth:sli_error:ratio_rate5m{{slo="{SLO}"}}[30d]) / '
        f'ignoring (sloth_window) count_over_time(sloth:sli_error:ratio_rate5m{{slo="{SLO}"}}[30d])',
    }
    rules = [*raw_window_rules("sloth:sli_error:ratio_rate"), period]
    return [{"name": f"sloth-{SLO}", "rules": rules + burn_alerts("SlothBurn", "sloth:sli_error:ratio_rate")}]


def pyrra_groups() -> list[dict]:  # type: ignore[type-arg]
    increase = [
        {"record": "pyrra:increase30d", "labels": {"slo": SLO, "code": code}, "expr": f"sum(increase({sel}[30d]))"}
        for code, sel in (("500", BAD_SEL), ("all", TOTAL_SEL))
    ]
    rules = raw_window_rules("pyrra:burnrate") + burn_alerts("PyrraBurn", "pyrra:burnrate")
    return [
        {"name": f"pyrra-{SLO}", "interval": "30s", "rules": rules},
        {"name": f"pyrra-{SLO}-increase", "interval": "2m30s", "rules": increase},
    ]


def run(argv: list[str], **kw: object) -> None:
    subprocess.run(argv, check=True, capture_output=True, **kw)  # type: ignore[call-overload]


class Prometheus:
    def __init__(self, data: Path, config: Path) -> None:
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{PORT}",
                "--storage.tsdb.retention.time=3650d",
                "--query.lookback-delta=5m",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{PORT}/-/ready", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("prometheus did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def query(self, expr: str, at: int) -> dict:  # type: ignore[type-arg]
        query = urllib.parse.urlencode({"query": expr, "time": at, "stats": "all"})
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/query?{query}", timeout=300) as r:
            return json.loads(r.read())["data"]  # type: ignore[no-any-return]

    def cost(self, expr: str, at: int) -> tuple[int, float, int]:
        data = self.query(expr, at)
        stats = data["stats"]
        return (
            stats["samples"]["totalQueryableSamples"],
            float(stats["timings"]["execTotalTime"]),
            len(data["result"]),
        )

    def value(self, expr: str, at: int) -> float:
        result = self.query(expr, at)["result"]
        assert len(result) == 1, (expr, result)
        return float(result[0]["value"][1])


def per_minute(group: dict) -> Fraction:  # type: ignore[type-arg]
    """Evaluations per minute of a group: its own interval, else the global 1m."""
    from stackgen.durations import parse_duration

    return Fraction(60, parse_duration(group.get("interval", "1m")))


def exact_budget_left(sums: dict[int, tuple[float, float]], t: int) -> float:
    """1 - ratio / b with the ratio of sums over (t - 30d, t]: what the budget should say."""
    start = t - 30 * 86400
    bad = sums[t][0] - sums[start][0]
    total = sums[t][1] - sums[start][1]
    return 1 - bad / total / BUDGET


def main() -> None:
    from stackgen.model import build_model
    from stackgen.render import render_all
    from stackgen.spec import load_spec_text

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="stackgen-b2-"))
    try:
        files = render_all(build_model(load_spec_text(spec_text())))

        def rule_groups(slo: str) -> list[dict]:  # type: ignore[type-arg]
            names = (
                f"prometheus/rules/{SERVICE}/{slo}.rules.yml",
                f"prometheus/rules/{SERVICE}/{slo}.dashboard.rules.yml",
            )
            return [g for name in names for g in yaml.safe_load(files[name])["groups"]]

        ours, grouped = rule_groups(SLO), rule_groups(GROUPED_SLO)
        data, config = work / "data", work / "prometheus.yml"
        config.write_text("global: {scrape_interval: 15s}\n")
        om = work / "data.om"
        lines, sums = write_openmetrics(om)
        generated = time.monotonic() - started
        run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=744h", str(om), str(data)])
        om.unlink()
        loaded = time.monotonic() - started
        prom = Prometheus(data, config)
        try:
            rows = []
            for name, groups in (
                ("stackgen", ours),
                ("Sloth-shaped", sloth_groups()),
                ("Pyrra-shaped", pyrra_groups()),
                (f"stackgen, grouped by route ({ROUTES} groups)", grouped),
            ):
                per_eval = per_min = Fraction(0)
                exec_s = 0.0
                firing = set()
                # Across groups: a grouped SLO's rules are split in :sli and :alerts groups.
                records = {r["record"]: r["expr"] for group in groups for r in group["rules"] if "record" in r}
                for group in groups:
                    for rule in group["rules"]:
                        count, seconds, _ = prom.cost(rule["expr"], END)
                        per_eval += count
                        per_min += count * per_minute(group)
                        exec_s += seconds
                        if "alert" in rule and re.match(r"(SLOBurnRate|SlothBurn|PyrraBurn)", rule["alert"]):
                            # Recorded window ratios are not backfilled: inline their expressions to
                            # see whether the alert condition holds at the end of the incident.
                            inlined = re.sub(
                                r"([a-z_]+:(?:sli_error:ratio_rate|burnrate)\w+)\{[^}]*\}",
                                lambda m, records=records: f"({records[m.group(1)]})",
                                rule["expr"],
                            )
                            fired = prom.cost(inlined, END)[2]
                            if fired:
                                firing.add(rule["alert"] + (f" x{fired}" if fired > 1 else ""))
                rows.append((name, per_eval, per_min, exec_s, sorted(firing)))
            # The budget through the hourly rollups against the exact ratio of sums: at the end
            # (a whole hour), half an hour into the incident (the rollups lag by 30 min), and
            # mid-hour before it (steady traffic).
            budget_expr = re.sub(
                r"slo:sli_error:ratio_rate30d\{[^}]*\}",
                lambda m: (
                    "("
                    + next(
                        r["expr"] for g in ours for r in g["rules"] if r.get("record") == "slo:sli_error:ratio_rate30d"
                    )
                    + ")"
                ),
                next(
                    r["expr"] for g in ours for r in g["rules"] if r.get("record") == "slo:error_budget_remaining:ratio"
                ),
            )
            budget_rows = []
            for label, t in (
                ("end (a whole hour)", END),
                ("mid-hour, 30 min into the incident", INCIDENT[0] + 1800),
                ("mid-hour, steady traffic", INCIDENT[0] - 1800),
            ):
                got = prom.value(budget_expr, t)
                want = exact_budget_left(sums, t)
                budget_rows.append((label, got, want, abs(got - want) / abs(want)))
        finally:
            prom.stop()
        base = rows[0][2]
        lines_out = [
            "",
            "## B2: rule evaluation cost at steady state (31 days of history, evaluated at the end)",
            "",
            f"1 event-ratio SLO x {SERIES} counter series ({ERROR_SERIES} error series) at {STEP}s for {DAYS} days, "
            f"plus the recorded series the rules read ({lines:,} samples); incident: error series fail "
            f"{INCIDENT_FACTOR}x more often in the last 3h (15% errors against a 99.5% objective).",
            "",
            "| rule set | samples read per evaluation | samples read per minute | x stackgen "
            "| query time, all rules | alerts firing at the end |",
            "|---|---|---|---|---|---|",
        ]
        for name, per_eval, per_min, exec_s, firing in rows:
            lines_out.append(
                f"| {name} | {float(per_eval):,.0f} | {float(per_min):,.0f} | {float(per_min / base):,.0f}x | "
                f"{exec_s * 1000:.0f} ms | {', '.join(firing) or 'none'} |"
            )
        lines_out += [
            "",
            "| budget left (30d, stackgen, hourly rollups) | stackgen | exact ratio of sums | relative difference |",
            "|---|---|---|---|",
        ]
        for label, got, want, diff in budget_rows:
            lines_out.append(f"| {label} | {got:.6f} | {want:.6f} | {diff:.4%} |")
        lines_out += [
            "",
            f"Data generated in {generated:.0f} s, loaded by {loaded:.0f} s; "
            f"B2 took {time.monotonic() - started:.0f} s. "
            "Alerts firing: each alert condition at the end time with its recorded window ratios inlined.",
        ]
        text = "\n".join(lines_out) + "\n"
        print(text)
        results = ROOT / "bench/results/latest.md"
        results.write_text(results.read_text() + "\n" + text)  # after B1, which run.py just wrote
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
