"""One renderer per artifact; render_all() collects {relative path: text} for the writer.

Renderers whose output grows with the estate (rules, their unit tests, dashboards) are split
into a stack part and a per-service part. Large specs spread the per-service parts over
worker processes (fork: they inherit the model, nothing is pickled on the way in); the
result is the same dict either way, so output bytes do not depend on how it was computed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

from stackgen.model import Service, Spec
from stackgen.render import (
    alert_state,
    alertmanager,
    alloy,
    blackbox,
    component_dashboards,
    compose,
    docs,
    grafana,
    kubernetes,
    loki,
    prometheus,
    promtail,
    rule_tests,
    ruler,
    rules,
)

Renderer = Callable[[Spec], dict[str, str]]
ServiceRenderer = Callable[[Spec, Service], dict[str, str]]

# Artifacts rendered whole.
RENDERERS: tuple[Renderer, ...] = (
    prometheus.render,
    alertmanager.render,
    loki.render,
    promtail.render,
    alloy.render,
    blackbox.render,
    alert_state.render,
    compose.render,
    component_dashboards.render,
)
# Artifacts with a file per SLO or service: (stack part, per-service part).
SPLIT_RENDERERS: tuple[tuple[Renderer, ServiceRenderer], ...] = (
    (rules.render_stack, rules.render_service),
    (rule_tests.render_stack, rule_tests.render_service),
    (grafana.render_stack, grafana.render_service),
    # Runbooks; docs.render writes the stack's documents last (its README lists every path).
    (docs.render_stack, docs.render_service),
)
# Artifacts made of other artifacts (rule groups, alertmanager.yml, dashboards) carried unchanged,
# so what the checks verified is what runs: ruler namespace files, Kubernetes objects.
DERIVED_RENDERERS: tuple[Callable[[Spec, dict[str, str]], dict[str, str]], ...] = (ruler.render, kubernetes.render)
# Below this many SLOs a worker process costs more than it saves.
PARALLEL_MIN_SLOS = 200
JOBS_ENV = "STACKGEN_JOBS"  # 1 renders in this process only; default: one worker per core


def render_all(spec: Spec) -> dict[str, str]:
    """Every generated file, keyed by its path relative to the output directory."""
    # Renderers build acyclic data that reference counting frees; the cycle collector would
    # only re-scan the live model and output: ~4% of the CPU of a 1,000-SLO render. Forked workers
    # inherit the setting.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _render_all(spec)
    finally:
        if collecting:
            gc.enable()


def _render_all(spec: Spec) -> dict[str, str]:
    files: dict[str, str] = {}

    def add(produced: dict[str, str]) -> None:
        clash = files.keys() & produced.keys()
        if clash:
            raise AssertionError(f"two renderers write {sorted(clash)}")
        files.update(produced)

    jobs = _jobs(spec)
    if jobs > 1:
        global _WORKER_SPEC
        _WORKER_SPEC = spec  # set before the workers fork, so they inherit it
        try:
            with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork")) as pool:
                chunks = [list(range(i, len(spec.services), jobs)) for i in range(jobs)]
                pending = [pool.submit(_render_services, chunk) for chunk in chunks]
                _render_here(spec, add, services=())  # this process renders the stack parts meanwhile
                for future in pending:
                    add(future.result())
        finally:
            _WORKER_SPEC = None
    else:
        _render_here(spec, add, services=spec.services)
    for derived in DERIVED_RENDERERS:
        add(derived(spec, files))
    if spec.stack.target == "kubernetes":
        # The charts run the components: compose, prometheus.yml and the agents' files go.
        files = {path: text for path, text in files.items() if kubernetes.keeps(path)}
    files.update(docs.render(spec, sorted(files)))
    return dict(sorted(files.items()))


def _render_here(spec: Spec, add: Callable[[dict[str, str]], None], services: tuple[Service, ...]) -> None:
    for renderer in RENDERERS:
        add(renderer(spec))
    for stack_part, service_part in SPLIT_RENDERERS:
        add(stack_part(spec))
        for service in services:
            add(service_part(spec, service))


def _jobs(spec: Spec) -> int:
    requested = os.environ.get(JOBS_ENV, "")
    if requested.isdigit() and int(requested) > 0:
        jobs = int(requested)
    elif len(spec.slos) < PARALLEL_MIN_SLOS:
        return 1
    else:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1  # spawn would pickle the model into every worker: not worth it
    return max(1, min(jobs, len(spec.services)))


# The model the workers render from.
_WORKER_SPEC: Spec | None = None


def _render_services(indexes: list[int]) -> dict[str, str]:
    spec = _WORKER_SPEC
    assert spec is not None, "worker started without a model"
    out: dict[str, str] = {}
    for index in indexes:
        service = spec.services[index]
        for _, service_part in SPLIT_RENDERERS:
            out.update(service_part(spec, service))
    return out
