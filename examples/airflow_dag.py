"""A pipeline on a branch, in Airflow: create_branch -> spark_submit on the branch ->
merge into main (gated by main's checks) -> delete_branch.

Run it once, as a script (a throwaway Airflow home, an embedded lakeversion server on a
temporary store, db.orders and main's check set up, then ``dag.test()``)::

    python examples/airflow_dag.py          # prints: state success, main's new commit
    python examples/airflow_dag.py --bad    # the check refuses: its report, the kept branch

or in an Airflow installation (README, "Run the seed's DAG"), with the connection::

    export AIRFLOW_CONN_LAKEVERSION_DEFAULT='{"conn_type": "lakeversion",
                                              "host": "http://127.0.0.1:8181"}'
    lakeversion --store http://127.0.0.1:8181 check add no_negative_amounts --on main \\
        --sql "SELECT * FROM db.orders WHERE amount < 0" --allow-missing

Every DAG run writes on its own branch ``etl/<run id>`` (``ref_safe``: no dots, so Spark
SQL reads it). If the job's data fails the check, the merge task fails, `main` is
untouched and the branch stays for debugging; `keep_run_branch` logs the Spark SQL name of
each table the run wrote (and would roll `main` back to its pre-run head with
``rollback=True``). Trigger a bad run with the param ``bad=true``. Commits made by these
tasks carry ``airflow.dag_id``, ``airflow.run_id``, ``airflow.task_id`` and
``airflow.logical_date``.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

if __name__ == "__main__":  # a script: Airflow reads its home when first imported
    from spark_lakeversion.airflow.standalone import prepare_home

    prepare_home(Path(__file__))

from airflow.sdk import DAG, Param  # noqa: E402

from spark_lakeversion.airflow.callbacks import keep_run_branch  # noqa: E402
from spark_lakeversion.airflow.operators import (  # noqa: E402
    CreateBranchOperator,
    DeleteBranchOperator,
    LakeVersionSparkSubmitOperator,
    MergeOperator,
)
from spark_lakeversion.runs import ref_safe  # noqa: E402

JOB = str(Path(__file__).resolve().parent / "airflow_spark_job.py")
BRANCH = "etl/{{ run_id | ref_safe }}"
CHECK_SQL = "SELECT * FROM db.orders WHERE amount < 0"

with DAG(
    dag_id="lakeversion_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"rows": Param(100, type="integer"), "bad": Param(False, type="boolean")},
    user_defined_filters={"ref_safe": ref_safe},
    default_args={"retries": 0, "on_failure_callback": keep_run_branch(BRANCH)},
    tags=["lakeversion"],
) as dag:
    create_branch = CreateBranchOperator(task_id="create_branch", branch=BRANCH,
                                         source="main")
    spark_submit = LakeVersionSparkSubmitOperator(
        task_id="spark_submit", application=JOB, branch=BRANCH,
        application_args=["{{ params.rows }}", "{{ '--bad' if params.bad else '--good' }}"],
        master="local[1]",
        conf={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "1"},
        spark_submit_args=["--driver-memory", "512m"])
    merge = MergeOperator(task_id="merge", source=BRANCH, target="main",
                          message="publish {{ run_id }}")
    delete_branch = DeleteBranchOperator(task_id="delete_branch", branch=BRANCH)

    create_branch >> spark_submit >> merge >> delete_branch


def main(argv: list[str]) -> int:
    """Run the DAG once against an embedded server on a temporary store (or ``--server
    URL``); 0 iff it succeeded."""
    import argparse
    import tempfile

    from spark_lakeversion.airflow.standalone import migrate
    from spark_lakeversion.server.embedded import start_embedded_server

    parser = argparse.ArgumentParser(description="Run lakeversion_pipeline once.")
    parser.add_argument("--bad", action="store_true", help="write a row main's check refuses")
    parser.add_argument("--rows", type=int, default=5)
    parser.add_argument("--server", metavar="URL",
                        help="a running lakeversion server (default: an embedded one)")
    args = parser.parse_args(argv)
    migrate()
    if args.server:
        return run_once(args.server, args.rows, args.bad)
    with tempfile.TemporaryDirectory(prefix="lakeversion-lake-") as lake:
        server = start_embedded_server(f"sqlite:///{lake}/store.db", f"{lake}/warehouse")
        try:
            return run_once(server.url, args.rows, args.bad)
        finally:
            server.stop()


def run_once(url: str, rows: int, bad: bool) -> int:
    """Set up db.orders and main's check on `url`, run the DAG, print what happened: the
    state and main's new commit, or the failed check's report and the kept branch."""
    import json
    import os

    import pyarrow as pa
    from pyiceberg.catalog.rest import RestCatalog

    from spark_lakeversion.airflow.callbacks import describe_kept_branch
    from spark_lakeversion.api import connect
    from spark_lakeversion.cli.output import render_check_report

    os.environ["AIRFLOW_CONN_LAKEVERSION_DEFAULT"] = json.dumps(
        {"conn_type": "lakeversion", "host": url})
    catalog = connect(url)
    main_branch = catalog.branch("main")
    rest = RestCatalog("setup", uri=url + "/iceberg")
    if not rest.table_exists("db.orders"):  # the check names it: it exists first
        rest.create_namespace_if_not_exists("db")
        rest.create_table("db.orders", pa.schema([("id", pa.int64()), ("amount", pa.float64())]))
    if "no_negative_amounts" not in {c.name for c in main_branch.checks()}:
        main_branch.add_check("no_negative_amounts", sql=CHECK_SQL, tables=["db.orders"])

    run = dag.test(run_conf={"rows": rows, "bad": bad})
    state = str(getattr(run.state, "value", run.state))
    print(f"run {run.run_id}: state {state}")
    if state == "success":
        print(f"published on main: commit {main_branch.head.id}")
        return 0
    branch = "etl/" + ref_safe(run.run_id)
    for check in main_branch.check_runs(limit=10):
        if check.source == branch and not check.report.ok:
            print(f"check refused the merge of {branch} into main:")
            print(render_check_report(check.to_dict()))
    for line in describe_kept_branch(catalog, branch, "main"):
        print(line)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
