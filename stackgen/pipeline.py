"""spec file -> validated model -> rendered files: the one path every command takes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stackgen.model import Spec, build_model
from stackgen.spec import load_spec


def load_model(spec_path: Path, target: str | None) -> Spec:
    model = build_model(load_spec(spec_path))
    if target and target != model.stack.target:
        from stackgen.errors import UsageError

        if target not in ("docker", "host"):
            raise UsageError(f"--target must be docker or host, not {target!r}")
        model = dataclasses.replace(model, stack=dataclasses.replace(model.stack, target=target))
    return model


def render_spec(spec_path: Path, target: str | None = None) -> dict[str, str]:
    from stackgen.render import render_all

    return render_all(load_model(spec_path, target))
