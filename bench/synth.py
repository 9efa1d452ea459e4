"""Synthetic specs for benchmarks: N SLOs over N/5 services, every SLI kind, routing and
escalation from the default spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def sli(kind: int, s: int) -> dict[str, Any]:
    if kind == 0:
        return {
            "events": {
                "bad": f'http_requests_total{{job="svc{s}", code=~"5.."}}',
                "total": f'http_requests_total{{job="svc{s}"}}',
            }
        }
    if kind == 1:
        return {"events": {"good": f'jobs_total{{job="svc{s}", result="ok"}}', "total": f'jobs_total{{job="svc{s}"}}'}}
    if kind == 2:
        return {
            "latency": {
                "histogram": "http_request_duration_seconds",
                "selector": f'{{job="svc{s}"}}',
                "threshold": 0.25,
                "buckets": [0.05, 0.1, 0.25, 0.5, 1],
            }
        }
    if kind == 3:
        return {"availability": {"metric": "up", "selector": f'{{job="svc{s}"}}'}}
    return {"raw": {"error_ratio": f'1 - avg(avg_over_time(quality_ratio{{job="svc{s}"}}[{{{{window}}}}]))'}}


def synthetic_spec(slos: int, varied: bool = False) -> str:
    """N SLOs in 5 shapes; varied=True gives every SLO its own objective (so its own numbers)."""
    spec = yaml.safe_load((ROOT / "slos.yaml").read_text())
    teams = ["storefront", "search", "integrations"]
    services = []
    for s in range(max(1, slos // 5)):
        services.append(
            {
                "name": f"svc-{s}",
                "team": teams[s % 3],
                "jobs": [],
                "slos": [
                    {
                        "name": f"slo-{k}",
                        "objective": round(95 + (5 * s + k) * 0.0049, 4) if varied else [99.5, 99.9, 95, 99, 90][k],
                        "sli": sli(k, s),
                        **({"period": "28d"} if k == 4 else {}),
                        **(
                            {
                                "alerting": {
                                    "tiers": [
                                        {"severity": "page", "long_window": "6h", "budget_percent": 5},
                                        {"severity": "ticket", "long_window": "3d", "budget_percent": 10},
                                    ]
                                }
                            }
                            if k == 4
                            else {}
                        ),
                    }
                    for k in range(min(5, slos - 5 * s) if slos >= 5 else slos)
                ],
            }
        )
    spec["services"] = services
    # Team routes must name a team something belongs to (10 SLOs make only two teams).
    present = {svc["team"] for svc in services}
    spec["routing"]["teams"] = {k: v for k, v in spec["routing"].get("teams", {}).items() if k in present}
    spec["logs"]["alerts"] = {"error_rate": {"per_second": 1}}
    # The default spec's file sources name its own services.
    spec["logs"]["sources"] = [source for source in spec["logs"].get("sources", []) if "service" not in source]
    spec.pop("alerts", None)  # the demo's plain alerts belong to its own services
    return yaml.safe_dump(spec, sort_keys=False)


if __name__ == "__main__":
    import sys

    print(synthetic_spec(int(sys.argv[1])), end="")
