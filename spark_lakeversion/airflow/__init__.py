"""The Airflow provider of spark-lakeversion (``pip install 'spark-lakeversion[airflow]'``).

Airflow finds it through the ``apache_airflow_provider`` entry point (pyproject.toml), whose
``package-name`` is this distribution's name, and with it the connection type
``lakeversion`` (server URL in *host*, bearer token in *password*).

- `hooks.LakeVersionHook`: a `spark_lakeversion.api.Catalog` over the connection's server,
  and the Spark settings for a job on a branch (`spark_conf`, for the stock
  ``SparkSubmitOperator(conf=...)``);
- `operators`: `CreateBranchOperator`, `MergeOperator`, `RollbackOperator`,
  `DeleteBranchOperator`, `TagOperator` and `LakeVersionSparkSubmitOperator`; their fields
  are templated, their results go to XCom, and every commit they make carries the DAG id,
  run id, task id and logical date (`metadata.airflow_properties`);
- `sensors.CommitSensor`: waits for a new commit on a branch (optionally touching a table);
- `callbacks.keep_run_branch`: an ``on_failure_callback`` that keeps the run branch and can
  roll the target back to its pre-run head.

This module imports nothing from Airflow, so the providers manager can read it cheaply.
"""

from __future__ import annotations

from typing import Any

#: the connection type of `hooks.LakeVersionHook`
CONN_TYPE = "lakeversion"
DEFAULT_CONN_ID = "lakeversion_default"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads (the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "spark-lakeversion",
        "name": "LakeVersion",
        "description": "Branches, gated merges and rollbacks for lakehouse tables "
                       "(spark-lakeversion).",
        "integrations": [{"integration-name": "LakeVersion", "tags": ["software"]}],
        "operators": [{"integration-name": "LakeVersion",
                       "python-modules": ["spark_lakeversion.airflow.operators"]}],
        "sensors": [{"integration-name": "LakeVersion",
                     "python-modules": ["spark_lakeversion.airflow.sensors"]}],
        "hooks": [{"integration-name": "LakeVersion",
                   "python-modules": ["spark_lakeversion.airflow.hooks"]}],
        "connection-types": [{
            "hook-class-name": "spark_lakeversion.airflow.hooks.LakeVersionHook",
            "connection-type": CONN_TYPE,
        }],
    }
