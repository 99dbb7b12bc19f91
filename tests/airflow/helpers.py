"""Reading a finished `dag.test()` run: task states and XCom values."""

from __future__ import annotations

from typing import Any


def states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
            for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id,
                                   task_ids=task_id, key=key)
        row = session.scalars(query).first()
        assert row is not None, f"no XCom {key!r} from {task_id}"
        return XComModel.deserialize_value(row)


def load_dag(file_name: str, dag_id: str) -> Any:
    """DAG `dag_id` from `file_name` in the dags folder (where `dag.test()` finds it too)."""
    import importlib.util
    import os
    from pathlib import Path

    from airflow.sdk import DAG

    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / file_name
    spec = importlib.util.spec_from_file_location(f"lv_test_dag_{dag_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    [dag] = [v for v in vars(module).values() if isinstance(v, DAG) and v.dag_id == dag_id]
    return dag
