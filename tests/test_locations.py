"""The location grammar, the name rules and the one path builder, on their own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spark_lakeversion.errors import InvalidInput, InvalidKey, LocationNotAllowed
from spark_lakeversion.locations import (
    OUTSIDE_ROOTS,
    AllowedRoots,
    Location,
    check_new_key,
    parse_location,
    safe_segment,
    table_location,
)


@pytest.mark.parametrize(("text", "uri"), [
    ("file:///w/db/t", "file:///w/db/t"),
    ("file:/w/db/t", "file:///w/db/t"),
    ("/w/db/t/", "file:///w/db/t"),
    ("s3a://bucket/k/", "s3://bucket/k"),
    ("S3://bucket", "s3://bucket/"),
    ("file:///w/dönnées ü", "file:///w/dönnées ü"),
])
def test_spellings_of_one_location_parse_to_one_uri(text: str, uri: str) -> None:
    assert parse_location(text).uri == uri


@pytest.mark.parametrize(("text", "says"), [
    ("file:///w/t?", "contains '?'"), ("file:///w/t#x", "contains '#'"),
    ("file:///w/a%2F..", "contains '%'"), ("file:///w\\t", r"contains '\\\\'"),
    ("file:///w/\x00", "control"), ("file:///w/../etc", "'..'"),
    ("file:///w/./t", "'.'"), ("file:////w", "empty"), ("file:///w//t", "empty"),
    ("relative/t", "absolute"), ("zz://b/t", "unsupported scheme"),
    ("s3:///k", "no bucket"), ("file://host/w", "absolute path"), ("", "non-empty"),
])
def test_unsafe_locations_are_refused_not_normalised(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_location(text)


def test_under_and_overlap_are_segment_wise() -> None:
    w = parse_location("file:///w")
    assert parse_location("file:///w/a").is_under(w)
    assert not parse_location("file:///wa").is_under(w)
    assert not parse_location("s3://w/a").is_under(w)
    assert parse_location("file:///w").overlaps(parse_location("file:///w/a/b"))
    assert not parse_location("file:///w/ab").overlaps(parse_location("file:///w/a"))


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "a?", "a#", "50%", "t\x00",
                                  "t\x1f", "t\n", "t\x7f"])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        safe_segment(name)
    with pytest.raises(InvalidKey):
        check_new_key(["db", name])


@pytest.mark.parametrize("name", ["t", "données", "tábla ü", "a.b", "a@b", "名前", "a-b_c~"])
def test_unicode_and_punctuation_names_are_fine(name: str) -> None:
    assert safe_segment(name) == name
    check_new_key(["db", name])


def test_table_location_is_the_one_path_builder() -> None:
    base = parse_location("file:///w")
    assert table_location(base, ["db", "sub"], "t", "abc").uri == "file:///w/db/sub/t_abc"
    assert table_location(parse_location("s3://b"), [], "t", "1").uri == "s3://b/t_1"
    for namespace, name in [(["a/../../b"], "t"), (["db"], "../../escape"), (["db"], "t#"),
                            ([".."], "t"), (["db"], "")]:
        with pytest.raises(InvalidInput):
            table_location(base, namespace, name, "abc")


@given(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3),
       st.text(min_size=1, max_size=8))
def test_a_built_table_location_always_lies_strictly_inside_its_base(
        namespace: list[str], name: str) -> None:
    base = parse_location("file:///w")
    try:
        built = table_location(base, namespace, name, "u")
    except InvalidInput:
        return
    assert built.is_under(base) and built != base
    assert parse_location(built.uri) == built  # the built URI is itself canonical
    assert len(built.path.split("/")) == 3 + len(namespace)


def test_allowed_roots_check_names_the_roots() -> None:
    roots = AllowedRoots(["file:///w", "s3a://bucket/lake"])
    assert roots.check("s3://bucket/lake/t") == Location("s3", "bucket", "/lake/t")
    assert roots.check("file:///w", strictly=False).path == "/w"
    with pytest.raises(LocationNotAllowed, match="inside \\(not at\\)"):
        roots.check("file:///w", "table location", strictly=True)
    with pytest.raises(LocationNotAllowed) as info:
        roots.check("file:///elsewhere/t", "table location")
    assert OUTSIDE_ROOTS in info.value.message
    assert "file:///w, s3://bucket/lake" in info.value.message
    with pytest.raises(InvalidInput, match="contains"):
        roots.check("file:///w/t?")
    with pytest.raises(InvalidInput, match="at least one"):
        AllowedRoots([])
