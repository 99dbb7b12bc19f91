"""The provider as Airflow sees it once the airflow extra is installed, and the install
itself: Airflow must not have replaced pyspark (the Spark provider 6.x would)."""

from __future__ import annotations

import importlib.metadata


def test_airflow_extra_left_pyspark_intact() -> None:
    import pyspark

    assert pyspark.__version__ == "3.5.7"
    assert importlib.metadata.version("pyspark") == "3.5.7"
    names = {d.metadata["Name"].lower() for d in importlib.metadata.distributions()}
    assert "pyspark-client" not in names
    spark_provider = importlib.metadata.version("apache-airflow-providers-apache-spark")
    assert spark_provider.split(".")[0] == "5"


def test_entry_point_names_this_distribution() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="apache_airflow_provider")
               if e.value.startswith("spark_lakeversion.")]
    assert entry.dist is not None
    info = entry.load()()
    assert info["package-name"] == entry.dist.metadata["Name"] == "spark-lakeversion"


def test_providers_manager_registers_the_connection_type(airflow_db: None) -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    assert "spark-lakeversion" in ProvidersManager().providers  # the UI's view
    manager = ProvidersManagerTaskRuntime()  # what tasks resolve hooks with
    assert "spark-lakeversion" in manager.providers
    hook = manager.hooks["lakeversion"]
    assert hook is not None
    assert hook.hook_class_name == "spark_lakeversion.airflow.hooks.LakeVersionHook"
    assert hook.connection_id_attribute_name == "lakeversion_conn_id"
