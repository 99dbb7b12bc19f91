"""`lakeversion diff FROM TO --table db.t --rows` against a real server: text, JSON, CSV,
summary, limit; bad input exits with its code and no traceback."""

from __future__ import annotations

import json

import pyarrow as pa

from tests.cli.helpers import run
from tests.lake import ServerLake
from tests.rows.helpers import KEYED_ARROW


def test_rows_as_text_json_and_csv(lake: ServerLake) -> None:
    lake.store.create_ref("dev")
    t = lake.catalog("dev").load_table("db.k")
    t.overwrite(pa.table({"id": [3], "v": ["three"]}, schema=KEYED_ARROW),
                overwrite_filter="id = 3")
    lake.catalog("dev").load_table("db.k").delete("id = 12")
    url = lake.server.url
    text = run(url, "diff", "main", "dev", "--table", "db.k", "--rows").stdout
    assert text.splitlines() == ["change         id  v",
                                 "update_before  3   v3",
                                 "update_after   3   three",
                                 "delete         12  v12"]
    data = json.loads(run(url, "diff", "main", "dev", "--table", "db.k", "--rows",
                          "-o", "json").stdout)
    assert data["rows"] == [{"change": "update_before", "id": 3, "v": "v3"},
                            {"change": "update_after", "id": 3, "v": "three"},
                            {"change": "delete", "id": 12, "v": "v12"}]
    csv = run(url, "diff", "main", "dev", "--table", "db.k", "--rows", "--limit", "1",
              "-o", "csv", "--columns", "id").stdout
    assert csv.splitlines() == ['"change","id"', '"update_before",3']
    summary = json.loads(run(url, "-o", "json", "diff", "main", "dev", "--table", "db.k",
                             "--rows", "--summary").stdout)
    assert summary["rows"] == [{"partition": "", "inserted": 0, "deleted": 1, "updated": 1}]
    tables = json.loads(run(url, "diff", "main", "dev", "--table", "db.k", "-o",
                            "json").stdout)
    assert [d["key"] for d in tables["diffs"]] == ["db.k"]


def test_bad_input_exits_with_its_code(lake: ServerLake) -> None:
    url = lake.server.url
    for args, code, words in (
            (["diff", "main", "main", "--rows"], 1, "--rows needs --table"),
            (["diff", "main", "nope", "--table", "db.k", "--rows"], 2, "nope"),
            (["diff", "main", "main", "--table", "db.none", "--rows"], 2, "db.none"),
            (["diff", "main", "main", "--table", "db.k", "--rows", "--columns", "x"], 1,
             "unknown column"),
            (["diff", "main", "main", "--limit", "3"], 1, "go with --rows"),
            (["diff", "main", "main", "--table", "db.k", "--rows", "--limit", "-1"], 1,
             "-1")):
        result = run(url, *args, code=code)
        assert words in result.output, (args, result.output)
