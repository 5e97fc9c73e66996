"""``coin-engine brain ...``: look at and operate the Brain Library (rich tables).

Every command opens the library named by the config (``training.model_versioning``) through
:func:`open_library`. Domain errors propagate to the root command, which prints one line and
exits 2; ``verify`` exits 1 when any artifact is missing or altered.
"""

import getpass
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from coin_engine.cli.state import bad_input, config_of
from trading_core.brain import BrainLibrary, ModelKey, ModelVersion
from trading_core.brain.push import push_current_stages
from trading_core.errors import ModelNotFoundError
from trading_core.types import Stage

brain_app = typer.Typer(
    help="Brain Library: model versions, stages, releases, artifacts.", no_args_is_help=True
)
console = Console()
KEYS_SHOWN = 12  # keys named in an unknown-key error

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (kept in the stage history).")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who acts (default: the OS user name).")
]


def open_library(ctx: typer.Context) -> BrainLibrary:
    """The Brain Library of the invocation's config (``ctx.obj["config"]``), closed with it."""
    library = BrainLibrary.from_config(config_of(ctx))
    ctx.call_on_close(library.close)
    return library


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _models_table(models: list[ModelVersion], metric: str) -> Table:
    """One row per version: its out-of-sample ``metric`` after costs (stored as ``oos_<metric>``)
    with the gate's standard error, adjusted p-value and verdict."""
    table = Table(title=f"Brain Library: {len(models)} model version(s)")
    columns = ("name", "stage", "created (UTC)", f"oos {metric}", "± se", "p adj", "gate")
    for column in (*columns, "partition", "artifact"):
        table.add_column(column, justify="right" if column in columns[3:6] else "left")
    for m in models:
        table.add_row(
            m.name,
            m.stage.value,
            m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            _number(m.metrics.get(f"oos_{metric}"), ".3f"),
            _number(m.metrics.get("oos_sharpe_se") if metric == "sharpe" else None, ".3f"),
            _number(m.metrics.get("oos_p_adjusted"), ".3g"),
            _gate_word(m),
            m.partition_date.isoformat(),
            m.artifact_sha256[:12],
        )
    return table


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _gate_word(model: ModelVersion) -> str:
    gate = (model.validation or {}).get("gate")
    if not gate:
        return "-"
    return "pass" if gate.get("passed") else "fail"


def _gate_rows(model: ModelVersion) -> list[tuple[str, str]]:
    """The promotion gate's figures of one model, as (field, value) rows."""
    gate = (model.validation or {}).get("gate")
    if not gate:
        return [("gate", "not judged (validated before the promotion gate, or not validated)")]
    rows = [("gate verdict", f"{'PASS' if gate.get('passed') else 'FAIL'}: {gate.get('reason')}")]
    labels = {
        "sharpe": "OOS Sharpe after costs (annualized)",
        "sharpe_se": "its standard error",
        "psr": "PSR (P[true Sharpe > 0])",
        "p_value": "p-value (1 - PSR)",
        "p_adjusted": f"adjusted p-value ({gate.get('method')}; luck if > {gate.get('alpha')})",
        "dsr": "DSR (P[beats the best of the trials' luck])",
        "expected_max_sharpe": "expected max Sharpe of the trials under no edge",
        "n_trials": "trials judged together",
    }
    for field, label in labels.items():
        value = gate.get(field)
        rows.append((label, "-" if value is None else f"{value:.4g}"))
    return rows


@brain_app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the Brain Library schema (Alembic, idempotent)."""
    library = open_library(ctx)
    console.print(f"{library.masked_dsn}: schema at revision [bold]{library.migrate()}[/bold]")


@brain_app.command("ls")
def list_models(
    ctx: typer.Context,
    stage: Annotated[Stage | None, typer.Option("--stage", help="Only this stage.")] = None,
    coin: Annotated[str | None, typer.Option("--coin", help="Only this coin, e.g. BTC.")] = None,
) -> None:
    """List model versions (newest version last per key)."""
    config = config_of(ctx)
    models = open_library(ctx).list_models(coin=coin, stage=stage)
    console.print(_models_table(models, config.training.model_versioning.selection_metric))


@brain_app.command("show")
def show(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Model version name.")]
) -> None:
    """One model version: its fields, metrics, params and stage history."""
    library = open_library(ctx)
    model = library.get_model(name)
    facts = Table(title=model.name, show_header=False)
    facts.add_column("field", style="bold")
    facts.add_column("value")
    for field, value in (
        ("key", model.key.slug),
        ("version", str(model.version)),
        ("stage", model.stage.value),
        ("created_at", model.created_at.isoformat()),
        ("partition_date", model.partition_date.isoformat()),
        ("training_data_hash", model.training_data_hash),
        ("artifact", f"{model.artifact_format} {model.artifact_size_bytes} B {model.artifact_uri}"),
        ("artifact_sha256", model.artifact_sha256),
        ("features", ", ".join(model.feature_list)),
        ("metrics", json.dumps(dict(model.metrics), sort_keys=True)),
        ("params", json.dumps(dict(model.params), sort_keys=True)),
        *_gate_rows(model),
    ):
        facts.add_row(field, value)
    console.print(facts)
    history = Table(title="stage history")
    for column in ("at (UTC)", "from", "to", "actor", "reason"):
        history.add_column(column)
    for change in library.stage_history(name):
        from_stage = "-" if change.from_stage is None else change.from_stage.value
        at = change.at.strftime("%Y-%m-%d %H:%M:%S")
        history.add_row(at, from_stage, change.to_stage.value, change.actor, change.reason)
    console.print(history)


@brain_app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model version name.")],
    reason: ReasonOption,
    actor: ActorOption = None,
) -> None:
    """Put a model version into production (archives the key's current production model)."""
    model = open_library(ctx).promote(name, actor=_actor(actor), reason=reason)
    console.print(f"[green]{model.name}[/green] is now {model.stage.value}")


@brain_app.command("rollback")
def rollback(
    ctx: typer.Context,
    reason: ReasonOption,
    key: Annotated[
        str | None, typer.Argument(help="Model key, e.g. BTC_TREND_1h (or give --release).")
    ] = None,
    to: Annotated[int | None, typer.Option("--to", help="Version of KEY to restore.")] = None,
    release: Annotated[
        int | None, typer.Option("--release", help="Restore this whole release instead.")
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Bring back the previous (or the given) production version of KEY, or every model of an
    earlier release (--release ID). Either way a new release is written, which Hamilton serves
    from its next poll."""
    if (key is None) == (release is None):
        raise typer.BadParameter("give either KEY or --release ID (exactly one)")
    if release is not None and to is not None:
        raise typer.BadParameter("--to applies to KEY; a release rollback restores every model")
    library = open_library(ctx)
    who = _actor(actor)
    if release is not None:
        restored = library.rollback_release(release, actor=who, reason=reason)
        console.print(
            f"release [green]{restored.id}[/green] restores release {release}: "
            f"{len(restored.production)} production, {len(restored.shadow)} shadow"
        )
        return
    try:
        model_key = ModelKey.parse(str(key))
    except ValueError as exc:
        bad_input(f"brain rollback KEY: {exc}")
    model = _rollback_key(library, model_key, to, who, reason)
    written = _release_current_stages(library, who, f"rollback of {model_key.slug}: {reason}")
    console.print(
        f"[yellow]{model.key.slug}[/yellow] rolled back to [green]{model.name}[/green]; "
        f"release [green]{written}[/green]"
    )


def _rollback_key(
    library: BrainLibrary, key: ModelKey, to: int | None, actor: str, reason: str
) -> ModelVersion:
    """``library.rollback`` of a key the library holds; an unknown key, or a key without an
    earlier production version and no ``--to``, is one line naming what exists, exit 2."""
    versions = sorted(m.version for m in library.list_models(coin=key.coin) if m.key == key)
    if not versions:
        keys = sorted({m.key.slug for m in library.list_models()})
        shown = ", ".join(keys[:KEYS_SHOWN]) + (" ..." if len(keys) > KEYS_SHOWN else "")
        bad_input(
            f"brain rollback: no model key {key.slug!r} in the Brain Library; "
            + (f"keys: {shown}" if keys else "it holds no model yet")
            + " (list them: coin-engine brain ls)"
        )
    try:
        return library.rollback(key, to_version=to, actor=actor, reason=reason)
    except ModelNotFoundError:
        if to is not None:
            raise
        bad_input(
            f"brain rollback: {key.slug} has no earlier production version to roll back to; "
            f"give --to VERSION, one of {', '.join(map(str, versions))}"
        )


def _release_current_stages(library: BrainLibrary, actor: str, note: str) -> int | None:
    """A release of today's production and shadow set (what Hamilton follows)."""
    outcome = push_current_stages(library, datetime.now(UTC).date(), note=note, created_by=actor)
    # unchanged: the latest release already serves these stages (it is the answer too)
    serving = outcome.status in ("pushed", "unchanged") and outcome.release is not None
    return outcome.release.id if serving and outcome.release is not None else None


@brain_app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Re-hash every artifact; exit 1 if any is missing or altered."""
    library = open_library(ctx)
    problems = library.verify_artifacts()
    if not problems:
        console.print(f"[green]ok[/green]: {len(library.list_models())} model artifact(s) verified")
        return
    table = Table(title=f"[red]{len(problems)} artifact problem(s)[/red]")
    for column in ("model", "problem", "sha256", "detail"):
        table.add_column(column)
    for p in problems:
        table.add_row(p.model_name, p.problem, p.artifact_sha256[:12], p.detail)
    console.print(table)
    raise typer.Exit(code=1)


@brain_app.command("releases")
def releases(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N releases.")] = 20,
) -> None:
    """The newest releases (what Hamilton follows), newest first."""
    rows = open_library(ctx).list_releases(limit=limit)
    table = Table(title=f"{len(rows)} release(s)")
    for column in ("id", "date", "created (UTC)", "by", "parent", "rollback of", "prod", "shadow",
                   "note"):  # fmt: skip
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id),
            r.release_date.isoformat(),
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            r.created_by,
            "-" if r.parent_id is None else str(r.parent_id),
            "-" if r.rollback_of_id is None else str(r.rollback_of_id),
            str(len(r.production)),
            str(len(r.shadow)),
            r.note,
        )
    console.print(table)
