"""The `lakeversion` command line: refs, history, diff, merge and rollback over a store.

The root group owns the cross-cutting rules: it maps every error to its exit code and
message exactly once (see `output.py`), and loads commands that live in other modules
(`serve`, `spark-submit`, `gc`, the benchmarks) only when they are used, so a missing
optional part breaks that command alone, not the whole CLI.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from spark_lakeversion.cli.output import (
    OUTPUT_FORMATS,
    CliState,
    ExitCode,
    debug_enabled,
    emit,
    get_state,
    render_diff,
    render_entries,
    render_log,
    render_merge_result,
    render_refs,
    report_error,
    short,
    to_json,
)
from spark_lakeversion.errors import ConflictError, InvalidInput, LakeVersionError
from spark_lakeversion.model import STRATEGY_NAMES, KeyLike, MergeBehavior, MergeResult, RefType

if TYPE_CHECKING:
    from spark_lakeversion.api import Branch, Tag

#: commands implemented in other modules: name -> ("module:attribute", one-line help).
#: Imported on first use; `--help` lists them without importing anything.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("spark_lakeversion.cli.serve:serve",
              "Run the HTTP server (Iceberg REST catalog and /api/v1)."),
    "spark-submit": ("spark_lakeversion.cli.submit:spark_submit",
                     "Run spark-submit with the lakeversion catalog configured."),
    "gc": ("spark_lakeversion.cli.gc:gc",
           "Garbage-collect data no ref can reach any more."),
    "delta": ("spark_lakeversion.cli.delta:delta",
              "Create, register and show Delta tables."),
    "token": ("spark_lakeversion.cli.access:token",
              "Make tokens for `serve --auth-config` (token new)."),
    "audit": ("spark_lakeversion.cli.access:audit",
              "Show the audit trail: who did what to which ref (admin)."),
    "check": ("spark_lakeversion.cli.gates:check",
              "Merge gates: checks that run on a merge's preview, and their runs."),
    "mr": ("spark_lakeversion.cli.reviews:mr",
           "Merge requests: open, list, show, approve, merge, close."),
    "run": ("spark_lakeversion.cli.run:run",
            "Run a job on a new branch; merge it only if the job succeeds."),
}

#: benchmark name -> module whose `run(**options) -> dict` it calls
BENCHMARKS = ("store", "rest", "spark", "gc", "merge", "delta", "gates", "rows", "contention")


def load_attribute(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def unavailable_command(name: str, target: str, reason: BaseException) -> click.Command:
    """A stand-in that explains why `name` cannot run, and only when someone runs it."""

    def explain(args: tuple[str, ...]) -> None:
        raise InvalidInput(f"command {name!r} is not available: cannot load {target} "
                           f"({type(reason).__name__}: {reason})")

    return click.Command(
        name, callback=explain, help=f"(unavailable: {reason})",
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                          "help_option_names": []})


class LakeVersionGroup(click.Group):
    """Root group: lazy commands plus one place that turns errors into exit codes."""

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return self.commands.get(cmd_name)
        target, _ = self.lazy_commands[cmd_name]
        try:
            command = load_attribute(target)
        except (ImportError, AttributeError) as exc:
            return unavailable_command(cmd_name, target, exc)
        if not isinstance(command, click.Command):
            return unavailable_command(cmd_name, target,
                                       TypeError(f"{target} is not a click command"))
        self.commands[cmd_name] = command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                rows.append((name, self.commands[name].get_short_help_str(limit=60)))
            else:
                rows.append((name, self.lazy_commands[name][1]))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LakeVersionError as error:
            raise click.exceptions.Exit(int(report_error(error, get_state(ctx).json))) \
                from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the CLI; exit codes follow `output.exit_code_for`, never a traceback."""
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  **extra)
            code = result if isinstance(result, int) else ExitCode.OK
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "")
            code = ExitCode.OK
        except click.UsageError as exc:
            code = report_error(exc, _wants_json(exc.ctx, args))
        except click.ClickException as exc:  # e.g. bad file arguments
            click.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except click.Abort:
            click.echo("aborted", err=True)
            code = ExitCode.INVALID
        except LakeVersionError as exc:  # raised while parsing, before `invoke`
            code = report_error(exc, _wants_json(None, args))
        except Exception as exc:
            if debug_enabled():
                raise
            code = report_error(exc, _wants_json(None, args))
        if standalone_mode:
            sys.exit(int(code))
        return int(code)


def _wants_json(ctx: click.Context | None, args: Sequence[str] | None) -> bool:
    """Whether `--output json` was asked for, even if parsing stopped before the state."""
    if ctx is not None:
        state = ctx.find_object(CliState)
        if state is not None:
            return state.json
        if ctx.find_root().params.get("output") == "json":
            return True
    words = list(sys.argv[1:] if args is None else args)
    for i, word in enumerate(words):
        if word in ("--output", "-o") and i + 1 < len(words):
            return words[i + 1] == "json"
        if word == "--output=json":
            return True
    return False


@click.group(cls=LakeVersionGroup, lazy_commands=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", "store_url", envvar="LAKEVERSION_STORE", metavar="URL",
              help="Version store: SQLite (sqlite:///PATH), PostgreSQL "
                   "(postgresql+psycopg://USER@HOST/DB) or a lakeversion server "
                   "(http(s)://HOST:PORT, token from LAKEVERSION_TOKEN) (env "
                   "LAKEVERSION_STORE; default $LAKEVERSION_HOME/store.db, "
                   "LAKEVERSION_HOME defaulting to ./lakehouse).")
@click.option("--output", "-o", type=click.Choice(OUTPUT_FORMATS), default="text",
              show_default=True, help="text for people, json for scripts.")
@click.version_option(package_name="spark-lakeversion", prog_name="lakeversion")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None, output: str) -> None:
    """Git for lakehouse tables: branches, tags, merges and rollbacks over a catalog."""
    state = ctx.ensure_object(CliState)
    state.store_url = store_url
    state.output = output
    ctx.call_on_close(state.close)


# ---- branches and tags -------------------------------------------------------------------


def _ref_group(ref_type: RefType) -> click.Group:
    """`branch` and `tag` share their create/list/delete shape."""
    noun = ref_type.value.lower()
    plural = "branches" if ref_type is RefType.BRANCH else "tags"

    def handle(ctx: click.Context, name: str) -> Branch | Tag:
        catalog = get_state(ctx).catalog
        return catalog.branch(name) if ref_type is RefType.BRANCH else catalog.tag(name)

    @click.group(name=noun, help=f"Create, list and delete {plural}.")
    def group() -> None:
        pass

    @group.command("create", help=f"Create {noun} NAME at REF (default main).")
    @click.argument("name")
    @click.option("--from", "from_ref", default="main", show_default=True, metavar="REF",
                  help="Ref expression the new ref points at.")
    @click.pass_context
    def create(ctx: click.Context, name: str, from_ref: str) -> None:
        # the ref the store made, not read back: `create` needs no `read` on NAME
        named = handle(ctx, name)
        ref = named.store.create_ref(named.name, ref_type, from_ref)
        emit(ctx, ref.to_dict(),
             lambda _: f"created {noun} {ref.name} at {short(ref.head)} (from {from_ref})")

    @group.command("list", help=f"List {plural}.")
    @click.pass_context
    def list_(ctx: click.Context) -> None:
        store = get_state(ctx).catalog.store
        refs = store.list_refs(ref_type)
        if ref_type is RefType.TAG:
            emit(ctx, {"refs": [r.to_dict() for r in refs]}, lambda _: render_refs(refs))
            return
        protected = store.protected_branches()
        emit(ctx, {"refs": [{**r.to_dict(), "protected": r.name in protected}
                            for r in refs]},
             lambda _: render_refs(refs, protected))

    @group.command("delete", help=f"Delete {noun} NAME.")
    @click.argument("name")
    @click.option("--force", is_flag=True,
                  help="Delete a branch whose commits no other branch or tag holds, or a "
                       "protected branch (an admin action), too.")
    @click.pass_context
    def delete(ctx: click.Context, name: str, force: bool) -> None:
        named = handle(ctx, name)
        head = named.get_ref().head
        named.delete(expected_head=head, force=force)
        emit(ctx, {"deleted": True, "name": name, "type": ref_type.value, "head": head},
             lambda _: f"deleted {noun} {name} (was at {short(head)})")

    return group


def _branch_group() -> click.Group:
    from spark_lakeversion.cli.gates import protect, unprotect

    group = _ref_group(RefType.BRANCH)
    group.add_command(protect)
    group.add_command(unprotect)
    return group


cli.add_command(_branch_group())
cli.add_command(_ref_group(RefType.TAG))


# ---- reading -----------------------------------------------------------------------------


@cli.command()
@click.argument("ref", default="main")
@click.option("--prefix", metavar="NAMESPACE", help="Only keys under this namespace.")
@click.pass_context
def show(ctx: click.Context, ref: str, prefix: str | None) -> None:
    """Show the tables (and namespaces) at REF and their states."""
    catalog = get_state(ctx).catalog
    resolved = catalog.ref(ref).resolve()
    commit = catalog.store.get_commit(resolved.commit_id)
    entries = catalog.store.list_keys(resolved.commit_id, prefix)
    data = {
        "ref": {"expression": resolved.expression, "commit_id": resolved.commit_id,
                "branch": resolved.branch, "writable": resolved.writable},
        "commit": commit.to_dict(),
        "entries": [{"key": str(k), "elements": list(k.elements), "content": c.to_dict()}
                    for k, c in entries],
    }

    def text(_: Any) -> str:
        where = f"branch {resolved.branch}" if resolved.branch else "read-only"
        return (f"{ref} -> {short(resolved.commit_id)} ({where}): {commit.message}\n"
                + render_entries(entries))

    emit(ctx, data, text)


@cli.command()
@click.argument("ref", default="main")
@click.option("--table", "table", metavar="KEY", help="Only commits that changed this key.")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), default=None,
              help="Show at most N commits (default: all).")
@click.pass_context
def log(ctx: click.Context, ref: str, table: str | None, limit: int | None) -> None:
    """Commits reachable from REF (default main), newest first."""
    commits = list(get_state(ctx).catalog.ref(ref).log(table=table, limit=limit))
    emit(ctx, {"ref": ref, "commits": [c.to_dict() for c in commits]},
         lambda _: render_log(commits))


@cli.command()
@click.argument("from_ref", metavar="FROM")
@click.argument("to_ref", metavar="TO")
@click.option("--table", "table", metavar="KEY", default=None,
              help="Only this table (with --rows: the table whose rows to compare).")
@click.option("--rows", "rows", is_flag=True,
              help="The rows that differ (change: insert, delete, update_before, "
                   "update_after; then the table's columns), read from the files live on "
                   "one side only.")
@click.option("--columns", default=None, metavar="A,B",
              help="With --rows: only these columns after change.")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="With --rows: at most N rows.")
@click.option("--summary", is_flag=True,
              help="With --rows: rows inserted, deleted and updated per partition.")
@click.option("--engine", type=click.Choice(("duckdb", "spark")), default=None,
              help="With --rows: where the rows are read and compared: duckdb (default, in "
                   "the server, within its memory budget) or spark (a local SparkSession "
                   "reads them, past the budget; the same rows in the same order).")
@click.option("--output", "-o", "output", type=click.Choice(("text", "json", "csv")),
              default=None, help="text, json or (with --rows) csv; default the global one.")
@click.pass_context
def diff(ctx: click.Context, from_ref: str, to_ref: str, table: str | None, rows: bool,
         columns: str | None, limit: int | None, summary: bool, engine: str | None,
         output: str | None) -> None:
    """Tables added (+), removed (-) and changed (~) going from FROM to TO; with --rows,
    the rows of one table."""
    if rows:
        from spark_lakeversion.cli.rows import emit_row_diff

        emit_row_diff(ctx, from_ref, to_ref, table, columns, limit, summary, output,
                      engine or "duckdb")
        return
    if columns is not None or limit is not None or summary or output == "csv" \
            or engine is not None:
        raise InvalidInput("--columns, --limit, --summary, --engine and -o csv go with --rows")
    if output is not None:
        get_state(ctx).output = output
    entries = get_state(ctx).catalog.ref(from_ref).diff(to_ref)
    if table is not None:
        entries = [e for e in entries if str(e.key) == table]
    emit(ctx, {"from": from_ref, "to": to_ref, "diffs": [d.to_dict() for d in entries]},
         lambda _: render_diff(entries))


# ---- writing -----------------------------------------------------------------------------

STRATEGIES = tuple(STRATEGY_NAMES.values())


def _emit_merge(ctx: click.Context, result: MergeResult, verb: str) -> None:
    """A merge-like result; one that conflicts (dry runs included) exits 3."""
    if not result.successful:
        raise ConflictError(
            f"{verb} of {result.source} into {result.target} "
            f"{'would conflict' if result.dry_run else 'conflicts'}", result=result)
    emit(ctx, result.to_dict(), lambda _: render_merge_result(result, verb))


def _parse_behaviors(values: Sequence[str]) -> dict[KeyLike, MergeBehavior | str]:
    behaviors: dict[KeyLike, MergeBehavior | str] = {}
    for value in values:
        key, sep, strategy = value.partition("=")
        if not sep or not key or not strategy:
            raise InvalidInput(f"--table-strategy takes KEY=STRATEGY, not {value!r}")
        behaviors[key] = strategy
    return behaviors


@cli.command()
@click.argument("source")
@click.option("--into", "target", default="main", show_default=True, metavar="BRANCH",
              help="Branch to merge into.")
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.option("--no-ff", "no_fast_forward", is_flag=True,
              help="Always create a merge commit, even when a fast-forward is possible.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="normal",
              show_default=True, help="What to do with tables both sides changed.")
@click.option("--table-strategy", "table_strategies", multiple=True, metavar="KEY=STRATEGY",
              help="Per-table strategy overriding --strategy; repeatable.")
@click.option("-m", "--message", help="Merge commit message.")
@click.option("--isolation-level", type=click.Choice(["serializable", "snapshot"]),
              help="For tables both sides changed: override the tables' own isolation level.")
@click.option("--row-conflicts", metavar="source-wins|target-wins",
              help="Settle rows both sides changed differently (ROW_CONFLICT) this way.")
@click.option("--engine", type=click.Choice(("duckdb", "spark")), default="duckdb",
              show_default=True,
              help="Where row-level merges run: duckdb (in the server, within its row limit) "
                   "or spark (a local SparkSession reads the rows and writes the merged "
                   "files; the server checks them and commits; the same rows).")
@click.pass_context
def merge(ctx: click.Context, source: str, target: str, dry_run: bool,
          no_fast_forward: bool, strategy: str, table_strategies: tuple[str, ...],
          message: str | None, isolation_level: str | None,
          row_conflicts: str | None, engine: str) -> None:
    """Three-way merge of SOURCE (any ref) into a branch.

    Tables changed on both sides are merged inside their content when the changes commute
    (Iceberg: REPLAYED), down to rows where both sides rewrote the same files; otherwise
    they are reported as conflicts (exit 3).
    """
    state = get_state(ctx)
    args: dict[str, Any] = dict(
        dry_run=dry_run, fast_forward=not no_fast_forward, strategy=strategy,
        behaviors=_parse_behaviors(table_strategies), message=message,
        isolation_level=isolation_level, row_conflicts=row_conflicts)
    if engine == "spark":
        from spark_lakeversion.cli.rows import spark_session

        if dry_run:
            raise InvalidInput("--dry-run plans in the server: leave out --engine spark")
        with spark_session(state.store_url) as spark:
            result = state.catalog.ref(source).merge_into(target, engine="spark", spark=spark,
                                                          **args)
    else:
        result = state.catalog.ref(source).merge_into(target, **args)
    _emit_merge(ctx, result, "merge")


@cli.command()
@click.argument("commit")
@click.option("--on", "branch", default="main", show_default=True, metavar="BRANCH")
@click.option("--dry-run", is_flag=True, help="Report what would happen; write nothing.")
@click.pass_context
def revert(ctx: click.Context, commit: str, branch: str, dry_run: bool) -> None:
    """Undo the changes of COMMIT (any ref expression) on BRANCH, as a new commit."""
    result = get_state(ctx).catalog.branch(branch).revert(commit, dry_run=dry_run)
    _emit_merge(ctx, result, "revert")


@cli.command()
@click.argument("branch")
@click.option("--to", "to_ref", required=True, metavar="REF", help="Where BRANCH goes.")
@click.option("--force", is_flag=True, help="Reset a protected branch too (an admin action).")
@click.pass_context
def reset(ctx: click.Context, branch: str, to_ref: str, force: bool) -> None:
    """Point BRANCH at REF (its later commits stay reachable only by id)."""
    handle = get_state(ctx).catalog.branch(branch)
    before = handle.ref_for_write().head
    handle.reset(to_ref, expected_head=before, force=force)
    ref = handle.get_ref()
    emit(ctx, {**ref.to_dict(), "previous_head": before},
         lambda _: f"reset {branch}: {short(before)} -> {short(ref.head)}")


@cli.command()
@click.argument("table")
@click.option("--to", "to_ref", required=True, metavar="REF",
              help="Ref whose state of TABLE to restore.")
@click.option("--on", "branch", default="main", show_default=True, metavar="BRANCH")
@click.option("-m", "--message", help="Commit message.")
@click.pass_context
def rollback(ctx: click.Context, table: str, to_ref: str, branch: str,
             message: str | None) -> None:
    """Set TABLE on BRANCH to its state at REF, as a new commit."""
    commit = get_state(ctx).catalog.branch(branch).rollback_table(table, to=to_ref,
                                                                  message=message)
    emit(ctx, commit.to_dict(),
         lambda _: f"rolled back {table} on {branch} to its state at {to_ref}: "
                   f"commit {short(commit.id)}")


# ---- demo and benchmarks -------------------------------------------------------------------


@cli.command()
@click.option("--keep", is_flag=True, help="Keep the demo store and print its URL.")
@click.pass_context
def demo(ctx: click.Context, keep: bool) -> None:
    """Store-only walkthrough on a fresh throwaway store (ignores --store)."""
    from spark_lakeversion.cli.demo import run_demo

    state = get_state(ctx)
    lines: list[str] = []
    say = lines.append if state.json else click.echo
    url = run_demo(say, keep=keep)
    if state.json:
        emit(ctx, {"store": url, "narrative": lines})


@cli.group()
def bench() -> None:
    """Benchmarks; each prints one JSON object of measurements."""


def _bench_command(name: str) -> click.Command:
    def run_benchmark(ctx: click.Context, json_only: bool, **options: Any) -> None:
        target = f"spark_lakeversion.bench.{name}:run"
        try:
            run = load_attribute(target)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"benchmark {name!r} is not available: cannot load {target} "
                               f"({type(exc).__name__}: {exc})") from None
        figures = dict(run(**options))
        if json_only or get_state(ctx).json:
            click.echo(to_json(figures))
        else:
            click.echo(f"bench {name}\n" + "\n".join(f"  {k}: {v}" for k, v in figures.items()))

    params: list[click.Parameter] = [
        click.Option(["--json", "json_only"], is_flag=True,
                     help="Print only the JSON object (same as --output json).")]
    if name == "store":
        params.append(click.Option(["--backend"], type=click.Choice(["sqlite", "postgres"]),
                                   default="sqlite", show_default=True,
                                   help="Database the store runs on."))
    if name == "delta":
        params.append(click.Option(["--files"], type=click.IntRange(min=1), default=10_000,
                                   show_default=True, help="Data files of the big table."))
        params.append(click.Option(["--appends"], type=click.IntRange(min=1), default=200,
                                   show_default=True,
                                   help="Single-file appends on each side of the merge."))
        params.append(click.Option(["--iceberg-files"], type=click.IntRange(min=1),
                                   default=10_000, show_default=True,
                                   help="Files of the Delta table served as Iceberg."))
        params.append(click.Option(["--spark-inserts"], type=click.IntRange(min=0),
                                   default=10, show_default=True,
                                   help="Spark INSERTs per round, Delta vs Iceberg "
                                        "(0: skip Spark)."))
    if name == "rest":
        params.append(click.Option(
            ["--auth"], is_flag=True,
            help="Instead: the same appends with 100 principals x 10 grants vs no auth."))
        params.append(click.Option(["--storage"], type=click.Choice(["local", "s3", "both"]),
                                   default="both", show_default=True,
                                   help="Warehouse storage: local files, S3 (moto's server "
                                        "on loopback), or both in one run."))
    if name == "gates":
        params.append(click.Option(["--rows"], type=click.IntRange(1000), default=1_000_000,
                                   show_default=True,
                                   help="Rows of the table the SQL check reads (README: 10M)."))
    if name == "rows":
        for option, default, text in (
                ("--rows", 2_000_000, "Rows of the keyed table."),
                ("--files", 200, "Its data files (contiguous ids)."),
                ("--updates", 1000, "Rows each branch updates."),
                ("--spread", 5, "Files those updates are spread over, on each branch."),
                ("--rounds", 3, "Timed rounds per measurement (the median is reported).")):
            params.append(click.Option([option], type=click.IntRange(min=1), default=default,
                                       show_default=True, help=text))
    if name == "contention":
        params.append(click.Option(["--duration"], type=click.FloatRange(0.5, 3600),
                                   default=30.0, show_default=True,
                                   help="Seconds of writing per layout (one table, own "
                                        "tables), split over the alternating rounds."))
        params.append(click.Option(["--writers"], type=click.IntRange(1, 64), default=8,
                                   show_default=True, help="Writer processes."))
        params.append(click.Option(["--rounds"], type=click.IntRange(1, 100), default=6,
                                   show_default=True, help="Alternating rounds per layout."))
        params.append(click.Option(["--scenarios"], default="rebase,no_rebase,postgres",
                                   show_default=True,
                                   help="Comma-separated: rebase, no_rebase, postgres."))
    return click.Command(name, callback=click.pass_context(run_benchmark), params=params,
                         help=f"Run the {name} benchmark (spark_lakeversion.bench.{name}).")


for _name in BENCHMARKS:
    bench.add_command(_bench_command(_name))


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point (`lakeversion`)."""
    return int(cli.main(args=argv, prog_name="lakeversion", standalone_mode=True))


if __name__ == "__main__":  # pragma: no cover
    main()
