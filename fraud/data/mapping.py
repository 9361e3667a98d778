"""Where each canonical column comes from in a user's file: `ColumnMapping`, the presets for public data
sets, and `resolve_mapping` (preset + dict / YAML file / flags)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import pandas as pd

from fraud.data.frame import SchemaError
from shared.config import read_yaml

TIME_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1, "m": 60 * 10**9, "h": 3600 * 10**9,
              "d": 86400 * 10**9}



@dataclass
class ColumnMapping:
    """Where each canonical field comes from in an input file (column names as the file spells them)."""

    transaction_id: str | None = "transaction_id"  # None: the 1-based data row number becomes the id
    timestamp: str = "timestamp"
    source: list[str] = field(default_factory=lambda: ["source"])  # several columns are joined with ':'
    target: list[str] = field(default_factory=lambda: ["target"])
    amount: str = "amount"
    label: str | None = None
    typology: str | None = None
    # When each label became known (chargeback / case closed); empty cells: timestamp + labels.delay.
    labelled_at: str | None = None
    extra: list[str] = field(default_factory=list)  # carried through; "*" = every column not mapped above
    optional: list[str] = field(default_factory=list)  # label/typology/extra columns taken only when present
    timestamp_format: str | None = None  # strftime format, e.g. '%Y/%m/%d %H:%M'; None: ISO-8601 or numbers
    timestamp_unit: str = "s"  # unit of numeric timestamps: s, ms, us, ns, m, h, d
    origin: str = "1970-01-01"  # time zero of numeric timestamps (UTC)
    delimiter: str | None = None  # CSV delimiter; None: sniffed

    def __post_init__(self):
        for role in ("source", "target"):
            v = getattr(self, role)
            setattr(self, role, [v] if isinstance(v, str) else list(v))
            if not getattr(self, role):
                raise SchemaError(f"mapping: {role} needs at least one column")
        if self.timestamp_unit not in TIME_UNITS:
            raise SchemaError(f"mapping: timestamp_unit {self.timestamp_unit!r} is not one of {', '.join(TIME_UNITS)}")
        try:
            pd.Timestamp(self.origin)
        except ValueError as exc:
            raise SchemaError(f"mapping: origin {self.origin!r} is not a date ({exc})") from None

    def required(self) -> dict[str, list[str]]:
        """Canonical role -> the input columns it needs (roles in `optional` excluded)."""
        need = {"timestamp": [self.timestamp], "source": self.source, "target": self.target, "amount": [self.amount]}
        if self.transaction_id:
            need["transaction_id"] = [self.transaction_id]
        for role in ("label", "typology", "labelled_at"):
            if getattr(self, role) and getattr(self, role) not in self.optional:
                need[role] = [getattr(self, role)]
        for c in self.extra:
            if c != "*" and c not in self.optional:
                need[f"extra {c!r}"] = [c]
        return need

    def used(self) -> set[str]:
        cols = {self.timestamp, self.amount, *self.source, *self.target}
        return cols | {c for c in (self.transaction_id, self.label, self.typology, self.labelled_at) if c}


PRESETS: dict[str, ColumnMapping] = {
    # The project's own format (what `fraud make-data` writes); label, typology and extras when present.
    "own": ColumnMapping(label="label", typology="typology", labelled_at="labelled_at", extra=["*"],
                         optional=["label", "typology", "labelled_at"]),
    # PaySim mobile-money simulator: `step` is the hour of a 30-day simulation (no calendar, no ids); step 1
    # becomes 2024-01-01 00:00 UTC, step s that plus s - 1 hours.
    "paysim": ColumnMapping(
        transaction_id=None, timestamp="step", timestamp_unit="h", origin="2023-12-31 23:00", source=["nameOrig"],
        target=["nameDest"], amount="amount", label="isFraud",
        extra=["type", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest", "isFlaggedFraud"],
        optional=["isFraud", "type", "oldbalanceOrg", "newbalanceOrig", "oldbalanceDest", "newbalanceDest",
                  "isFlaggedFraud"]),
    # Sparkov credit-card simulator (Kaggle 'fraudTrain'/'fraudTest' layout; `|` or `,` separated).
    "sparkov": ColumnMapping(
        transaction_id="trans_num", timestamp="unix_time", timestamp_unit="s", source=["cc_num"],
        target=["merchant"], amount="amt", label="is_fraud",
        extra=["category", "city_pop", "lat", "long", "merch_lat", "merch_long"],
        optional=["is_fraud", "category", "city_pop", "lat", "long", "merch_lat", "merch_long"]),
    # IBM AMLworld (HI/LI-Small..Large_Trans.csv): accounts are unique per bank, so entities are bank:account;
    # the header has `Account` twice (sender, then receiver: pandas reads the second as `Account.1`).
    "amlworld": ColumnMapping(
        transaction_id=None, timestamp="Timestamp", timestamp_format="%Y/%m/%d %H:%M",
        source=["From Bank", "Account"], target=["To Bank", "Account.1"], amount="Amount Paid",
        label="Is Laundering",
        extra=["Payment Currency", "Amount Received", "Receiving Currency", "Payment Format"],
        optional=["Is Laundering", "Payment Currency", "Amount Received", "Receiving Currency",
                  "Payment Format"]),
}


def resolve_mapping(preset: str | None = None, mapping: ColumnMapping | dict | str | Path | None = None,
                    ) -> ColumnMapping:
    """The mapping to use: a preset (default `own`), with a dict / YAML file / ColumnMapping on top."""
    if isinstance(mapping, ColumnMapping):
        if preset:
            raise SchemaError("give either a preset or a ColumnMapping, not both")
        return mapping
    values: dict = {}
    where = "mapping"
    if isinstance(mapping, (str, Path)):

        where = str(mapping)
        values = dict(read_yaml(mapping))
    elif mapping:
        values = dict(mapping)
    inner = values.pop("columns", None) or {}
    if not isinstance(inner, dict):
        raise SchemaError(f"{where}: 'columns' must map canonical names to input columns, e.g. 'amount: amt'")
    values.update(inner)
    named = values.pop("preset", None)
    if preset and named and named != preset:
        raise SchemaError(f"{where} names preset {named!r} but --preset {preset} was given; choose one")
    name = named or preset or "own"
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=1)
        raise SchemaError(f"unknown preset {name!r}{'; did you mean ' + repr(close[0]) + '?' if close else ''} "
                          f"Known presets: {', '.join(PRESETS)}")
    if "id" in values:  # the --col-id spelling
        values["transaction_id"] = values.pop("id")
    known = {f.name for f in fields(ColumnMapping)}
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise SchemaError(f"{where}: unknown mapping key {key!r}{'; did you mean ' + repr(close[0]) + '?' if close else ''}"
                              f" Valid keys: {', '.join(sorted(known))}")
    base = PRESETS[name]
    # A column the user names explicitly must exist, even where the preset would allow it to be absent.
    optional = [c for c in base.optional if c not in {str(v) for v in values.values() if isinstance(v, str)}]
    return replace(base, **values, optional=values.get("optional", optional))


# Column names public data sets and bank exports commonly use for each canonical role (for suggestions only).
_ALIASES = {
    "transaction_id": ["id", "tx_id", "txn_id", "trans_num", "transaction", "payment_id"],
    "timestamp": ["ts", "time", "datetime", "date", "unix_time", "step", "trans_date_trans_time", "created_at"],
    "source": ["src", "from", "sender", "payer", "nameOrig", "cc_num", "customer", "account", "from_account"],
    "target": ["dst", "to", "receiver", "payee", "nameDest", "merchant", "to_account"],
    "amount": ["amt", "value", "amount_paid", "Amount Paid", "sum"],
    "label": ["is_fraud", "isFraud", "fraud", "Is Laundering", "class"],
}


def matching_presets(columns: list[str]) -> list[str]:
    """Presets whose required columns are all in `columns` (a file that fits a preset is best read with it)."""
    have = set(columns)
    return [name for name, m in PRESETS.items() if all(c in have for cols in m.required().values() for c in cols)]


def mapping_hint(roles: list[str], columns: list[str]) -> str:
    """A `--mapping` YAML text for the missing canonical `roles`, each filled with its likeliest column of the
    file (a close spelling or a common alias), else a placeholder to replace."""
    lower = {c.lower(): c for c in columns}
    lines = ["columns:"]
    for role in roles:
        guess = next((lower[a.lower()] for a in _ALIASES.get(role, []) if a.lower() in lower), None)
        if guess is None:
            close = difflib.get_close_matches(role, columns, n=1, cutoff=0.5)
            guess = close[0] if close else None
        lines.append(f"  {role}: {guess if guess is not None else '<column of your file>'}")
    return "\n".join(lines)

