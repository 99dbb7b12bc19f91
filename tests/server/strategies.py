"""Hypothesis strategies for request bodies, built from pydantic models' own JSON schemas.

`from_model(Model)` walks the subset of JSON Schema pydantic emits (`$ref`, `anyOf`/`oneOf`,
`const`, `enum`, objects, arrays, scalars), so bodies follow pyiceberg's request models
(`CreateTableRequest`, `CommitTableRequest` and every `TableUpdate`/`TableRequirement`
variant) and ours, while strings, numbers and nesting lean adversarial. (hypothesis-jsonschema
does not run on the Hypothesis version we use.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import strategies as st

#: strings that broke servers before: lone surrogates, control and separator characters,
#: oversized, path-like and ref-like text
NASTY_STRINGS = ["", " ", "\ud800", "a\udfffb", "\x00", "\x1f", "db\x1fx", "a.b", "../..",
                 "db@dev", "db@main~1", "db@", "@", "main#0001-01-01T00:00:00+14:00",
                 "main~" + "9" * 60, "💥", "NaN", "x" * 2_000, "-1", "null", "{}", "%2F"]
NASTY_INTS = [-1, 0, 1, 2, 2**31, 2**63, -(2**63) - 1, 10**30]
#: iceberg types: primitives and shallow nested ones (the schema's `IcebergType` is `{}`)
ICEBERG_TYPES = ["long", "int", "string", "boolean", "double", "date", "timestamp", "uuid",
                 "decimal(10,2)", "decimal(99,1)", "fixed[4]", "fixed[-1]", "binary", "nope"]
LOCATION_KEYS = {"location", "metadata-location"}

#: names that exist in the seeded server, so generated requests also reach deep
COMMON_STRINGS = ["main", "dev", "v1", "db", "sub", "t", "u", "x", "k", "v"]
text = st.one_of(st.text(max_size=12), st.sampled_from(NASTY_STRINGS),
                 st.sampled_from(COMMON_STRINGS))
integers = st.one_of(st.integers(-3, 12), st.sampled_from(NASTY_INTS))
json_leaf = st.one_of(st.none(), st.booleans(), integers, text,
                      st.floats(allow_nan=False, allow_infinity=False))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)), max_leaves=8)


def iceberg_type() -> st.SearchStrategy[Any]:
    field = st.fixed_dictionaries({"id": integers, "name": text, "required": st.booleans(),
                                   "type": st.sampled_from(ICEBERG_TYPES)})
    return st.one_of(
        st.sampled_from(ICEBERG_TYPES),
        st.fixed_dictionaries({"type": st.just("struct"),
                               "fields": st.lists(field, max_size=2)}),
        st.fixed_dictionaries({"type": st.just("list"), "element-id": integers,
                               "element": st.sampled_from(ICEBERG_TYPES),
                               "element-required": st.booleans()}),
        json_value)


def locations(sandbox: Path) -> st.SearchStrategy[Any]:
    """Table and metadata locations: inside `sandbox` (a fuzz run never writes elsewhere),
    relative, unknown schemes, or junk; where files may be written is the file-safety
    issue's subject, not this suite's."""
    return st.one_of(st.none(), st.sampled_from([
        str(sandbox / "a"), f"file://{sandbox}/b", str(sandbox / "a" / "metadata" / "v.json"),
        "relative/dir", "zz://bucket/t", ""]),
        st.text(alphabet="abc/._-", max_size=6).map(lambda s: f"{sandbox}/{s}"))


class SchemaStrategies:
    """Strategies for one model's JSON schema; `$defs` resolved lazily, depth-capped."""

    def __init__(self, schema: dict[str, Any], sandbox: Path, max_depth: int = 10) -> None:
        self.schema = schema
        self.defs: dict[str, Any] = schema.get("$defs", {})
        self.sandbox = sandbox
        self.max_depth = max_depth

    def build(self) -> st.SearchStrategy[Any]:
        return self.of(self.schema, 0)

    def of(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        if depth > self.max_depth:
            return json_leaf
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name == "IcebergType":
                return iceberg_type()
            return st.deferred(lambda: self.of(self.defs[name], depth + 1))
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for combinator in ("anyOf", "oneOf", "allOf"):
            if combinator in schema:
                return st.one_of([self.of(s, depth + 1) for s in schema[combinator]])
        kind = schema.get("type")
        if isinstance(kind, list):
            return st.one_of([self.of({**schema, "type": k}, depth) for k in kind])
        if kind == "object":
            return self.obj(schema, depth)
        if kind == "array":
            return st.lists(self.of(schema.get("items", {}), depth + 1), max_size=3)
        if kind == "string":
            return st.uuids().map(str) if schema.get("format") == "uuid" else text
        if kind == "integer":
            return integers
        if kind == "number":
            return st.one_of(integers, st.floats(allow_nan=False, allow_infinity=False))
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        return json_value

    def obj(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))

        def field(name: str, sub: dict[str, Any]) -> st.SearchStrategy[Any]:
            if name in LOCATION_KEYS:
                return locations(self.sandbox)
            return self.of(sub, depth + 1)

        fixed = st.fixed_dictionaries(
            {k: field(k, v) for k, v in props.items() if k in required},
            optional={k: field(k, v) for k, v in props.items() if k not in required})
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and not props:
            return st.dictionaries(text, self.of(extra, depth + 1), max_size=3)
        return fixed


def from_model(model: Any, sandbox: Path) -> st.SearchStrategy[Any]:
    """Bodies shaped like a pydantic model (by its JSON schema, with aliases)."""
    return SchemaStrategies(model.model_json_schema(by_alias=True), sandbox).build()


#: bodies no model describes: deep nesting, bad encodings, non-JSON, constants JSON lacks
RAW_BODIES = [b"[" * 5_000, b'{"a":' * 3_000 + b"1" + b"}" * 3_000, b"\xff\xfe", b"{",
              b"NaN", b'{"name": Infinity}', b"1" * 5_000, b'"\\ud800"', b"[]", b"null",
              b'{"namespace": ["\\udc80"]}', b"1e400"]
