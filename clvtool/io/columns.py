"""Choosing which file column feeds each canonical field: config mapping first, then aliases."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from clvtool.errors import InputError
from clvtool.io.schema import normalise_header


def resolve_mapping(
    header: Sequence[str],
    configured: Mapping[str, str],
    aliases: Mapping[str, Sequence[str]],
    required: Sequence[Sequence[str]],
    *,
    source: str,
    section: str,
) -> dict[str, str]:
    """Map canonical names to file columns.

    `configured` (canonical -> header, from config) wins and must exist in the file; other fields are
    found by alias. `required` lists alternatives, e.g. [("customer_id", "email"), ("date",)]: at
    least one name of each group must be mapped, else an InputError names the missing field.
    """
    unknown = [k for k in configured if k not in aliases]
    if unknown:
        raise InputError(
            f"{section}.columns has unknown field '{unknown[0]}'; valid fields: {', '.join(aliases)}.",
            source=source,
        )
    by_exact = {h: h for h in header}
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(normalise_header(h), h)
    mapping: dict[str, str] = {}
    for field, wanted in configured.items():
        col = by_exact.get(wanted) or by_norm.get(normalise_header(wanted))
        if col is None:
            raise InputError(
                f"{section}.columns.{field} names column '{wanted}', which is not in the header "
                f"({', '.join(header)}); fix the mapping.",
                source=source,
            )
        mapping[field] = col
    taken = set(mapping.values())
    for field, names in aliases.items():
        if field in mapping:
            continue
        for alias in names:
            col = by_norm.get(alias)
            if col is not None and col not in taken:
                mapping[field] = col
                taken.add(col)
                break
    for group in required:
        if not any(f in mapping for f in group):
            field = group[0]
            looked = ", ".join(aliases[field][:6])
            alt = f" (or {' / '.join(group[1:])})" if len(group) > 1 else ""
            raise InputError(
                f"no '{field}' column{alt}: looked for {looked}, …; the header has "
                f"{', '.join(header)}. Map it with {section}.columns.{field}: <column name>.",
                source=source,
            )
    return mapping
