"""One renderer per artifact; render_all() collects {relative path: text} for the writer.

Renderers whose output grows with the estate (rules, their unit tests, dashboards) are split
into a stack part and a per-service part. Large specs spread the per-service parts over this
process and forked workers (fork: they inherit the model, nothing is pickled on the way in);
the result is the same dict either way, so output bytes do not depend on how it was computed.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
from collections.abc import Callable
from multiprocessing.connection import Connection

from stackgen.errors import StackgenError
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
JOBS_ENV = "STACKGEN_JOBS"  # 1 renders in this process only; default: one process per core
CHUNKS_PER_JOB = 8


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
        _merge(files, produced)

    jobs = _jobs(spec)
    if jobs > 1:
        _render_spread(spec, add, jobs)
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


def _render_spread(spec: Spec, add: Callable[[dict[str, str]], None], jobs: int) -> None:
    """The per-service parts, over this process and jobs - 1 forked workers. Services come in
    small chunks that each process takes from one shared counter when it is free, so all end
    at about the same time, and this process renders too: one process per core, none waits
    for a slow one. A worker sends its files once, when no chunk is left (sent chunk by chunk
    while this process renders, they would wait on its interpreter lock)."""
    count = len(spec.services)
    chunks = [range(first, count, n) for n in [min(count, jobs * CHUNKS_PER_JOB)] for first in range(n)]
    context = multiprocessing.get_context("fork")
    taken = context.Value("i", 0)

    def take() -> range | None:
        with taken.get_lock():
            index = taken.value
            taken.value += 1
        return chunks[index] if index < len(chunks) else None

    def work(sender: Connection, inherited: list[Connection]) -> None:
        for receiver in inherited:
            # Read ends forked along (this worker's, earlier workers'): were they left open, a
            # send to a caller that stopped listening would block for ever instead of failing.
            receiver.close()
        message: dict[str, str] | BaseException
        try:
            message = {}
            while (chunk := take()) is not None:
                _merge(message, _render_services(spec, chunk))
        except BaseException as err:  # raised by the caller, as if rendered there
            message = _portable(err)
        try:
            sender.send(message)
        except OSError:
            pass  # the caller stopped listening: it has an error of its own to report
        finally:
            sender.close()

    workers: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for _ in range(jobs - 1):
            receiver, sender = context.Pipe(duplex=False)
            inherited = [receiver, *(other for _, other in workers)]
            worker = context.Process(target=work, args=(sender, inherited), daemon=True)
            worker.start()
            sender.close()
            workers.append((worker, receiver))
        _render_here(spec, add, services=())  # the stack parts, then chunks like the workers
        while (chunk := take()) is not None:
            add(_render_services(spec, chunk))
        for _, receiver in workers:
            try:
                message = receiver.recv()
            except (EOFError, OSError):  # gone before sending, or while sending ("end of file during message")
                raise StackgenError(
                    f"a render worker process ended without its results (killed? out of memory?); nothing "
                    f"was written: render again, or with {JOBS_ENV}=1 to render in one process"
                ) from None
            if isinstance(message, BaseException):
                raise message
            add(message)
    finally:
        # On an error here, workers stop after their chunk. (No lock: a worker killed holding
        # it would hang this; one increment more past the end changes nothing.)
        taken.value = len(chunks)
        for process, receiver in workers:
            receiver.close()  # a worker still sending gets a broken pipe and ends
            process.join()


def _portable(err: BaseException) -> BaseException:
    """err as it arrives in another process, or a plain error saying what it was if it cannot
    make the trip (tested here, not left to fail in the caller)."""
    try:
        copy: BaseException = pickle.loads(pickle.dumps(err))
        return copy
    except Exception:
        return StackgenError(f"a render worker failed: {err!r}")


def _render_services(spec: Spec, indexes: range) -> dict[str, str]:
    out: dict[str, str] = {}
    for index in indexes:
        service = spec.services[index]
        for _, service_part in SPLIT_RENDERERS:
            _merge(out, service_part(spec, service))
    return out


def _merge(files: dict[str, str], produced: dict[str, str]) -> None:
    """produced into files. Two renderers writing one path is a bug, caught wherever the files
    meet: in this process, and in a worker before they travel."""
    clash = [path for path in produced if path in files]
    if clash:
        raise AssertionError(f"two renderers write {sorted(clash)}")
    files.update(produced)
