"""Draw a Grafana dashboard's layout as SVG, the way Grafana lays it out: a 24-column grid,
each panel at its gridPos (x, y, w, h), with its title, its type, and its links. Grafana
cannot run here; this shows what a user will see, and tests check the drawing against the
JSON (every panel drawn once, nothing overlapping, links named).

    python -m tests.support.dashboard_svg output/grafana/dashboards/team-storefront/sg-svc-api.json docs/x.svg
"""

from __future__ import annotations

import json
import re
import sys
from html import escape
from pathlib import Path
from typing import Any

COLUMN = 40  # px per grid column (24 columns)
ROW = 30  # px per grid row
COLOURS = {"row": "#e8eef7", "text": "#fff8e1", "stat": "#e8f5e9", "table": "#f3e5f5", "logs": "#eceff1"}


def _links(panel: dict[str, Any]) -> list[str]:
    """Link texts a panel shows: Markdown links of a text panel, and panel links."""
    content = panel.get("options", {}).get("content", "")
    found = [
        re.sub(r"\]\([^)]*\)", "]", line.removeprefix("- ")).replace("`", "")
        for line in content.splitlines()
        if "](" in line
    ]
    found += [link.get("title", "") for link in panel.get("links", [])]
    return found


def svg(dashboard: dict[str, Any], subtitle: str = "") -> str:
    panels = dashboard["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) * ROW + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{24 * COLUMN + 20}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        f'<text x="10" y="22" font-size="16" font-weight="bold">{escape(dashboard["title"])}</text>',
        f'<text x="10" y="40" fill="#555">{escape(subtitle or "uid " + dashboard["uid"])}</text>',
    ]
    for panel in panels:
        pos = panel["gridPos"]
        x, y = 10 + pos["x"] * COLUMN, 50 + pos["y"] * ROW
        w, h = pos["w"] * COLUMN - 4, pos["h"] * ROW - 4
        colour = COLOURS.get(panel["type"], "#ffffff")
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{colour}" stroke="#789" rx="3"/>')
        title = panel.get("title") or panel["type"]
        out.append(f'<text x="{x + 6}" y="{y + 16}" font-weight="bold">{escape(title[:90])}</text>')
        if panel["type"] != "row":
            out.append(f'<text x="{x + 6}" y="{y + 32}" fill="#666">{escape(panel["type"])}</text>')
            for i, link in enumerate(_links(panel)[: max(0, (h - 40) // 15)]):
                out.append(f'<text x="{x + 6}" y="{y + 48 + 15 * i}" fill="#1565c0">{escape(link[:60])}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    subtitle = sys.argv[3] if len(sys.argv) > 3 else ""
    target.write_text(svg(json.loads(source.read_text()), subtitle))


if __name__ == "__main__":
    main()
