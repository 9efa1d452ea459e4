"""The validated model: frozen dataclasses built from a loaded spec, with cross-field checks.

Nothing here knows YAML; renderers only ever see these types. One builder per spec section
(scrape, slos, routing, logs, alerts), combined in build.py.
"""

from stackgen.model.build import GRAFANA_PASSWORD_SECRET, PACKS, build_model
from stackgen.model.redaction import BUILTINS as REDACTION_BUILTINS
from stackgen.model.redaction import re2_incompatibility
from stackgen.model.scrape import EXPORTER_COMPONENTS, PROBE_MODULES, STACK_JOB_NAMES
from stackgen.model.slos import RESERVED_LABELS
from stackgen.model.types import (
    AGENT_LABELS,
    BUILTIN_CATEGORIES,
    BUILTIN_SEVERITIES,
    IMPACTS,
    SLI,
    SLO,
    TLS,
    Alert,
    AlertCheck,
    AlertTest,
    BusinessHours,
    EscalationLevel,
    ExpectedAlert,
    Exporter,
    LogAlert,
    Logs,
    LogSource,
    Probe,
    Receiver,
    RedactionPattern,
    Routing,
    ScrapeJob,
    Service,
    SeverityRoute,
    Spec,
    Stack,
    Tier,
)

__all__ = [
    "AGENT_LABELS",
    "BUILTIN_CATEGORIES",
    "BUILTIN_SEVERITIES",
    "EXPORTER_COMPONENTS",
    "GRAFANA_PASSWORD_SECRET",
    "IMPACTS",
    "PACKS",
    "PROBE_MODULES",
    "REDACTION_BUILTINS",
    "RESERVED_LABELS",
    "SLI",
    "SLO",
    "STACK_JOB_NAMES",
    "TLS",
    "Alert",
    "AlertCheck",
    "AlertTest",
    "BusinessHours",
    "EscalationLevel",
    "ExpectedAlert",
    "Exporter",
    "LogAlert",
    "LogSource",
    "Logs",
    "Probe",
    "Receiver",
    "RedactionPattern",
    "Routing",
    "ScrapeJob",
    "Service",
    "SeverityRoute",
    "Spec",
    "Stack",
    "Tier",
    "build_model",
    "re2_incompatibility",
]
