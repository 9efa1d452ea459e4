#!/usr/bin/env python3
"""Convert pinned Kubernetes API definitions into standalone JSON Schema
(draft 2020-12) documents for validating whole objects in stackgen's tests.

Two inputs:

1. Prometheus Operator CRDs (prometheus-operator/prometheus-operator,
   example/prometheus-operator-crd/monitoring.coreos.com_<plural>.yaml at a
   release tag, read from a bare git mirror with `git show <tag>:<path>`):
   spec.versions[name==V].schema.openAPIV3Schema is translated from the
   Kubernetes structural-schema dialect of OpenAPI v3 to JSON Schema.

2. Core v1 ConfigMap / Secret / Namespace, transcribed (field names, types,
   formats, required lists) from yannh/kubernetes-json-schema
   v<k8s>/{configmap,secret,namespace,namespacestatus,namespacecondition}*.json,
   which openapi2jsonschema generates from kubernetes/kubernetes
   api/openapi-spec/swagger.json at that release tag.

Usage:
  k8s-schema-convert.py --mirror /work/.mirror/prometheus-operator+prometheus-operator/repo \
      --tag v0.93.0 --out /work/main/tests/schemas/kubernetes
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# --- Kubernetes object-meta rules (k8s.io/apimachinery validation) --------
DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"  # max 63
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"  # max 253
# qualified name: [DNS-subdomain prefix "/"] name, name <= 63 chars
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"  # max 63
# ConfigMap/Secret data keys: "alphanumeric characters, '-', '_' or '.'"
CONFIG_KEY = r"^[-._a-zA-Z0-9]+$"
# OpenAPI format "byte" = standard base64 (RFC 4648 section 4)
BASE64 = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


def object_meta(*, namespaced: bool, name_pattern: str, name_max: int) -> dict:
    props: dict = {
        "name": {"type": "string", "minLength": 1, "maxLength": name_max, "pattern": name_pattern},
    }
    if namespaced:
        props["namespace"] = {"type": "string", "minLength": 1, "maxLength": 63, "pattern": DNS1123_LABEL}
    props["labels"] = {
        "type": "object",
        "propertyNames": {"maxLength": 317, "pattern": QUALIFIED_NAME},
        "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
    }
    props["annotations"] = {
        "type": "object",
        "propertyNames": {"maxLength": 317, "pattern": QUALIFIED_NAME},
        "additionalProperties": {"type": "string"},
    }
    return {"type": "object", "required": ["name"], "properties": props, "additionalProperties": False}


# --- OpenAPI v3 (k8s structural schema) -> JSON Schema ---------------------
DROPPED: dict[str, int] = {}
AT_MOST_ONE = re.compile(
    r"^\[\s*((?:has\(self\.\w+\)\s*,\s*)*has\(self\.\w+\))\s*\]\s*\.filter\(\s*x\s*,\s*x\s*\)\s*\.size\(\)\s*<=\s*1$"
)


def _note(key: str) -> None:
    DROPPED[key] = DROPPED.get(key, 0) + 1


def fix_pattern(p: str) -> str:
    """RE2 allows an inline (?i) after '^'; Python's re does not (and ECMA-262
    has no inline flags). Expand case-insensitivity into character classes."""
    if "(?i)" not in p:
        return p
    if not p.startswith("^(?i)"):
        raise SystemExit(f"unsupported inline flag placement in pattern {p!r}")
    body = p[len("^(?i)"):]
    out, in_class, esc = [], False, False
    for ch in body:
        if esc:
            out.append(ch); esc = False; continue
        if ch == "\\":
            out.append(ch); esc = True; continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        if ch.isalpha() and ch.isascii() and not in_class:
            out.append(f"[{ch.lower()}{ch.upper()}]")
        else:
            out.append(ch)
    return "^" + "".join(out)


def cel_to_jsonschema(rule: str) -> dict | None:
    m = AT_MOST_ONE.match(" ".join(rule.split()))
    if not m:
        return None
    fields = re.findall(r"has\(self\.(\w+)\)", m.group(1))
    pairs = [[a, b] for i, a in enumerate(fields) for b in fields[i + 1:]]
    return {"not": {"anyOf": [{"required": p} for p in pairs]}}


def convert(node, keep_descriptions: bool = False):
    if isinstance(node, list):
        return [convert(x, keep_descriptions) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict = {}
    int_or_string = bool(node.get("x-kubernetes-int-or-string")) or node.get("format") == "int-or-string"
    preserve_unknown = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    nullable = bool(node.get("nullable"))
    extra_all_of = []
    for k, v in node.items():
        if k == "x-kubernetes-validations":
            for rule in v:
                js = cel_to_jsonschema(rule["rule"])
                if js is None:
                    _note("x-kubernetes-validations (untranslated CEL rule)")
                    print(f"WARNING: CEL rule not translated: {rule['rule']!r}", file=sys.stderr)
                else:
                    js["$comment"] = "CEL: " + " ".join(rule["rule"].split())
                    extra_all_of.append(js)
                    _note("x-kubernetes-validations (translated)")
            continue
        if k == "x-kubernetes-list-type":
            if v == "set":
                out["uniqueItems"] = True
            _note(f"{k}={v}")
            continue
        if k.startswith("x-kubernetes-"):
            _note(k)
            continue
        if k == "nullable":
            continue
        if k == "description":
            if keep_descriptions:
                out[k] = v
            continue
        if k == "format":
            if v == "int-or-string":
                continue
            out[k] = v  # int32/int64/date-time: annotation-only in jsonschema
            continue
        if k == "pattern":
            out[k] = fix_pattern(v)
            continue
        if k == "properties":
            out[k] = {pk: convert(pv, keep_descriptions) for pk, pv in v.items()}
            continue
        if k in ("items", "not") or (k == "additionalProperties" and isinstance(v, dict)):
            out[k] = convert(v, keep_descriptions)
            continue
        if k in ("anyOf", "allOf", "oneOf"):
            out[k] = [convert(x, keep_descriptions) for x in v]
            continue
        out[k] = v  # type, enum, required, default, minimum, maximum, minLength, minItems, ...
    if int_or_string:
        # k8s emits anyOf:[{type:integer},{type:string}] next to the marker
        if out.get("anyOf") == [{"type": "integer"}, {"type": "string"}]:
            del out["anyOf"]
        out["type"] = ["integer", "string"]
    if nullable and "type" in out:
        t = out["type"]
        out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
    if extra_all_of:
        out.setdefault("allOf", []).extend(extra_all_of)
    if "properties" in out and "additionalProperties" not in out and not preserve_unknown:
        out["additionalProperties"] = False
    return out


def _schema_nodes(node, key, acc):
    """Yield (parent_key, schema_node) for every subschema (not for the
    'properties' maps themselves)."""
    if not isinstance(node, dict):
        return
    acc.append((key, node))
    for k, v in node.items():
        if k in ("properties", "$defs"):
            for pk, pv in v.items():
                _schema_nodes(pv, pk, acc)
        elif k in ("items", "not", "additionalProperties") and isinstance(v, dict):
            _schema_nodes(v, key if k == "items" else k, acc)
        elif k in ("anyOf", "allOf", "oneOf"):
            for x in v:
                _schema_nodes(x, key, acc)


# readable $defs names for well-known prometheus-operator types, by property set
DEF_NAMES = {
    ("configMap", "secret"): "SecretOrConfigMap",
    ("action", "modulus", "regex", "replacement", "separator", "sourceLabels", "targetLabel"): "RelabelConfigs",
}


def factor_out_repeats(doc: dict, min_chars: int = 300) -> dict:
    """Move subschemas that occur more than once (byte-identical, at least
    min_chars of compact JSON) into $defs and reference them. Pure
    restructuring: the set of accepted documents is unchanged."""
    defs = doc.setdefault("$defs", {})
    while True:
        acc: list = []
        _schema_nodes(doc, "root", acc)
        groups: dict[str, list] = {}
        for key, node in acc[1:]:
            if "$ref" in node and len(node) == 1:
                continue
            canon = json.dumps(node, sort_keys=True)
            if len(canon) >= min_chars:
                groups.setdefault(canon, []).append((key, node))
        cands = [(len(c), c, occ) for c, occ in groups.items() if len(occ) > 1]
        if not cands:
            break
        _, canon, occ = max(cands, key=lambda t: t[0])
        keys = [k for k, _ in occ]
        base = max(sorted(set(keys)), key=keys.count)
        b = json.loads(canon)
        shape = tuple(sorted((b.get("items") if b.get("type") == "array" else b).get("properties", {})))
        base = DEF_NAMES.get(shape, base)
        name, i = base, 2
        while name in defs:
            name, i = f"{base}{i}", i + 1
        body = json.loads(canon)
        for _, node in occ:
            node.clear()
            node["$ref"] = f"#/$defs/{name}"
        defs[name] = body
    if not defs:
        del doc["$defs"]
    else:
        doc["$defs"] = dict(sorted(defs.items()))
    return doc


def crd_schema(mirror: str, tag: str, plural: str, version: str, keep_descriptions: bool,
               factor: bool = True) -> tuple[dict, dict]:
    path = f"example/prometheus-operator-crd/monitoring.coreos.com_{plural}.yaml"
    text = subprocess.run(["git", "--git-dir", mirror, "show", f"{tag}:{path}"],
                          check=True, capture_output=True, text=True).stdout
    crd = yaml.safe_load(text)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    (ver,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    src = ver["schema"]["openAPIV3Schema"]
    body = convert(src, keep_descriptions)
    props = body["properties"]
    props["apiVersion"] = {"type": "string", "const": f"{group}/{version}"}
    props["kind"] = {"type": "string", "const": kind}
    props["metadata"] = object_meta(namespaced=True, name_pattern=DNS1123_SUBDOMAIN, name_max=253)
    req = ["apiVersion", "kind", "metadata"]
    body["required"] = req + [r for r in body.get("required", []) if r not in req]
    body["additionalProperties"] = False
    doc = {
        "$schema": DRAFT,
        "title": f"{kind} ({group}/{version})",
        "$comment": (f"Generated from prometheus-operator/prometheus-operator {tag}:{path} "
                     f"spec.versions[name={version}].schema.openAPIV3Schema; see SOURCE.md"),
    }
    doc.update(body)
    if factor:
        factor_out_repeats(doc)
    return doc, {"kind": kind, "group": group, "version": version, "path": path}


# --- core v1 (transcribed from yannh/kubernetes-json-schema v<k8s>/) ------
def string_map(value_schema: dict | None = None) -> dict:
    return {"type": "object", "propertyNames": {"pattern": CONFIG_KEY, "maxLength": 253},
            "additionalProperties": value_schema or {"type": "string"}}


def core_schema(kind: str, k8s: str) -> dict:
    byte_string = {"type": "string", "format": "byte", "pattern": BASE64}
    if kind == "ConfigMap":
        props = {
            "binaryData": string_map(byte_string),
            "data": string_map(),
            "immutable": {"type": "boolean"},
        }
        meta = object_meta(namespaced=True, name_pattern=DNS1123_SUBDOMAIN, name_max=253)
    elif kind == "Secret":
        props = {
            "data": string_map(byte_string),
            "immutable": {"type": "boolean"},
            "stringData": string_map(),
            "type": {"type": "string"},
        }
        meta = object_meta(namespaced=True, name_pattern=DNS1123_SUBDOMAIN, name_max=253)
    elif kind == "Namespace":
        condition = {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string"},
                "reason": {"type": "string"},
                "status": {"type": "string"},
                "type": {"type": "string"},
            },
            "additionalProperties": False,
        }
        props = {
            "spec": {"type": "object", "properties": {
                "finalizers": {"type": "array", "items": {"type": "string"}}},
                "additionalProperties": False},
            "status": {"type": "object", "properties": {
                "conditions": {"type": "array", "items": condition},
                "phase": {"type": "string"}},
                "additionalProperties": False},
        }
        meta = object_meta(namespaced=False, name_pattern=DNS1123_LABEL, name_max=63)
    else:
        raise ValueError(kind)
    properties = {
        "apiVersion": {"type": "string", "const": "v1"},
        "kind": {"type": "string", "const": kind},
        "metadata": meta,
    }
    properties.update(props)
    return {
        "$schema": DRAFT,
        "title": f"{kind} (v1)",
        "$comment": (f"Kubernetes {k8s} core/v1 {kind}, transcribed from yannh/kubernetes-json-schema "
                     f"{k8s}/{kind.lower()}-v1.json (generated from kubernetes/kubernetes swagger.json); see SOURCE.md"),
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": properties,
        "additionalProperties": False,
    }


CRDS = [("prometheusrules", "v1"), ("scrapeconfigs", "v1alpha1"), ("probes", "v1"), ("servicemonitors", "v1")]


def dump(doc: dict, path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, sort_keys=False, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--k8s", default="v1.36.2")
    ap.add_argument("--out", required=True)
    ap.add_argument("--keep-descriptions", action="store_true")
    ap.add_argument("--no-factor", action="store_true", help="do not move repeated subschemas into $defs")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for plural, version in CRDS:
        doc, info = crd_schema(a.mirror, a.tag, plural, version, a.keep_descriptions,
                               factor=not a.no_factor)
        name = f"{info['kind'].lower()}-monitoring-{version}.json"
        dump(doc, out / name)
        print(name, info["path"])
    for kind in ("ConfigMap", "Secret", "Namespace"):
        name = f"{kind.lower()}-v1.json"
        dump(core_schema(kind, a.k8s), out / name)
        print(name)
    print("dropped/translated OpenAPI extensions:", json.dumps(DROPPED, sort_keys=True), file=sys.stderr)


if __name__ == "__main__":
    main()
