"""spec file -> validated model -> rendered files: the one path every command takes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stackgen.errors import LimitExceeded, SpecError, UsageError
from stackgen.model import Spec, build_model
from stackgen.spec import load_spec
from stackgen.spec.loader import LoadedSpec

TARGETS = ("docker", "host", "kubernetes")


def load(spec_path: Path, target: str | None) -> tuple[LoadedSpec, Spec]:
    """The loaded spec and its model; --target replaces stack.target before the model is
    built, so every check that depends on the target (cAdvisor packs, exporters) runs."""
    if target and target not in TARGETS:
        raise UsageError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    loaded = load_spec(spec_path)
    if target:
        data = {**loaded.data, "stack": {**loaded.data["stack"], "target": target}}
        loaded = dataclasses.replace(loaded, data=data)
    return loaded, build_model(loaded)


def load_model(spec_path: Path, target: str | None) -> Spec:
    return load(spec_path, target)[1]


def render_model(loaded: LoadedSpec, model: Spec) -> dict[str, str]:
    """render_all, with an engine limit the output breaks located in the spec like any problem."""
    from stackgen.render import render_all

    try:
        return render_all(model)
    except LimitExceeded as err:
        raise SpecError([loaded.problem(err.path, err.message)]) from None


def render_spec(spec_path: Path, target: str | None = None) -> dict[str, str]:
    return render_model(*load(spec_path, target))
