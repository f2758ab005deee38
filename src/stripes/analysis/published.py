"""Published results of P1 ("Of All StrIPEs", arXiv v1) and P2 (F-StrIPE, Dec-2024 PDF) as data.

Cells are stored exactly as printed (docs/papers.md §11), e.g. ``"9.1±0.49†"``; :func:`parse_cell` turns one
into (mean, std, mark). In P1, "∗" / "†" are significance marks (docs/papers.md §10.5); in P2, "*" after a
std means std < 0.05 and "⧹" means the run could not be made (memory). Columns are :data:`COLUMNS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COLUMNS: tuple[tuple[str, int], ...] = tuple((m, b) for b in (16, 64) for m in ("cs", "ssmd", "gs", "ndd"))
CONTEXTS = ("TIME", "REP", "KEY", "BIN")

# P1 Table I: MI between content and context (nats)
P1_TABLE_I: dict[str, float] = {"TIME": 0.0085, "REP": 0.0436, "KEY": 0.0476, "BIN": 1.0075}

# P1 Table II: RoPE baselines. (context, method) -> 8 cells in COLUMNS order
P1_TABLE_II: dict[tuple[str, str], tuple[str, ...]] = {
    ("TIME", "RoPE(A)"): ("2.44±0.06", "14.65±0.0", "7.46±0.05", "94.1±0.04",
                          "5.83±3.27", "13.8±0.0", "18.27±9.1", "91.79±0.84"),
    ("TIME", "RoPE(B)"): ("1.61±0.74", "14.66±0.01", "6.72±0.71", "94.38±0.27",
                          "2.23±0.09", "13.8±0.0", "8.44±0.21", "92.72±0.03"),
    ("TIME", "RoPE(C)"): ("4.5±4.16", "14.65±0.02", "10.42±5.32", "93.82±1.01",
                          "9.1±0.49†", "13.79±0.0∗", "26.78±1.19†", "91.26±0.2†"),
    ("REP", "RoPE(A)"): ("5.42±5.51", "14.61±0.06", "10.89±6.65", "92.75±2.27",
                         "15.42±1.18", "13.67±0.01", "42.4±3.23", "86.77±0.92"),
    ("REP", "RoPE(B)"): ("18.37±1.11∗", "14.36±0.03∗", "25.63±1.76∗", "86.13±0.57∗",
                         "18.17±1.92∗", "13.46±0.02∗", "49.56±3.12∗", "82.9±0.54∗"),
    ("REP", "RoPE(C)"): ("4.59±5.16", "14.59±0.11", "9.76±5.6", "92.84±2.57",
                         "9.46±7.28", "13.62±0.15", "27.27±20.17", "88.35±4.06"),
    ("KEY", "RoPE(A)"): ("11.05±5.62", "14.49±0.09", "16.89±6.59", "89.64±2.56",
                         "14.59±5.24", "13.63±0.08", "39.02±12.34", "86.82±2.35"),
    ("KEY", "RoPE(B)"): ("11.85±4.6", "14.5±0.07", "18.49±5.52", "89.85±1.99",
                         "16.2±2.21", "13.63±0.01", "43.67±3.95", "85.87±0.39"),
    ("KEY", "RoPE(C)"): ("12.03±4.51", "14.49±0.07", "18.57±5.37", "89.87±1.93",
                         "15.84±1.09", "13.62±0.02", "42.04±2.65", "86.68±0.85"),
    ("BIN", "RoPE(A)"): ("1.81±0.34", "14.64±0.01", "6.76±0.35", "94.3±0.14",
                         "10.04±4.21", "13.74±0.02", "30.39±11.72", "89.44±1.69"),
    ("BIN", "RoPE(B)"): ("1.9±0.18", "14.66±0.01", "7.07±0.18", "94.29±0.07",
                         "3.51±2.56", "13.8±0.0", "11.93±7.12", "92.31±0.73"),
    ("BIN", "RoPE(C)"): ("22.14±0.56∗", "13.98±0.01∗", "26.45±0.52∗", "79.25±0.29∗",
                         "26.27±0.44∗", "13.13±0.01∗", "66.81±0.6∗", "75.02±0.34∗"),
}

# P1 Table III: best RoPE per context vs F-StrIPE₁ vs RoPEPool
P1_TABLE_III: dict[tuple[str, str], tuple[str, ...]] = {
    ("TIME", "RoPE(C)"): ("4.5±4.16", "14.65±0.02", "10.42±5.32", "93.82±1.01",
                          "9.1±0.49∗", "13.79±0.0", "26.78±1.19∗", "91.26±0.2"),
    ("TIME", "F-StrIPE₁"): ("6.01±2.67", "14.64±0.02", "11.9±3.24", "93.2±0.76",
                            "6.68±1.12", "13.79±0.0", "20.67±2.59", "91.4±0.21"),
    ("TIME", "RoPEPool"): ("2.49±2.64", "14.66±0.01", "7.79±3.32", "94.28±0.68",
                           "7.23±0.62", "13.79±0.0∗", "22.13±1.65", "91.18±0.2"),
    ("REP", "RoPE(B)"): ("18.37±1.11†", "14.36±0.03†", "25.63±1.76†", "86.13±0.57†",
                         "18.17±1.92∗", "13.46±0.02∗", "49.56±3.12∗", "82.9±0.54∗"),
    ("REP", "F-StrIPE₁"): ("17.71±0.97", "14.37±0.03", "24.82±1.22", "86.81±0.71",
                           "13.85±1.18", "13.59±0.03", "37.66±1.93", "86.47±0.66"),
    ("REP", "RoPEPool"): ("14.23±1.13", "14.47±0.02", "20.87±1.86", "88.81±0.29",
                          "11.67±0.58", "13.7±0.01", "34.11±1.12", "88.04±0.52"),
    ("KEY", "RoPE(C)"): ("12.03±4.51", "14.49±0.07", "18.57±5.37", "89.87±1.93",
                         "15.84±1.09", "13.62±0.02", "42.04±2.65", "86.68±0.85"),
    ("KEY", "F-StrIPE₁"): ("19.73±0.4", "14.1±0.02∗", "24.08±0.48", "81.41±0.27†",
                           "23.6±0.51†", "13.2±0.05†", "60.87±1.28†", "77.47±0.35†"),
    ("KEY", "RoPEPool"): ("21.05±1.22†", "14.18±0.06", "26.05±1.53∗", "82.46±0.96",
                          "23.11±1.43", "13.28±0.09", "59.74±2.46", "78.69±1.37"),
    ("BIN", "RoPE(C)"): ("22.14±0.56", "13.98±0.01", "26.45±0.52", "79.25±0.29",
                         "26.27±0.44", "13.13±0.01", "66.81±0.6", "75.02±0.34"),
    ("BIN", "F-StrIPE₁"): ("24.91±0.35", "13.73±0.03†", "28.19±0.31", "77.15±0.33",
                           "28.3±0.81", "12.95±0.04†", "71.35±0.99", "73.97±0.48"),
    ("BIN", "RoPEPool"): ("25.83±1.02†", "13.74±0.07", "29.11±0.97†", "76.73±1.09†",
                          "28.6±0.8†", "12.99±0.06", "72.56±1.54†", "73.77±1.23"),
}

# P1 §VI-B: the RoPE variant carried from Table II to Table III per context
P1_BEST_ROPE: dict[str, str] = {"TIME": "RoPE(C)", "REP": "RoPE(B)", "KEY": "RoPE(C)", "BIN": "RoPE(C)"}

# P2 Table I (3 seeds; SSMD on P2's x100 scale). method -> 8 cells in COLUMNS order
P2_TABLE_I: dict[str, tuple[str, ...]] = {
    "NoPE": ("2.68±0.2", "29.31±0.0*", "7.82±0.1", "93.94±0.0*", "2.67±0.2", "27.60±0.0*", "7.80±0.2",
             "92.49±0.1"),
    "S S-RPE": ("14.52±0.7", "28.92±0.1", "21.58±0.9", "88.48±0.5", "⧹", "⧹", "⧹", "⧹"),
    "SPE": ("1.07±0.0*", "29.33±0.0*", "6.02±0.0*", "94.65±0.0*", "6.71±0.3", "27.59±0.0*", "12.62±0.3",
            "91.48±0.1"),
    "F-StrIPE": ("11.84±1.2", "29.18±0.0*", "18.62±1.4", "90.93±0.6", "9.13±1.2", "27.53±0.0*", "14.70±1.7",
                 "90.30±0.3"),
    "F-StrIPE:M": ("1.9±0.1", "29.31±0.0*", "7.07±0.1", "94.27±0.0*", "2.22±0.1", "27.60±0.0*", "7.42±0.2",
                   "92.69±0.0*"),
    "F-StrIPE:C": ("16.61±1.5", "28.71±0.1", "23.19±2.7", "86.42±0.4", "13.29±1.1", "27.15±0.1", "16.73±0.9",
                   "85.61±0.4"),
    "F-StrIPE:P": ("2.07±0.1", "29.31±0.0*", "7.23±0.1", "94.20±0.0*", "2.31±0.1", "27.60±0.0*", "7.56±0.1",
                   "92.62±0.0*"),
    "F-StrIPE:SFF": ("2.75±3.0", "29.32±0.0*", "8.15±3.5", "94.18±0.9", "6.49±0.3", "27.58±0.0*", "12.09±0.7",
                     "91.46±0.1"),
    "F-StrIPE:SFF:C": ("4.72±3.9", "29.25±0.1", "10.22±4.6", "93.11±1.5", "10.35±1.0", "27.44±0.1",
                       "12.09±0.7", "89.32±0.6"),
}

# P2 Table I: the structural context each published row uses (contexts as our report labels them)
P2_CONTEXT: dict[str, str] = {
    "NoPE": "TIME", "SPE": "TIME", "S S-RPE": "MELODY+CHORD+PHRASE", "F-StrIPE": "MELODY+CHORD+PHRASE",
    "F-StrIPE:M": "MELODY", "F-StrIPE:C": "CHORD", "F-StrIPE:P": "PHRASE",
    "F-StrIPE:SFF": "MELODY+CHORD+PHRASE", "F-StrIPE:SFF:C": "CHORD",
}

TABLES: dict[str, str] = {
    "p1-table2": "P1 Table II (RoPE baselines)",
    "p1-table3": "P1 Table III (best RoPE vs F-StrIPE₁ vs RoPEPool)",
    "p2-table1": "P2 Table I (melody harmonization, F-StrIPE variants)",
}

_CELL = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*±\s*(\d+(?:\.\d+)?)(\*?)\s*([∗†]?)\s*$")


@dataclass(frozen=True)
class Cell:
    """One published entry: mean, std, P1 significance mark ("∗", "†" or ""), P2's std<0.05 flag."""

    text: str
    mean: float
    std: float
    mark: str = ""
    std_below_005: bool = False


def parse_cell(text: str) -> Cell | None:
    """``"9.1±0.49†"`` -> Cell(9.1, 0.49, "†"); ``"⧹"`` (not run) -> None."""
    if text.strip() == "⧹":
        return None
    m = _CELL.match(text)
    if m is None:
        raise ValueError(f"unparseable published cell {text!r}")
    return Cell(text, float(m.group(1)), float(m.group(2)), m.group(4), bool(m.group(3)))


def published_cells(
    table: str, context: str | None, method: str
) -> dict[tuple[str, int], Cell | None] | None:
    """Published cells of one row keyed by (metric, bars), or None when the paper has no such row.

    ``table`` is a key of :data:`TABLES`; ``context`` is TIME/REP/KEY/BIN for P1 tables (ignored for P2).
    """
    if table == "p2-table1":
        row = P2_TABLE_I.get(method)
    elif table in ("p1-table2", "p1-table3"):
        src = P1_TABLE_II if table == "p1-table2" else P1_TABLE_III
        row = src.get(((context or "").upper(), method))
    else:
        raise KeyError(f"unknown table {table!r}; choose among {', '.join(TABLES)}")
    if row is None:
        return None
    return {col: parse_cell(text) for col, text in zip(COLUMNS, row, strict=True)}
