"""What an Airflow task stamps on the commits it makes: where in which DAG run it ran."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DAG_ID = "airflow.dag_id"
RUN_ID = "airflow.run_id"
TASK_ID = "airflow.task_id"
LOGICAL_DATE = "airflow.logical_date"


def airflow_properties(context: Mapping[str, Any]) -> dict[str, str]:
    """Commit properties from a task's context (absent parts are left out: a manual run
    of Airflow 3 may have no logical date)."""
    props: dict[str, str] = {}
    dag = context.get("dag")
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag_id = getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None)
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None)
    task_id = getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", None)
    logical_date = context.get("logical_date") or getattr(dag_run, "logical_date", None)
    for key, value in ((DAG_ID, dag_id), (RUN_ID, run_id), (TASK_ID, task_id)):
        if value:
            props[key] = str(value)
    if logical_date is not None:
        props[LOGICAL_DATE] = logical_date.isoformat() \
            if hasattr(logical_date, "isoformat") else str(logical_date)
    return props
