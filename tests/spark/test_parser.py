"""The SQL extension's text handling: `db@ref` rewriting and branch statement parsing.

These run on the shared session's JVM but need no server: they pin down what our parser
rewrites and, just as important, what it must leave alone.
"""

from __future__ import annotations

from typing import Any

import pytest
from chispa import assert_df_equality

from spark_lakeversion.errors import InvalidInput
from spark_lakeversion.gc import durations
from spark_lakeversion.model import STRATEGY_NAMES, MergeBehavior
from spark_lakeversion.rows.merge3 import RESOLUTIONS
from spark_lakeversion.spark import jvm
from spark_lakeversion.versioning.options import MergeOptions

pytestmark = pytest.mark.spark


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM db@dev.orders", "SELECT * FROM `db@dev`.orders"),
    ("select * from lv.db@main~2.t", "select * from lv.`db@main~2`.t"),
    ("INSERT INTO lv.db@feature/x.t VALUES (1)", "INSERT INTO lv.`db@feature/x`.t VALUES (1)"),
    ("SELECT * FROM lv.db@0a1b2c3d.t.snapshots", "SELECT * FROM lv.`db@0a1b2c3d`.t.snapshots"),
    ("MERGE INTO lv.db@dev.t t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
     "MERGE INTO lv.`db@dev`.t t USING s ON t.id = s.id WHEN MATCHED THEN DELETE"),
    ("CREATE TABLE db@dev.t2 AS SELECT * FROM db@main.t",
     "CREATE TABLE `db@dev`.t2 AS SELECT * FROM `db@main`.t"),
    ("SELECT * FROM lv.db@main#2026-01-01T00:00:00Z.t",
     "SELECT * FROM lv.`db@main#2026-01-01T00:00:00Z`.t"),
    ("SELECT * FROM lv.db@main@{1}.t", "SELECT * FROM lv.`db@main@{1}`.t"),
    ("SELECT * FROM db@main@{12}~2.t JOIN x", "SELECT * FROM `db@main@{12}~2`.t JOIN x"),
])
def test_unquoted_ref_names_are_backquoted(spark: Any, sql: str, expected: str) -> None:
    assert jvm.rewrite_sql(spark, sql) == expected


@pytest.mark.parametrize("sql", [
    "SELECT 'a@b.c' AS s",
    'SELECT "db@dev.t" AS s',
    "SELECT 'it''s db@dev.t' AS s",
    "SELECT 'escaped \\' db@dev.t' AS s",
    "SELECT `x@y`.z FROM t",
    "SELECT `db@dev`.t FROM x",
    "SELECT 1 -- FROM db@dev.t",
    "SELECT 1 /* db@dev.t /* nested lv.db@x.y */ still db@z.w */",
    "SELECT a, b FROM db.t WHERE email = 'someone@example.com'",
    "SELECT 3.14, 1e10 FROM t",
])
def test_literals_comments_and_quoted_names_are_untouched(spark: Any, sql: str) -> None:
    assert jvm.rewrite_sql(spark, sql) == sql


def test_literal_with_at_sign_survives_a_real_query(spark: Any) -> None:
    actual = spark.sql("SELECT 'a@b.c' AS s, 1 AS `x@y` -- db@dev.t\n/* lv.db@x.t */")
    expected = spark.createDataFrame([("a@b.c", 1)], "s STRING NOT NULL, `x@y` INT NOT NULL")
    assert_df_equality(actual, expected)
    assert actual.columns == ["s", "x@y"]


def test_quoted_at_column_resolves_in_a_dataframe(spark: Any) -> None:
    df = spark.createDataFrame([(1, "a@b.c")], "`x@y` INT, s STRING")
    df.createOrReplaceTempView("lv_parser_at_columns")
    actual = spark.sql("SELECT `x@y`, s FROM lv_parser_at_columns WHERE s = 'a@b.c'")
    assert_df_equality(actual, df)


@pytest.mark.parametrize(("sql", "call"), [
    ("CREATE BRANCH dev", "CALL `lv`.lakeversion.create_ref(type => 'BRANCH', name => 'dev')"),
    ("create branch if not exists feature/x from main~2 in other;",
     "CALL `other`.lakeversion.create_ref(type => 'BRANCH', if_not_exists => true, "
     "name => 'feature/x', from_ref => 'main~2')"),
    ("CREATE TAG v1 FROM dev", "CALL `lv`.lakeversion.create_ref(type => 'TAG', name => 'v1', "
                               "from_ref => 'dev')"),
    ("DROP TAG IF EXISTS v1", "CALL `lv`.lakeversion.drop_ref(type => 'TAG', if_exists => true,"
                              " name => 'v1')"),
    ("SHOW BRANCHES", "CALL `lv`.lakeversion.list_refs(type => 'BRANCH')"),
    ("  -- list them\n SHOW TAGS IN lv2", "CALL `lv2`.lakeversion.list_refs(type => 'TAG')"),
    ("USE BRANCH dev", "CALL `lv`.lakeversion.use_ref(name => 'dev')"),
    ("SHOW LOG ON dev LIMIT 5", "CALL `lv`.lakeversion.log(ref => 'dev', max_commits => 5)"),
    ("SHOW DIFF FROM main TO dev", "CALL `lv`.lakeversion.diff(from_ref => 'main', "
                                   "to_ref => 'dev')"),
    ("ALTER BRANCH main SET PROTECTED", "CALL `lv`.lakeversion.set_protected(name => 'main', "
                                        "protected => true)"),
    ("alter branch main unset protected", "CALL `lv`.lakeversion.set_protected("
                                          "name => 'main', protected => false)"),
    ("ALTER BRANCH main SET PROTECTED REQUIRE 2 APPROVALS",
     "CALL `lv`.lakeversion.set_protected(name => 'main', protected => true, "
     "require_approvals => 2)"),
    ("SHOW CHECKS ON BRANCH main", "CALL `lv`.lakeversion.list_checks(branch => 'main')"),
    ("SHOW CHECK RUNS ON BRANCH main LIMIT 3", "CALL `lv`.lakeversion.check_runs("
                                              "branch => 'main', max_runs => 3)"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT * FROM db.t WHERE v = \\'x\\'' TIMEOUT '1.5m' "
     "TABLES db.t, db.u ALLOW MISSING IN lv2",
     "CALL `lv2`.lakeversion.add_check(name => 'c', branch => 'main', "
     "sql => 'SELECT * FROM db.t WHERE v = \\'x\\'', timeout_s => 90.0, "
     "tables => 'db.t,db.u', allow_missing => true)"),
    ("add check c on branch main as 'SELECT 1 WHERE false' timeout 30",
     "CALL `lv`.lakeversion.add_check(name => 'c', branch => 'main', "
     "sql => 'SELECT 1 WHERE false', timeout_s => 30.0)"),
    ("DROP CHECK IF EXISTS c ON BRANCH main",
     "CALL `lv`.lakeversion.drop_check(if_exists => true, name => 'c', branch => 'main')"),
    ("MERGE BRANCH dev INTO main DRY RUN USING STRATEGY target_wins",
     "CALL `lv`.lakeversion.merge(source => 'dev', target => 'main', dry_run => true, "
     "strategy => 'target-wins')"),
    ("MERGE BRANCH dev INTO main NO FF",
     "CALL `lv`.lakeversion.merge(source => 'dev', target => 'main', fast_forward => false)"),
    ("merge branch dev into main on row conflict source_wins dry run",
     "CALL `lv`.lakeversion.merge(source => 'dev', target => 'main', "
     "row_conflicts => 'source-wins', dry_run => true)"),
    ("ROLLBACK TABLE db.t TO main@{1}",
     "CALL `lv`.lakeversion.rollback_table(table => 'db.t', to_ref => 'main@{1}')"),
    ("ROLLBACK TABLE db.t TO main~1 ON BRANCH dev",
     "CALL `lv`.lakeversion.rollback_table(table => 'db.t', to_ref => 'main~1', "
     "branch => 'dev')"),
    ("REVERT COMMIT 0a1b2c3d", "CALL `lv`.lakeversion.revert_commit(commit_id => '0a1b2c3d')"),
    ("CREATE BRANCH 'it\\'s'", "CALL `lv`.lakeversion.create_ref(type => 'BRANCH', "
                              "name => 'it\\'s')"),
])
def test_branch_statements_become_calls(spark: Any, sql: str, call: str) -> None:
    assert jvm.branch_sql_to_call(spark, sql) == call


@pytest.mark.parametrize("sql", [
    "USE branch",  # a database called `branch`
    "SELECT 1",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
    "SHOW TABLES",
    "ALTER TABLE lv.db.t CREATE BRANCH audit",  # Iceberg's own branch DDL
    "CREATE BRANCH a; SELECT 1",
])
def test_other_statements_are_not_ours(spark: Any, sql: str) -> None:
    assert jvm.branch_sql_to_call(spark, sql) is None


def test_the_parser_spells_no_strategy(spark: Any) -> None:
    """The parser only respells a strategy (`_` for `-`, any case): the names are the
    server's, checked by the merge procedure (`tests/spark/test_strategies_sql.py`), so
    an unknown one passes the parser."""
    for behavior, name in [*STRATEGY_NAMES.items(), (None, "ours")]:
        sql_name = name.replace("-", "_").upper()
        call = jvm.branch_sql_to_call(spark, f"MERGE BRANCH dev INTO main USING STRATEGY "
                                             f"{sql_name}")
        assert call == ("CALL `lv`.lakeversion.merge(source => 'dev', target => "
                        f"'main', strategy => '{name}')")
        if behavior is not None:
            assert MergeBehavior.parse(sql_name) is MergeBehavior.parse(name) is behavior


def test_the_parser_spells_no_row_conflict_resolution(spark: Any) -> None:
    """ON ROW CONFLICT only respells (`_` for `-`, any case): the server checks the name
    against `MergeOptions.row_conflicts`' list (`tests/spark/test_strategies_sql.py`)."""
    for name in RESOLUTIONS:
        call = jvm.branch_sql_to_call(spark, "MERGE BRANCH dev INTO main ON ROW CONFLICT "
                                             + name.replace("-", "_").upper())
        assert call == ("CALL `lv`.lakeversion.merge(source => 'dev', target => "
                        f"'main', row_conflicts => '{name}')")
        assert MergeOptions(row_conflicts=name.upper()).row_conflicts == name


def test_the_shim_spells_the_one_list_of_duration_units(spark: Any) -> None:
    """ADD CHECK's TIMEOUT reads durations as the CLI's `--timeout` does."""
    shim = dict(spark.sparkContext._jvm.io.lakeversion.spark.BranchSql.DURATION_UNITS)
    assert shim == {unit: float(s) for unit, s in durations._UNITS.items()}
    for unit, seconds in durations._UNITS.items():
        call = jvm.branch_sql_to_call(spark, f"ADD CHECK c ON BRANCH main AS 'x' "
                                             f"TIMEOUT '2 {unit.upper()}'")
        assert call is not None and call.endswith(f"timeout_s => {2.0 * seconds!r})")
        assert durations.parse_duration(f"2 {unit.upper()}").total_seconds() == 2 * seconds


@pytest.mark.parametrize(("sql", "fragment"), [
    ("MERGE BRANCH dev", "expected INTO"),
    ("MERGE BRANCH dev INTO main USING STRATEGY", "a merge strategy after USING STRATEGY"),
    ("MERGE BRANCH dev INTO main NO", "expected FF"),
    ("MERGE BRANCH dev INTO main ON CONFLICT source_wins", "expected ROW but found"),
    ("MERGE BRANCH dev INTO main ON ROW CONFLICT",
     "source_wins or target_wins after ON ROW CONFLICT"),
    ("MERGE BRANCH dev INTO main NO FAST", "expected FF but found 'FAST'"),
    ("SHOW LOG LIMIT many", "LIMIT needs a number"),
    ("CREATE BRANCH dev FROM", "a ref after FROM"),
    ("SHOW BRANCHES please", "unexpected 'please'"),
    ("ALTER BRANCH main PROTECT", "SET PROTECTED or UNSET PROTECTED"),
    ("ALTER BRANCH main SET PROTECTED REQUIRE two APPROVALS", "REQUIRE needs a number"),
    ("ALTER BRANCH main SET PROTECTED REQUIRE 2", "takes APPROVALS"),
    ("ALTER BRANCH main SET LOCKED", "expected PROTECTED"),
    ("SHOW CHECK RUNS LIMIT lots", "LIMIT needs a number"),
    ("ADD CHECK c AS 'SELECT 1'", "expected ON but found 'AS'"),
    ("ADD CHECK c ON BRANCH main", "expected AS but found the end"),
    ("ADD CHECK c ON BRANCH main AS", "expected the check's SQL as a string after AS"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' TIMEOUT soon", "TIMEOUT needs a duration"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' TIMEOUT", "a duration after TIMEOUT"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' TABLES db.t,,db.u", "TABLES needs table names"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' TABLES", "TABLES needs table names"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' TABLES db.t db.u", "TABLES needs table names"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' ALLOW", "expected MISSING"),
    ("ADD CHECK c ON BRANCH main AS 'SELECT 1' PYTHON m:f", "unexpected 'PYTHON'"),
    ("DROP CHECK c", "expected ON but found the end"),
    ("DROP CHECK c ON BRANCH main FORCE", "unexpected 'FORCE'"),
])
def test_malformed_branch_statements_are_invalid_input(spark: Any, sql: str,
                                                       fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        jvm.branch_sql_to_call(spark, sql)
    with pytest.raises(InvalidInput, match=fragment):
        spark.sql(sql)
