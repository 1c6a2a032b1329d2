"""The Typer application: parse options, call the engine, hand results to render. No maths here."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from clvtool import __version__
from clvtool.errors import ClvError, ExitCode, InputError, StrictModeError, UsageError
from clvtool.render.env import Env

app = typer.Typer(
    name="clvtool",
    help="Customer lifetime value from the order and marketing-spend files you already have.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

# ---- shared options (every analysis command takes the same inputs and output options) ----------
Paths = Annotated[
    list[str] | None,
    typer.Argument(
        help="Transaction files or globs (CSV, TSV, .csv.gz, Parquet); '-' reads stdin. "
        "Default: transactions.path from the config.",
        show_default=False,
    ),
]
SpendOpt = Annotated[str | None, typer.Option("--spend", help="Marketing spend file.", show_default=False)]
CustomersOpt = Annotated[
    str | None,
    typer.Option("--customers", help="Customers table (customer_id, channel): overrides attribution."),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", help="Config file (default: $CLVTOOL_CONFIG, then ./clvtool.yaml)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one config key, e.g. --set analysis.margin_rate=0.4 (repeatable)."),
]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Reference date YYYY-MM-DD or 'today' (default: last transaction date)."),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help="auto|table|csv|tsv|json|jsonl|markdown|parquet (auto: table on a terminal)."
    ),
]
OutputOpt = Annotated[
    str | None, typer.Option("--output", "-o", help="Write to PATH (format from its extension), atomically.")
]
TopOpt = Annotated[int | None, typer.Option("--top", min=0, help="Only the first N rows.")]
SortOpt = Annotated[str | None, typer.Option("--sort", help="Sort column, optionally COLUMN:asc or :desc.")]
ColumnsOpt = Annotated[str | None, typer.Option("--columns", help="Comma-separated columns to show.")]
RejectsOpt = Annotated[
    str | None,
    typer.Option("--rejects", help="Write excluded rows with their reason and line to PATH (CSV)."),
]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit 1 when any row is excluded.")]
NoEscapeOpt = Annotated[
    bool, typer.Option("--no-escape", help="Do not escape cells starting with = + - @ in CSV/TSV.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Also show column mapping and details.")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="Plain text (also: NO_COLOR=1).")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Purchase model: bgnbd (default), pareto, mbgnbd or none.")
]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"clvtool {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Customer lifetime value from the order and marketing-spend files you already have."""


def _handle_errors(func: F) -> F:
    """Map domain exceptions to one stderr line and an exit code; --debug re-raises."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        env = Env(
            quiet=bool(kwargs.get("quiet")),
            verbose=bool(kwargs.get("verbose")),
            no_color=bool(kwargs.get("no_color")),
            debug=bool(kwargs.get("debug")),
        )
        kwargs["env"] = env
        try:
            return func(*args, **kwargs)
        except ClvError as exc:
            if env.debug:
                raise
            env.error(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            env.stderr.write("\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            _silence_stdout()
            raise typer.Exit(int(ExitCode.OK)) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if env.debug:
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            env.error(
                f"unexpected {type(exc).__name__}: {first} (a bug: run again with --debug and report it)"
            )
            raise typer.Exit(int(ExitCode.ERROR)) from None

    # Typer must not see the injected `env` parameter.
    import inspect

    sig = inspect.signature(func, eval_str=True)
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[p for p in sig.parameters.values() if p.name != "env"]
    )
    return wrapper  # type: ignore[return-value]


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@dataclass
class Inputs:
    """Settings and the loaded, audited transactions of one run."""

    settings: Any
    transactions: Any
    channels: Any
    spend: Any
    audits: list[Any]

    def release_rows(self) -> None:
        """Free the transaction rows once the per-customer table exists: writing needs only that."""
        self.transactions.frame = self.transactions.frame.clear()

    def customer_metrics(self, *, predict: bool = True) -> Any:
        """The per-customer metrics (spend allocation, predictions) of these inputs."""
        from clvtool.metrics.customer_table import customer_metrics

        tx = self.transactions
        return customer_metrics(
            tx.frame,
            self.settings,
            as_of=tx.as_of,
            channels=self.channels,
            spend=self.spend.frame if self.spend is not None else None,
            data_start=tx.audit.first_date,
            predict=predict,
        )


# What the model commands import besides the reader: SciPy takes about 0.3 s. Only third-party
# modules are imported ahead: they import nothing of clvtool, so the two threads can never wait on
# each other's half-imported modules.
MODEL_MODULES = ("scipy.special", "scipy.optimize", "scipy.linalg")


def _prefetch(modules: tuple[str, ...]) -> None:
    """Import `modules` in a background thread while the main one reads the files.

    Polars releases the GIL while it reads, so the imports cost no wall time. A module that fails
    to import is left alone here: the main thread's own import reports the error.
    """
    if not modules:
        return
    import contextlib
    import importlib
    import threading

    def run() -> None:
        for name in modules:
            with contextlib.suppress(Exception):  # reported by the main thread's own import
                importlib.import_module(name)

    threading.Thread(target=run, name="clvtool-imports", daemon=True).start()


def _inputs(env: Env, options: dict[str, Any], **extra: Any) -> Inputs:
    """_load_inputs with the shared options taken from a command's parameters (its locals())."""
    keys = {"config": "config", "set_": "set_items", "as_of": "as_of", "spend": "spend",
            "customers": "customers", "rejects": "rejects", "strict": "strict"}  # fmt: skip
    kwargs = {name: options[key] for key, name in keys.items() if key in options}
    return _load_inputs(env, options["paths"], **(kwargs | extra))


def _load_inputs(
    env: Env,
    paths: list[str] | None,
    *,
    config: str | None,
    set_items: list[str] | None,
    as_of: str | None,
    spend: str | None = None,
    customers: str | None = None,
    rejects: str | None = None,
    strict: bool = False,
    require_rows: bool = True,
    flags: dict[str, dict[str, Any]] | None = None,
    prefetch: tuple[str, ...] = (),
) -> Inputs:
    from clvtool.config import load_settings
    from clvtool.io.transactions import load_transactions, parse_as_of

    flags = {k: dict(v) for k, v in (flags or {}).items()}
    if spend:
        flags.setdefault("spend", {})["path"] = spend
    if customers:
        flags.setdefault("customers", {})["path"] = customers
    settings = load_settings(config, flags, set_items)
    if settings.config_path:
        env.info(f"config: {settings.config_path}")
    if not paths:
        configured = settings.transactions.path
        if not configured:
            raise UsageError(
                "no transaction files: give them as arguments, or set transactions.path in the config."
            )
        paths = [configured] if isinstance(configured, str) else list(configured)
    _prefetch(prefetch)
    tx = load_transactions(paths, settings.transactions, as_of=parse_as_of(as_of), keep_rejects=bool(rejects))
    audits = [tx.audit]
    for fa in tx.audit.files:
        mapping = ", ".join(f"{k}<-{v}" for k, v in fa.mapping.items())
        env.info(f"{fa.name}: {fa.rows:,} rows; columns {mapping}")
    channels = None
    if settings.customers.path:
        from clvtool.io.customer_table import load_customer_table

        channels, cust_audit = load_customer_table(str(settings.customers.path), settings.customers)
        audits.append(cust_audit)
    spend_data = None
    if settings.spend.path:
        from clvtool.io.spend import load_spend

        spend_data = load_spend(str(settings.spend.path), settings.spend)
        audits.append(spend_data.audit)
        _check_spend_currency(spend_data, tx)
    _report_audits(env, audits, rejects=rejects, strict=strict)
    if require_rows and tx.audit.rows_read and not tx.audit.rows_used:
        raise ClvError(
            f"no usable transaction rows: all {tx.audit.rows_read:,} were excluded; "
            "run `clvtool check` on the files to see why."
        )
    return Inputs(settings, tx, channels, spend_data, audits)


def _check_spend_currency(spend: Any, tx: Any) -> None:
    """Spend and transactions must be in the same currency (no FX table yet)."""
    if spend.currency is None:
        return
    tx_currencies = tx.frame["currency"].drop_nulls().unique().to_list()
    if tx_currencies and tx_currencies[0] != spend.currency:
        raise InputError(
            f"spend is in {spend.currency} but the transactions are in {tx_currencies[0]}; convert one of "
            "them first (clvtool has no FX table yet).",
            source=spend.audit.files[0].name,
        )


def _report_audits(env: Env, audits: list[Any], *, rejects: str | None, strict: bool) -> None:
    import polars as pl

    from clvtool.io.audit import rejects_for_output
    from clvtool.render.writers import atomic_write, to_csv

    if rejects:
        frames = [rejects_for_output(a.rejects) for a in audits if a.rejects is not None]
        frames = [f for f in frames if f.height] or frames[:1]
        combined = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        atomic_write(rejects, to_csv(combined, 2, escape=True).encode("utf-8"))
        env.info(f"rejects: {combined.height:,} rows written to {rejects}")
    for audit in audits:
        if audit.rows_excluded:
            env.message(audit.summary_line(), style="yellow")
    if strict and any(a.rows_excluded for a in audits):
        total = sum(a.rows_excluded for a in audits)
        raise StrictModeError(f"--strict: {total:,} rows were excluded; fix them or drop --strict.")


def _report_model(env: Env, metrics: Any) -> None:
    """Model warnings on stderr (fit failures); small-sample notes only with --verbose."""
    predictions = metrics.predictions
    for note in metrics.warnings:
        env.info(note)
    for warning in predictions.warnings if predictions is not None else []:
        env.warn(warning)
    if predictions is not None and predictions.usable:
        fit = predictions.model
        params = ", ".join(f"{k} {v:.4g}" for k, v in fit.params.items())
        env.info(
            f"{fit.name}: {params}; log-likelihood {fit.log_likelihood:.2f} ({fit.customers:,} customers)"
        )


def _emit_frame(
    env: Env,
    df: Any,
    *,
    fmt: str | None,
    output: str | None,
    precision: int,
    escape: bool = True,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Write a frame (or an OrderedFrame) in the chosen format to stdout or -o PATH."""
    from clvtool.frames import OrderedFrame
    from clvtool.render import writers

    chosen = writers.choose_format(fmt, output, env.stdout_is_terminal)
    if chosen in ("csv", "tsv"):
        separator = "\t" if chosen == "tsv" else ","
        if output and output != "-":
            writers.write_csv_file(df, output, precision, separator=separator, escape=escape)
        else:
            writers.write_csv_stream(df, env.stdout, precision, separator=separator, escape=escape)
        return
    if isinstance(df, OrderedFrame):
        df = df.collect()
    if chosen == "table":
        from clvtool.render.tables import rich_table

        if output and output != "-":
            import io

            buf = io.StringIO()
            console = env.console(buf, width=10_000)
            console.print(rich_table(df, money_decimals=precision, title=title, caption=caption))
            writers.emit(
                "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n", output, env.stdout
            )
        else:
            console = env.console(env.stdout)
            console.print(
                rich_table(df, money_decimals=precision, title=title, caption=caption, width=console.width)
            )
        return
    if chosen == "parquet":
        writers.emit(writers.parquet_bytes(df, precision), output, env.stdout)
        return
    writers.emit(writers.render_frame(df, chosen, precision, escape=escape), output, env.stdout)


# ---- commands ------------------------------------------------------------------------------------


@app.command()
@_handle_errors
def customers(
    paths: Paths = None,
    spend: SpendOpt = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    format: FormatOpt = None,
    output: OutputOpt = None,
    top: TopOpt = None,
    sort: SortOpt = None,
    columns: ColumnsOpt = None,
    model: ModelOpt = None,
    no_predict: Annotated[
        bool, typer.Option("--no-predict", help="Skip the model fit; prediction columns empty.")
    ] = False,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    no_escape: NoEscapeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """The per-customer table, ranked: value, orders, recency, CAC, predicted CLV, segment, Pareto class."""
    from clvtool.metrics.customer_table import (
        METRIC_COLUMNS,
        RANK_COLUMNS,
        TERMINAL_COLUMNS,
        ranked_table,
        select_columns,
    )
    from clvtool.render.writers import choose_format

    # Usage mistakes fail before any file is read.
    chosen = choose_format(format, output, env.stdout_is_terminal)
    wanted = select_columns(columns, [*METRIC_COLUMNS, *RANK_COLUMNS])
    inputs = _inputs(
        env,
        locals(),
        flags={"model": {"purchase_model": model}} if model else None,
        prefetch=() if no_predict else MODEL_MODULES,
    )
    tx = inputs.transactions
    metrics = inputs.customer_metrics(predict=not no_predict)
    _report_model(env, metrics)
    frame, default_sort = metrics.frame, metrics.default_sort
    thresholds = metrics.retention.thresholds.describe()
    # The rows and everything built from them are freed before ranking: the slices of the ranked
    # table then reuse their memory instead of new pages.
    del metrics
    inputs.release_rows()
    # Ranked lazily: the rows are gathered into rank order a slice at a time as they are written.
    table = ranked_table(frame, sort=sort, default=default_sort)
    del frame
    n_customers = table.height
    hidden = ""
    if chosen == "table" and not columns and not output:
        hidden = f" · {len(table.columns) - len(TERMINAL_COLUMNS)} more columns with --columns or -f csv"
        table = table.select(TERMINAL_COLUMNS)
    else:
        table = table.select(wanted)
    if top is not None:
        table = table.head(top)
    margin = inputs.settings.analysis.margin_rate
    basis = "revenue-based" if margin == 1.0 and "cost" not in tx.present else f"margin {margin:g}"
    shown = f"top {table.height:,} of {n_customers:,}" if table.height < n_customers else f"{n_customers:,}"
    caption = (
        f"{shown} customers · as of {tx.as_of} · value {basis} · "
        f"frequency/recency/T in {inputs.settings.model.time_unit}s{hidden}\n{thresholds}"
    )
    if chosen != "table" and n_customers:
        env.message(thresholds)
    _emit_frame(
        env,
        table,
        fmt=chosen,
        output=output,
        precision=inputs.settings.output.float_precision,
        escape=not no_escape,
        caption=caption,
    )


@app.command()
@_handle_errors
def channels(
    paths: Paths = None,
    spend: SpendOpt = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    cac_mode: Annotated[
        str | None, typer.Option("--cac-mode", help="channel (default) or blended: how spend is allocated.")
    ] = None,
    period: Annotated[str | None, typer.Option("--period", help="month (default), week or quarter.")] = None,
    format: FormatOpt = None,
    output: OutputOpt = None,
    top: TopOpt = None,
    sort: SortOpt = None,
    columns: ColumnsOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    no_escape: NoEscapeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """Acquisition by channel and period: spend, new customers, CAC, LTV:CAC, payback, ROAS, unallocated spend."""

    from clvtool.metrics.acquisition import channel_summary, no_spend
    from clvtool.metrics.customer_table import select_columns
    from clvtool.render import writers

    analysis_flags = {k: v for k, v in (("cac_mode", cac_mode), ("period", period)) if v is not None}
    inputs = _inputs(env, locals(), flags={"analysis": analysis_flags} if analysis_flags else None)
    metrics = inputs.customer_metrics(predict=False)  # the channel table uses historic value only
    acq = metrics.acquisition
    if acq is None:
        acq = no_spend()
        if inputs.spend is None:
            env.warn("no spend file (--spend PATH or spend.path): CAC, LTV:CAC and ROAS are empty")
        else:
            env.warn("no customers: there is nothing to allocate the spend to")
    table = channel_summary(metrics.frame, acq)
    if sort:
        from clvtool.metrics.customer_table import parse_sort

        col, desc = parse_sort(sort, table.columns, table.schema)
        table = table.sort([col, "channel"], descending=[desc, False], nulls_last=True)
    table = table.select(select_columns(columns, table.columns))
    if top is not None:
        table = table.head(top)
    precision = inputs.settings.output.float_precision
    chosen = writers.choose_format(format, output, env.stdout_is_terminal)
    if metrics.acquisition is not None:
        for note in acq.notes:
            env.warn(note)
    if chosen in ("json",):
        obj = {
            "channels": writers.records(table, precision),
            "by_period": writers.records(acq.cells, precision),
            "unallocated": writers.records(acq.unallocated, precision),
            "totals": {
                k: (round(v, precision) if isinstance(v, float) else v) for k, v in acq.totals.items()
            },
        }
        writers.write_sections(obj, output, env.stdout)
        return
    if chosen == "table":
        import io

        from clvtool.render.channels_view import print_channels

        mode = inputs.settings.analysis.cac_mode
        caption = (
            f"as of {inputs.transactions.as_of} · CAC mode {mode} · period {inputs.settings.analysis.period}"
            " · LTV = mean historic value"
        )
        buf = io.StringIO() if output and output != "-" else None
        console = env.console(buf if buf is not None else env.stdout, width=160 if buf is not None else None)
        print_channels(
            console, table, acq.unallocated, acq.totals, acq.notes, money_decimals=precision, caption=caption
        )
        if buf is not None:
            writers.emit(buf.getvalue(), output, env.stdout)
        return
    t = acq.totals
    if t["spend"] is not None:
        env.message(
            f"spend {t['spend']:.2f} = allocated {t['allocated']:.2f} + unallocated {t['unallocated']:.2f}"
        )
    _emit_frame(env, table, fmt=chosen, output=output, precision=precision, escape=not no_escape)


PeriodOpt = Annotated[str | None, typer.Option("--period", help="month (default), week or quarter.")]


@app.command()
@_handle_errors
def cohorts(
    paths: Paths = None,
    spend: SpendOpt = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    period: PeriodOpt = None,
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="retention | active | revenue | value | cumulative-value | cumulative-value-minus-cac (needs spend).",
        ),
    ] = "retention",
    all_: Annotated[
        bool, typer.Option("--all", help="Every cohort in the terminal, not only the recent ones.")
    ] = False,
    format: FormatOpt = None,
    output: OutputOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    no_escape: NoEscapeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """Cohort matrix: period of first order x periods since, for retention, activity, revenue or value."""
    import polars as pl

    from clvtool.metrics.cohorts import CUMULATIVE_VALUE_MINUS_CAC, cohort_matrix
    from clvtool.metrics.columns import Precision
    from clvtool.render import writers

    inputs = _inputs(env, locals(), flags={"analysis": {"period": period}} if period else None)
    if metric == CUMULATIVE_VALUE_MINUS_CAC and inputs.spend is None:
        raise UsageError(
            "--metric cumulative-value-minus-cac needs marketing spend: add --spend PATH (or spend.path in the config)."
        )
    metrics = inputs.customer_metrics(predict=False)  # cohorts use history only
    settings = inputs.settings
    result = cohort_matrix(
        metrics.orders.lazy(),
        metrics.frame,
        period=settings.analysis.period,
        metric=metric,
        as_of=inputs.transactions.as_of or dt.date(1970, 1, 1),
    )
    money = settings.output.float_precision
    places = {"fraction": 6, "count": 0}.get(result.unit, money)
    cells = [c for c in result.wide.columns if c not in ("cohort", "customers")]
    precision = Precision(money, {**dict.fromkeys(cells, places), "value": places})
    chosen = writers.choose_format(format, output, env.stdout_is_terminal)
    if chosen == "table":
        from clvtool.render.charts import cohort_heatmap

        _print_renderable(
            env,
            lambda width: cohort_heatmap(
                result,
                width=width,
                all_cohorts=all_,
                money_decimals=money,
                more_hint="--all shows every cohort",
            ),
            output,
        )
        return
    if chosen in ("json", "jsonl"):
        _emit_frame(env, result.long, fmt=chosen, output=output, precision=precision)
        return
    wide = (
        pl.concat([result.wide, result.average_row()], how="vertical_relaxed")
        if result.wide.height
        else result.wide
    )
    _emit_frame(env, wide, fmt=chosen, output=output, precision=precision, escape=not no_escape)


@app.command()
@_handle_errors
def pareto(
    paths: Paths = None,
    spend: SpendOpt = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    by: Annotated[
        str, typer.Option("--by", help="revenue | historic_clv | total_clv | net_value (needs spend).")
    ] = "revenue",
    format: FormatOpt = None,
    output: OutputOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    no_escape: NoEscapeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """Concentration: top-share figures, customers making 80 %, Gini, deciles, Lorenz curve."""
    from clvtool.metrics.concentration import concentration
    from clvtool.render import writers

    # Only --by total_clv needs the models: the other measures are history.
    predict = by == "total_clv"
    inputs = _inputs(env, locals(), prefetch=MODEL_MODULES if predict else ())
    metrics = inputs.customer_metrics(predict=predict)
    frame = metrics.frame
    if by == "net_value" and metrics.acquisition is None:
        raise UsageError(
            "--by net_value needs marketing spend: add --spend PATH (or spend.path in the config)."
        )
    if by == "total_clv" and (metrics.predictions is None or not metrics.predictions.usable):
        raise UsageError(
            "--by total_clv needs predictions from a fitted purchase model, and none could be fitted here "
            "(model.purchase_model is none, or the fit failed: see `clvtool predict`)."
        )
    if metrics.acquisition is None:
        frame = frame.drop("cac")
    spend_total = metrics.acquisition.totals["spend"] if metrics.acquisition is not None else None
    result = concentration(frame, by=by, spend_total=spend_total)
    precision = inputs.settings.output.float_precision
    chosen = writers.choose_format(format, output, env.stdout_is_terminal)
    if result.non_positive:
        env.message(f"{result.non_positive:,} customers with {by} <= 0 count as 0 in the shares")
    if not result.defined and chosen != "table":
        env.warn(result.headline())
    if chosen == "table":
        from clvtool.render.charts import pareto_view

        _print_renderable(env, lambda width: pareto_view(result, width=width), output)
        return
    if chosen == "json":
        writers.write_sections(result.to_json(money_decimals=precision), output, env.stdout)
        return
    if result.defined:
        env.message(result.headline())
    _emit_frame(env, result.deciles, fmt=chosen, output=output, precision=precision, escape=not no_escape)


@app.command()
@_handle_errors
def segments(
    paths: Paths = None,
    spend: SpendOpt = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    format: FormatOpt = None,
    output: OutputOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    no_escape: NoEscapeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """RFM segments: size, revenue, value, recency and the action each suggests."""
    from clvtool.metrics.segments import segment_summary
    from clvtool.render import writers

    inputs = _inputs(env, locals(), prefetch=MODEL_MODULES)
    metrics = inputs.customer_metrics()
    for warning in metrics.warnings:
        env.warn(warning)
    summary = segment_summary(metrics.frame, metrics.segment_map)
    caption = (
        f"{metrics.frame.height:,} customers · R = days since last order, F = orders, M = revenue (quintiles)"
    )
    precision = inputs.settings.output.float_precision
    chosen = writers.choose_format(format, output, env.stdout_is_terminal)
    if chosen == "table":
        from clvtool.render.tables import rich_table, segment_actions

        def view(width: int) -> Any:
            table = rich_table(
                summary.drop("action"),
                money_decimals=precision,
                title="RFM segments",
                caption=caption,
                width=width,
            )
            return segment_actions(table, summary)

        _print_renderable(env, view, output)
        return
    _emit_frame(env, summary, fmt=chosen, output=output, precision=precision, escape=not no_escape)


def _print_renderable(env: Env, build: Callable[[int], Any], output: str | None) -> None:
    """Print a Rich renderable sized to the terminal, or write it to -o PATH (120 columns)."""
    from clvtool.render import writers

    if output and output != "-":
        import io

        buf = io.StringIO()
        width = 120
        console = env.console(buf, width=width)
        console.print(build(width))
        writers.emit(
            "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n", output, env.stdout
        )
        return
    console = env.console(env.stdout)
    console.print(build(console.width))


@app.command()
@_handle_errors
def predict(
    paths: Paths = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    model: ModelOpt = None,
    calibration_end: Annotated[
        str | None, typer.Option("--calibration-end", help="Fit on data up to this date; predict the rest.")
    ] = None,
    holdout: Annotated[
        int | None,
        typer.Option("--holdout", min=1, help="Hold out the last DAYS days (instead of --calibration-end)."),
    ] = None,
    horizon: Annotated[
        int | None, typer.Option("--horizon", min=0, help="Prediction horizon in months.")
    ] = None,
    discount_rate: Annotated[
        float | None, typer.Option("--discount-rate", help="Annual discount rate, e.g. 0.10.")
    ] = None,
    format: FormatOpt = None,
    output: OutputOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """Fit the purchase and spend models: parameters, standard errors, log-likelihood, holdout validation."""
    from clvtool.io.transactions import parse_as_of
    from clvtool.metrics.columns import Precision
    from clvtool.metrics.holdout import predict_report
    from clvtool.render import writers

    chosen = writers.choose_format(format, output, env.stdout_is_terminal)
    if calibration_end and holdout:
        raise UsageError("give --calibration-end or --holdout, not both.")
    model_flags: dict[str, Any] = {}
    if model:
        model_flags["purchase_model"] = model
    if horizon is not None:
        model_flags["horizon_months"] = horizon
    if discount_rate is not None:
        model_flags["discount_rate"] = discount_rate
    inputs = _inputs(
        env, locals(), flags={"model": model_flags} if model_flags else None, prefetch=MODEL_MODULES
    )
    settings, tx = inputs.settings, inputs.transactions
    if settings.model.purchase_model == "none":
        raise UsageError("model.purchase_model is none: choose --model bgnbd, pareto or mbgnbd.")
    if tx.as_of is None or tx.audit.first_date is None:
        raise ClvError("no usable transactions: nothing to fit.")
    end = tx.as_of
    if holdout:
        end = tx.as_of - dt.timedelta(days=holdout)
    elif calibration_end:
        end = parse_as_of(calibration_end)
    if end < tx.audit.first_date:
        raise UsageError(
            f"the calibration end {end} is before the first transaction ({tx.audit.first_date}); choose a later date."
        )
    if end > tx.as_of:
        raise UsageError(
            f"the calibration end {end} is after the last date in use ({tx.as_of}): there is no holdout; "
            "choose an earlier date or drop --calibration-end."
        )
    report = predict_report(
        tx.frame,
        data_start=tx.audit.first_date,
        as_of=tx.as_of,
        calibration_end=end,
        model=settings.model.purchase_model,
        time_unit=settings.model.time_unit,
        unit_days=settings.model.unit_days,
        horizon_months=settings.model.horizon_months,
        discount_rate=settings.model.discount_rate,
        margin_rate=settings.analysis.margin_rate,
    )
    for warning in report.warnings:
        env.warn(warning)
    if chosen == "json":
        writers.write_sections(_finite_json(report.to_json()), output, env.stdout)
        return
    if chosen == "table":
        from clvtool.render.predict_view import predict_view

        _print_renderable(env, lambda width: predict_view(report), output)
        return
    from clvtool.render.predict_view import parameter_table

    _emit_frame(env, parameter_table(report), fmt=chosen, output=output, precision=Precision(6))


def _finite_json(obj: Any) -> Any:
    """Replace NaN and infinities by null anywhere in a nested JSON object."""
    import math

    if isinstance(obj, dict):
        return {k: _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_json(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


@app.command()
@_handle_errors
def check(
    paths: Paths = None,
    spend: SpendOpt = None,
    customers: CustomersOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    as_of: AsOfOpt = None,
    format: FormatOpt = None,
    output: OutputOpt = None,
    rejects: RejectsOpt = None,
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """Read and validate the inputs and config; print the data-quality audit. Exit 1 on fatal problems."""
    from clvtool.render import writers
    from clvtool.render.audit_view import audit_report, print_audit

    quiet_env = Env(quiet=True, verbose=False, no_color=env.no_color, stdout=env.stdout, stderr=env.stderr)
    inputs = _inputs(quiet_env, locals(), strict=False, require_rows=False)
    report = audit_report(inputs.audits, config_path=inputs.settings.config_path)
    chosen = writers.choose_format(format, output, env.stdout_is_terminal)
    if chosen == "table":
        print_audit(env, report, output=output)
    elif chosen in ("json", "jsonl"):
        writers.write_sections(report, output, env.stdout)
    else:
        import polars as pl

        rows = [
            {"input": a["input"], "bucket": b, "rows": n}
            for a in report["inputs"]
            for b, n in a["buckets"].items()
        ]
        df = pl.DataFrame(rows, schema={"input": pl.String, "bucket": pl.String, "rows": pl.Int64})
        _emit_frame(env, df, fmt=chosen, output=output, precision=2)
    fatal = [a for a in inputs.audits if a.rows_read and not a.rows_used]
    if fatal:
        raise ClvError(f"no usable {fatal[0].input} rows: every row was excluded; see the buckets above.")
    if strict and any(a.rows_excluded for a in inputs.audits):
        raise StrictModeError("--strict: rows were excluded; see the buckets above.")


@app.command()
@_handle_errors
def sample(
    out_dir: Annotated[str, typer.Argument(help="Folder to write the data set into (created if needed).")],
    n_customers: Annotated[
        int, typer.Option("--n-customers", "-n", min=1, help="Customers to simulate.")
    ] = 2000,
    start: Annotated[str, typer.Option(help="First day of the window (YYYY-MM-DD).")] = "2024-01-01",
    end: Annotated[str, typer.Option(help="Last day of the window (YYYY-MM-DD).")] = "2025-12-31",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives identical files.")] = 42,
    r: Annotated[float, typer.Option(help="BG/NBD r (shape of purchase rates).")] = 0.243,
    alpha: Annotated[float, typer.Option(help="BG/NBD alpha (rate, per week).")] = 4.414,
    a: Annotated[float, typer.Option(help="BG/NBD a (dropout Beta).")] = 0.793,
    b: Annotated[float, typer.Option(help="BG/NBD b (dropout Beta).")] = 2.426,
    p: Annotated[float, typer.Option(help="Gamma-Gamma p (spend shape).")] = 6.25,
    q: Annotated[float, typer.Option(help="Gamma-Gamma q.")] = 3.74,
    gamma: Annotated[float, typer.Option(help="Gamma-Gamma gamma.")] = 15.44,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_color: NoColorOpt = False,
    debug: DebugOpt = False,
    *,
    env: Env,
) -> None:
    """Simulate a customer base (BG/NBD purchases, Gamma-Gamma spend, channels, monthly spend)."""
    import datetime as dt
    from pathlib import Path

    from clvtool.models.simulate import SampleParams, simulate_sample, write_sample

    try:
        params = SampleParams(
            customers=n_customers,
            start=dt.date.fromisoformat(start),
            end=dt.date.fromisoformat(end),
            r=r,
            alpha=alpha,
            a=a,
            b=b,
            p=p,
            q=q,
            gamma=gamma,
            seed=seed,
        )
    except ValueError as exc:
        raise UsageError(f"sample: {exc}") from None
    data = simulate_sample(params)
    written = write_sample(data, Path(out_dir))
    env.message(
        f"wrote {data.transactions.height:,} transactions of {n_customers:,} customers, "
        f"{data.spend.height:,} spend rows: " + ", ".join(str(w) for w in written)
    )
