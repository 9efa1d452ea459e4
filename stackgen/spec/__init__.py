"""The user-facing spec: its JSON Schema and the loader that reports located errors."""

from stackgen.spec.loader import SCHEMA_PATH, LoadedSpec, load_spec, load_spec_text

__all__ = ["SCHEMA_PATH", "LoadedSpec", "load_spec", "load_spec_text"]
