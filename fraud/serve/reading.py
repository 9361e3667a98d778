"""Reading files to score: the column mapping of `fraud score` and the row checks that split each raw chunk
into canonical rows and rejects (the same checks and wording as `fraud convert`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from fraud.data.frame import CANONICAL
from fraud.data.mapping import ColumnMapping
from fraud.data.row_checks import (  # `fraud convert`'s checks and rejects layout
    SeenIds,
    check_rows,
)


class ScoreError(ValueError):
    """A file that cannot be scored as asked; the message names the row or column and the fix."""


def column_mapping(mapping: dict[str, str] | str | Path | None = None, **flags: str | None) -> dict[str, str]:
    """Canonical name -> input column: identity, then a YAML file or dict, then `--col-*` flags on top."""
    out = {c: c for c in CANONICAL}
    if isinstance(mapping, (str, Path)):

        path = Path(mapping)
        if not path.is_file():
            raise ScoreError(f"mapping file {path} does not exist")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ScoreError(f"{path} must be a YAML mapping of canonical names to input columns, e.g. "
                             "'amount: amt'")
        mapping = loaded.get("columns", loaded)
    for key, col in {**(mapping or {}), **{k: v for k, v in flags.items() if v}}.items():
        if key not in CANONICAL:
            raise ScoreError(f"unknown canonical column {key!r} in the mapping; expected one of {list(CANONICAL)}")
        out[key] = str(col)
    return out


def validate_chunk(raw: pd.DataFrame, mapping: dict[str, str], seen: SeenIds,
                   keep: list[str] | None = None, max_amount: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a raw chunk into (canonical rows, rejects) without losing a row.

    The row checks and their wording are `fraud convert`'s (`fraud.data.row_checks.check_rows`): ids, entities,
    timestamps, amounts, duplicate ids (against `seen`, the ids kept from earlier chunks; the first
    occurrence wins). `raw.index` holds 0-based data row positions (as `shared.tabular.iter_chunks` gives);
    the canonical frame keeps it, plus `keep` input columns under `_keep_<name>`. Rejects hold `row`
    (1-based), `reason` and the raw values as text. Amounts above `max_amount` are rejected too (their
    integer cents would overflow the history's sums).
    """
    missing = [f"{canon} (column {col!r})" for canon, col in mapping.items() if col not in raw.columns]
    if missing:
        raise ScoreError(f"input lacks {', '.join(missing)}; it has columns {list(map(str, raw.columns))}. "
                         "Map them with --col-<name> COLUMN, --mapping FILE.yaml or --preset NAME")
    missing_keep = [c for c in keep or [] if c not in raw.columns]
    if missing_keep:
        raise ScoreError(f"--keep column(s) {missing_keep} are not in the input (it has {list(raw.columns)})")
    m = ColumnMapping(transaction_id=mapping["transaction_id"], timestamp=mapping["timestamp"],
                      source=[mapping["source"]], target=[mapping["target"]], amount=mapping["amount"])
    canon, rej = check_rows(raw, m, seen, list(raw.columns))
    if max_amount is not None and len(canon):
        big = (canon["amount"] > max_amount).to_numpy()
        if big.any():
            extra = raw.loc[canon.index[big]].astype("string")
            extra.columns = [str(c) for c in extra.columns]
            extra.insert(0, "reason", pd.array([f"amount is above the maximum {max_amount:g} (value {v!r})"
                                                for v in canon["amount"][big].tolist()], dtype="string"))
            extra.insert(0, "row", (canon.index[big].to_numpy() + 1).astype("int64"))
            rej = pd.concat([rej, extra.reset_index(drop=True)], ignore_index=True).sort_values("row", ignore_index=True)
            canon = canon[~big]
    canon = canon[list(CANONICAL)]
    for c in keep or []:
        canon[f"_keep_{c}"] = raw.loc[canon.index, c].to_numpy()
    return canon, rej


