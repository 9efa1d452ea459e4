"""Plain alerts' annotation templates: the allowed forms, and stackgen's expansion of them
(what generated promtool tests expect) against what Prometheus' template engine prints."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from stackgen import alert_templates
from tests.conftest import require_tool

VALUES = [
    90.0,
    95.00000000000001,
    0.001,
    0.0001,
    1e-05,
    2.5e-07,
    1e6,
    999999.0,
    1234567.0,
    123456.7,
    12345.678,
    1 / 3,
    -2.5,
    0.5,
    1e21,
    86400.0,
    9.916666666666666,
]
TEMPLATE = (
    'v={{ $value }} h={{ $value | humanize }} p={{ $value | humanizePercentage }} f={{ $value | printf "%.2f" }} '
    'f0={{$value|printf "%.0f"}} l={{ $labels.x }}'
)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("CPU at {{ $value }}%", True),
        ("{{ $labels.instance }} has {{ $value | humanizePercentage }}", True),
        ('{{ $value | printf "%.1f" }}', True),
        ("{{ $value | humanize }}s", True),
        ("{{ range $labels }}x{{ end }}", False),
        ('{{ query "up" }}', False),
        ("braces }} alone", False),
        ('{{ $value | printf "%d" }}', False),
        ("no template at all", True),
    ],
)
def test_only_the_documented_forms_are_templates(text: str, ok: bool) -> None:
    assert (alert_templates.problem(text) is None) is ok


def test_expansion_matches_prometheus(tmp_path: Path) -> None:
    """One alert per value; promtool's template engine must print exactly what expand() says."""
    promtool = require_tool("promtool")
    rules, checks = [], []
    for i, value in enumerate(VALUES):
        name = f"V{i}"
        rules.append(
            {
                "alert": name,
                "expr": f'label_replace(vector({value!r}), "x", "a-b.c", "", "")',
                "annotations": {"summary": TEMPLATE},
            }
        )
        checks.append(
            {
                "eval_time": "1m",
                "alertname": name,
                "exp_alerts": [
                    {
                        "exp_labels": {"x": "a-b.c"},
                        "exp_annotations": {
                            "summary": alert_templates.expand(TEMPLATE, {"x": "a-b.c"}, Decimal(repr(value)))
                        },
                    }
                ],
            }
        )
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "t", "rules": rules}]}))
    (tmp_path / "test.yml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yml"], "tests": [{"interval": "1m", "alert_rule_test": checks}]})
    )
    proc = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_go_v_formatting_examples() -> None:
    assert [alert_templates.go_v(v) for v in (90.0, 1e6, 1234567.0, 123456.7, 1e-05, 0.0001)] == [
        "90",
        "1e+06",
        "1.234567e+06",
        "123456.7",
        "1e-05",
        "0.0001",
    ]
