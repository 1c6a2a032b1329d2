"""The `check` report: the audit as a JSON-ready object and as terminal tables."""

from __future__ import annotations

from typing import Any

from clvtool.io.audit import Audit
from clvtool.io.schema import Reason
from clvtool.render.env import Env


def audit_report(audits: list[Audit], *, config_path: str | None) -> dict[str, Any]:
    """Every input's files, column mapping, buckets and date range, as plain data."""
    inputs = []
    for a in audits:
        buckets = {"used": a.rows_used, **a.excluded}
        inputs.append(
            {
                "input": a.input,
                "files": [
                    {
                        "path": f.name,
                        "format": f.kind,
                        "delimiter": f.delimiter,
                        "rows": f.rows,
                        "columns": dict(f.mapping),
                    }
                    for f in a.files
                ],
                "rows_read": a.rows_read,
                "rows_used": a.rows_used,
                "rows_excluded": a.rows_excluded,
                "reconciles": a.reconciles(),
                "buckets": buckets,
                "first_date": a.first_date,
                "last_date": a.last_date,
                "as_of": a.as_of,
                "notes": list(a.notes),
            }
        )
    return {"config": config_path, "inputs": inputs}


def print_audit(env: Env, report: dict[str, Any], *, output: str | None) -> None:
    """Terminal view: per input, the files with their mapping, then the buckets."""
    import io

    from rich.table import Table
    from rich.text import Text

    from clvtool.render.writers import emit

    buf = io.StringIO() if output and output != "-" else None
    console = env.console(buf if buf is not None else env.stdout)
    console.print(Text(f"config: {report['config'] or '(none: built-in defaults)'}"))
    for entry in report["inputs"]:
        for f in entry["files"]:
            delim = {"\t": "tab", None: "-"}.get(f["delimiter"], f["delimiter"])
            console.print(
                Text(
                    f"\n{entry['input']} file {f['path']} ({f['format']}, delimiter {delim}, "
                    f"{f['rows']:,} rows)",
                    style="bold",
                )
            )
            mapping = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
            mapping.add_column("field")
            mapping.add_column("column in file")
            for field, col in f["columns"].items():
                mapping.add_row(Text(field), Text(col))
            console.print(mapping)
        buckets = Table(title=None, box=None, header_style="bold", pad_edge=False)
        buckets.add_column("bucket")
        buckets.add_column("rows", justify="right")
        buckets.add_column("meaning", style="dim")
        for name, n in entry["buckets"].items():
            meaning = "rows that enter the metrics" if name == "used" else Reason.HELP.get(name, "")
            buckets.add_row(Text(name), Text(f"{n:,}"), Text(meaning))
        buckets.add_row(Text("read", style="bold"), Text(f"{entry['rows_read']:,}", style="bold"), Text(""))
        console.print(buckets)
        if entry["first_date"]:
            console.print(
                Text(
                    f"dates {entry['first_date']} … {entry['last_date']}"
                    + (f", as of {entry['as_of']}" if entry["as_of"] else "")
                )
            )
        for note in entry["notes"]:
            console.print(Text(f"note: {note}"))
    if buf is not None:
        emit(buf.getvalue(), output, env.stdout)
