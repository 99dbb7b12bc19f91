"""Property: whatever names, locations and property values a client sends, the server either
refuses (a 4xx in Iceberg's error model) or every file it wrote lies under an allowed root;
no file that existed before is ever changed or deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_lakeversion.locations import AllowedRoots
from tests.lake import ID_REST_JSON
from tests.server.files import Site

SEGMENTS = ["t", "db", "..", ".", "", "x?", "y#", "%2e%2e", "secret.txt", "file.txt?",
            "metadata", "ü", "a b", "00000-x.metadata.json#", "\x1f"]
NAME_CHARS = st.sampled_from(list("ab.é/\\?#%\x00\x1f -_") + ["..", "victim"])


def locations(site: Site) -> st.SearchStrategy[str]:
    bases = st.sampled_from([site.w, f"file://{site.extra}", f"file://{site.victim}",
                             "file:///", f"file:{site.warehouse}", str(site.warehouse),
                             str(site.root), "s3://bucket", "zz://x", "relative"])
    tails = st.lists(st.sampled_from(SEGMENTS), max_size=4).map("/".join)
    return st.builds(lambda b, t, end: f"{b}/{t}{end}" if t else f"{b}{end}", bases, tails,
                     st.sampled_from(["", "/", "?", "#", "//"]))


def names() -> st.SearchStrategy[str]:
    return st.lists(NAME_CHARS, min_size=0, max_size=5).map("".join)


def requests(site: Site) -> st.SearchStrategy[tuple[str, str, Any]]:
    props = st.dictionaries(
        st.sampled_from(["write.metadata.path", "write.data.path", "write.object-storage.path",
                         "write.py-location-provider.impl", "k"]),
        locations(site), max_size=2)
    create = st.builds(lambda n, loc, p: ("POST", "/namespaces/db/tables",
                                          {"name": n, "schema": ID_REST_JSON, "properties": p,
                                           **({"location": loc} if loc else {})}),
                       names(), st.none() | locations(site), props)
    namespace = st.builds(lambda levels, loc: ("POST", "/namespaces", {
        "namespace": levels, "properties": {"location": loc} if loc else {}}),
        st.lists(names(), min_size=1, max_size=2), st.none() | locations(site))
    set_location = st.builds(lambda loc: ("POST", "/namespaces/db/tables/t", {"updates": [
        {"action": "set-location", "location": loc}]}), locations(site))
    set_props = st.builds(lambda p: ("POST", "/namespaces/db/tables/t", {"updates": [
        {"action": "set-properties", "updates": p}]}), props)
    register = st.builds(lambda n, loc: ("POST", "/namespaces/db/register", {
        "name": n, "metadata-location": loc}), names(), locations(site))
    return st.one_of(create, namespace, set_location, set_props, register)


def test_the_server_refuses_or_writes_only_under_its_roots(site: Site) -> None:
    client = httpx.Client(base_url=site.server.iceberg_uri + "/v1/main", timeout=60)
    client.post("/namespaces", json={"namespace": ["db"]}).raise_for_status()
    client.post("/namespaces/db/tables", json={"name": "t", "schema": ID_REST_JSON}
                ).raise_for_status()
    roots = AllowedRoots([f"file://{site.warehouse}", f"file://{site.extra}"])
    state: dict[str, Any] = {"before": site.listing(), "accepted": 0, "refused": 0}

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(requests(site))
    def check(request: tuple[str, str, Any]) -> None:
        method, path, body = request
        r = client.request(method, path, json=body)
        assert r.status_code < 500, (request, r.text)
        if r.status_code >= 400:
            error = r.json()["error"]
            assert error["code"] == r.status_code and error["message"], r.text
        new = site.new_files(state["before"])  # asserts no old file changed or vanished
        outside = [p for p in new if not roots.contains_strictly(
            AllowedRoots([f"file://{p}"]).roots[0])]
        assert not outside, (request, outside)
        if r.status_code >= 400:
            assert not new, (request, new)  # a refusal writes nothing
        state["accepted" if r.status_code < 400 else "refused"] += 1
        state["before"] = site.listing()

    check()
    # not vacuous: the generated requests both pass and fail
    assert state["accepted"] >= 10 and state["refused"] >= 10, state
    assert Path(site.victim / "secret.txt").read_text() == "old secret\n"
