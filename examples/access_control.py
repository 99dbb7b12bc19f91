"""Who may do what, branch by branch: two principals on a server with an auth config.

The ETL service may work on `etl-*` branches and merge into `main`, but not create other
branches; the admin reads the audit trail. Run: python examples/access_control.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from spark_lakeversion.auth import load_auth_config, new_token, token_sha256
from spark_lakeversion.errors import Forbidden
from spark_lakeversion.model import Content, ContentType, Put
from spark_lakeversion.server.embedded import start_embedded_server
from spark_lakeversion.versioning.http import RestVersionStore

work = Path(tempfile.mkdtemp(prefix="lakeversion-access-"))
tokens = {"admin": new_token(), "etl": new_token()}  # `lakeversion token new` does this
(work / "auth.toml").write_text(f'''
[[principal]]
name = "admin"
token_sha256 = "{token_sha256(tokens["admin"])}"
grants = [{{ refs = "*", allow = ["admin"] }}]

[[principal]]
name = "etl"
token_sha256 = "{token_sha256(tokens["etl"])}"
grants = [
  {{ refs = "etl-*", allow = ["read", "write", "create", "delete"] }},
  {{ refs = "main", allow = ["read", "merge"] }},
]
''')

with start_embedded_server(f"sqlite:///{work / 'store.db'}", str(work / "warehouse"),
                           auth=load_auth_config(work / "auth.toml")) as server:
    etl = RestVersionStore(server.url, token=tokens["etl"])
    etl.create_ref("etl-daily")
    etl.commit("etl-daily", [Put(("sales",), Content(ContentType.NAMESPACE, "ns",
                                                      {"properties": {}}))],
               message="load sales")
    try:
        etl.create_ref("dev")
    except Forbidden as refused:
        print("refused:", refused)
    try:
        etl.commit("main", [Put(("x",), Content(ContentType.NAMESPACE, "ns",
                                                {"properties": {}}))], message="direct")
    except Forbidden as refused:
        print("refused:", refused)
    merged = etl.merge("etl-daily", "main")
    print("merged etl-daily into main:", merged.new_head)
    print("etl sees refs:", [r.name for r in etl.list_refs()])

    admin = RestVersionStore(server.url, token=tokens["admin"])
    print("audit trail:")
    for record in admin.audit():
        print(f"  {record.principal:<6} {record.operation:<10} {record.ref or '-':<10} "
              f"{record.outcome.value}")
