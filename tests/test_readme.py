"""README matches the code: every command and option of the CLI table, every name and
parameter of the Python API table and every statement and keyword of the Branch SQL table
exists (the click command tree, `inspect.signature`, the shim's grammar `BranchSql.java`);
so do the options of every `lakeversion ...` command README quotes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

import spark_lakeversion.api as api
from spark_lakeversion.cli.main import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
GRAMMAR = (REPO / "jars/shim/src/io/lakeversion/spark/BranchSql.java"
           ).read_text()
_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.S)  # `a` and `` `b`.c ``


def spans(text: str) -> list[str]:
    """The inline code spans of Markdown `text`, single or double backticked."""
    return [m.group(2).strip() for m in _SPAN.finditer(text)]
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9]|-[a-zA-Z])(?![\w.-])")


def section(title: str) -> str:
    """The text under a README heading, up to the next heading of any level."""
    start = README.index(f"\n{title}\n") + len(title) + 2
    end = re.search(r"\n#{1,4} ", README[start:])
    return README[start:start + end.start()] if end else README[start:]


def table_rows(text: str) -> list[list[str]]:
    """Each row of the first Markdown table in `text` as cells (escaped pipes kept)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip().replace("\\|", "|")
                         for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows[1:]  # no header


# ---- the CLI ------------------------------------------------------------------------------
def resolve(words: list[str]) -> tuple[list[click.Command], list[str]]:
    """The commands a `lakeversion` command line walks through (root first), and its rest."""
    ctx = click.Context(cli)
    chain: list[click.Command] = [cli]
    rest = list(words)
    while rest and isinstance(chain[-1], click.Group):
        word = rest[0]
        if word.startswith("-"):
            rest.pop(0)  # a global option (checked by the caller); its value may follow
            if rest and not rest[0].startswith("-") and \
                    chain[-1].get_command(ctx, rest[0]) is None:
                rest.pop(0)
            continue
        names = word.split("|")
        found = [chain[-1].get_command(ctx, n) for n in names]
        assert all(found), f"no command {word!r} under {chain[-1].name!r}"
        chain.append(found[0])  # type: ignore[arg-type]
        rest.pop(0)
    return chain, rest


def option_names(commands: list[click.Command]) -> set[str]:
    return {o for c in commands for p in c.params for o in (*p.opts, *p.secondary_opts)} | {
        "-h", "--help"}


def check_command_line(text: str) -> None:
    words = text.replace("...", " ").split()
    chain, _ = resolve(words)
    assert len(chain) > 1 or text.strip() == "", f"{text!r} names no command"
    known = option_names(chain)
    for option in OPTION.findall(text):
        assert option in known, f"{option} is not an option of `lakeversion " \
                                f"{' '.join(c.name or '' for c in chain[1:])}` ({text!r})"


CLI_ROWS = table_rows(section("## CLI reference"))



@pytest.mark.parametrize("row", CLI_ROWS, ids=[r[0][:40] for r in CLI_ROWS])
def test_cli_table_names_real_commands_and_options(row: list[str]) -> None:
    cells = spans(row[0])
    assert cells
    for span in cells:
        check_command_line(span)


FENCED = re.compile(r"```[a-z]*\n(.*?)```", re.S)


def quoted_command_lines() -> list[str]:
    """Every `lakeversion ...` command README quotes, inline or in a code block (the
    synopsis `lakeversion [--store URL] ...` is the CLI table's header, checked there)."""
    inline = [" ".join(s.split()) for s in spans(FENCED.sub("", README))]
    lines = [s.removeprefix("lakeversion ") for s in inline if s.startswith("lakeversion ")]
    for block in FENCED.findall(README):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            for prefix in ("lakeversion ", ".venv/bin/lakeversion "):
                if line.startswith(prefix):
                    lines.append(line.removeprefix(prefix))
    return [s for s in lines if not s.startswith("[")]


@pytest.mark.parametrize("line", quoted_command_lines())
def test_every_quoted_command_exists_with_its_options(line: str) -> None:
    check_command_line(line.split(" -- ", 1)[0])  # what follows `--` is the job's


def test_cli_table_covers_every_command() -> None:
    ctx = click.Context(cli)
    documented = " ".join(span for row in CLI_ROWS for span in spans(row[0]))
    for name in cli.list_commands(ctx):
        assert re.search(rf"(^|[ `|]){re.escape(name)}([ |]|$)", documented), name


def test_help_describes_store_urls() -> None:
    out = CliRunner().invoke(cli, ["--help"]).stdout
    flat = " ".join(out.split())
    for expected in ("SQLite", "PostgreSQL", "http(s)://", "LAKEVERSION_STORE"):
        assert expected in flat, expected


# ---- the Python API ---------------------------------------------------------------------
API_ROWS = table_rows(section("## Python API"))
CALL = re.compile(r"^\.?(\w+)(?:\((.*)\))?$")


def check_call(owner: Any, span: str) -> None:
    match = CALL.match(span.strip())
    assert match, span
    name, args = match.groups()
    target = getattr(owner, name, None)
    if target is None and args is None and inspect.isclass(owner):  # an instance attribute
        assert f"self.{name} = " in inspect.getsource(owner), f"{owner.__name__} has no {name!r}"
        return
    assert target is not None, f"{getattr(owner, '__name__', owner)} has no {name!r}"
    if args is None:
        return
    parameters = inspect.signature(target).parameters
    for arg in (a.strip() for a in args.split(",")):
        if arg in ("", "...", "*"):
            continue
        param = arg.lstrip("*").split("=", 1)[0].strip()
        assert param in parameters, f"{span}: {name} takes no {param!r} " \
                                    f"({list(parameters)})"


@pytest.mark.parametrize("row", API_ROWS, ids=[r[0][:30] for r in API_ROWS])
def test_python_table_names_real_methods_and_parameters(row: list[str]) -> None:
    first = spans(row[0])[0]
    if "(" in first:  # a function row: its signature is the first cell
        check_call(api, first)
        return
    owner = getattr(api, first)
    for span in spans(row[1]):
        if span.startswith("."):
            check_call(owner, span)
        elif span in ("Reference",):
            assert issubclass(owner, getattr(api, span))


# ---- Spark SQL -----------------------------------------------------------------------------
SQL_ROWS = table_rows(section("### Branch SQL (catalog `lv` unless `IN catalog`)"))
STARTS = set(re.findall(r'\{"([A-Z]+)", "([A-Z]+)"\}', GRAMMAR))
KEYWORDS = set(re.findall(r'"([A-Z]{2,})"', GRAMMAR))


@pytest.mark.parametrize("row", SQL_ROWS, ids=[r[0][:40] for r in SQL_ROWS])
def test_sql_table_names_statements_the_shim_parses(row: list[str]) -> None:
    statements = [s for s in spans(row[0]) if re.match(r"[A-Z]{2,} ", s)]
    assert statements  # the rest are values in the explanation
    for span in statements:
        check_statement(span)


def check_statement(span: str) -> None:
    words = re.findall(r"[A-Za-z_]+", re.sub(r"'[^']*'", "''", span))  # 'SELECT …' is a value
    first, second = words[0], words[1]
    pairs = re.findall(rf"{first} ([A-Z]+)\|([A-Z]+)", span)  # `DROP BRANCH|TAG`
    seconds = [second, *(word for pair in pairs for word in pair)]
    for word in seconds:
        assert (first, word) in STARTS, f"{first} {word} is not a statement the shim parses"
    for word in words[2:]:
        if word.isupper() and len(word) > 1:
            assert word in KEYWORDS, f"{span}: keyword {word} is not in the grammar"


def test_the_checks_catch_what_does_not_exist() -> None:
    for wrong in ("brnch list", "branch delete NAME --forse", "log -z", "bench store|nope"):
        with pytest.raises(AssertionError):
            check_command_line(wrong)
    for wrong in (".branch(nme)", ".no_such_method()"):
        with pytest.raises(AssertionError):
            check_call(api.Catalog, wrong)
    with pytest.raises(AssertionError):
        check_call(api, "connect(store_url=None, *, wharehouse=None)")
    for wrong in ("DROP BRANCH x FORSE", "DELETE BRANCH x", "ADD CHECK c AS 'x' TIMEOUTS '1s'"):
        with pytest.raises(AssertionError):
            check_statement(wrong)
    check_statement("DROP BRANCH [IF EXISTS] name [FORCE]")  # and the right ones pass
