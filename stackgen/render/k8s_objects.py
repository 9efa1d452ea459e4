"""Kubernetes object helpers shared by the kubernetes target's renderers: DNS-1123 names,
metadata with the stack's labels, one commented YAML document per object."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from stackgen import conventions as cv
from stackgen.model import Spec
from stackgen.render.common import comment, yaml_text


def block(text: str, indent: int) -> str:
    """text as the body of a literal block scalar (`key: |`), indented. Lines end at "\n" only
    (YAML 1.2, which Kubernetes reads, breaks lines nowhere else; str.splitlines would also
    split at U+2028 inside a JSON string). Every file embedded starts unindented (a comment,
    "{", a key) and ends with a newline, which `|` keeps."""
    assert text.endswith("\n") and not text[:1].isspace(), "not an embeddable file"
    pad = " " * indent
    return "".join(pad + line + "\n" if line else "\n" for line in text[:-1].split("\n"))


def object_name(*parts: str) -> str:
    """A DNS-1123 name from parts joined by "-". Spec names may end in "-" and job names may
    hold "_" or capitals: such a name is mapped to lower-case kebab and keeps a hash of the
    original, so "billing_api" and "billing-api" stay two objects."""
    wanted = "-".join(parts)
    name = re.sub(r"[^a-z0-9.-]", "-", wanted.lower())
    if name != wanted or not name[-1].isalnum():
        name = f"{name.rstrip('-.')}-{hashlib.sha256(wanted.encode()).hexdigest()[:8]}"
    return name


def metadata(spec: Spec, name: str, **extra: Any) -> dict[str, Any]:
    assert spec.stack.kubernetes is not None
    labels = {**dict(spec.stack.kubernetes.labels), "app.kubernetes.io/managed-by": "stackgen"}
    labels.update(extra.pop("labels", {}))
    meta: dict[str, Any] = {"name": name, "namespace": cv.k8s_namespace(spec.stack), "labels": labels}
    meta.update(extra)
    return meta


def document(note: str | None, obj: dict[str, Any], tail: str = "") -> str:
    """One YAML document with a comment saying what the object is for (None: the file's
    header says it); tail is appended (a block scalar section that yaml_text would not keep
    readable)."""
    return "---\n" + (comment(note) if note else "") + yaml_text(obj) + tail


def file_text(spec: Spec, purpose: str, documents: list[str]) -> str:
    return comment(cv.HEADER.format(source=spec.source_file)) + comment(purpose) + "".join(documents)


def alertmanager_config_secret(spec: Spec) -> str:
    return object_name(spec.stack.name, "alertmanager-config")
