"""How results are shown in the report: numbers as table cells (one run, or mean ± SD over seeds),
runs grouped into table rows, figures ordered and matched to their caption files, and text escaped
for LaTeX and reStructuredText. Pure functions of values; nothing here reads a file."""
from __future__ import annotations

import math
import re
import statistics
import unicodedata
from pathlib import Path


def defined(value) -> bool:
    """False for None and NaN: a value a run does not have."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def fmt(value, digits: int = 2) -> str:
    """A number for a table cell; '–' where a value is undefined."""
    if not defined(value):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_pm(mean, err, digits: int = 2) -> str:
    return f"{fmt(mean, digits)} ± {fmt(err, digits)}"


def seed_cell(values, digits: int = 2, errors=None) -> str:
    """One table cell from the values of runs that differ only in their seed: with one run, the
    value (± ``errors[0]``, its own error, when given); with several, mean ± sample SD over the
    seeds. Integers that agree across seeds (epochs, parameters) print once."""
    pairs = [(v, e) for v, e in zip(values, errors or [None] * len(values)) if defined(v)]
    if not pairs:
        return "–"
    if len(pairs) == 1:
        value, err = pairs[0]
        return fmt_pm(value, err, digits) if errors is not None and defined(err) else fmt(value, digits)
    numbers = [v for v, _ in pairs]
    if all(isinstance(v, int) for v in numbers) and len(set(numbers)) == 1:
        return str(numbers[0])
    return fmt_pm(statistics.fmean(numbers), statistics.stdev(numbers), digits)


def seed_mean(values) -> float | None:
    """The mean over seeds of the defined values (None when there are none): what a cell of
    ``seed_cell`` shows first."""
    numbers = [v for v in values if defined(v)]
    return statistics.fmean(numbers) if numbers else None


def seeds_label(seeds) -> str:
    return ", ".join(str(s) for s in sorted(seeds))


def by_setting(records: list[dict], *keys: str) -> list[tuple[tuple, dict[str, list]]]:
    """Records (one per run, each with a 'seed') grouped by ``keys``, groups and seeds in order;
    each group as columns: {field: [value of each seed's run]}."""
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(records, key=lambda r: (*(r[k] for k in keys), r["seed"])):
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    return [(key, {f: [r.get(f) for r in group] for f in group[0]}) for key, group in groups.items()]


def latent_cell(latent, point: str = ""):
    """A table's latent-size cell: the size, or for a sweep point's runs "20 (hidden_dim=256)"."""
    return f"{latent} ({point})" if point else latent


def number_ranges(numbers) -> str:
    """Integers as compact ranges: [3, 4, 5, 9] -> '3–5, 9'."""
    numbers = sorted(set(numbers))
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in spans)


def captioned_figures(paths, kinds: dict[str, str], wildcards: dict | None = None) -> list[dict]:
    """Report figures from figure paths in the order of ``kinds`` (the seed's figure order), then by
    name. ``kinds`` maps the start of a figure's file name to the caption file (``workflow/report/
    <caption>.rst``) that describes it; ``wildcards`` are what the caption may ask of
    ``snakemake.wildcards``. A figure that matches no kind is an error."""
    order = list(kinds)
    figures = []
    for path in paths:
        stem = Path(path).stem
        kind = next((k for k in order if stem.startswith(k)), None)
        if kind is None:
            raise ValueError(f"{path}: no caption for a figure named {stem!r} (known: {', '.join(order)})")
        figure = {"path": str(path), "caption": kinds[kind], "wildcards": dict(wildcards or {})}
        figures.append((order.index(kind), stem, figure))
    return [f for *_, f in sorted(figures, key=lambda t: t[:2])]


# --------------------------------------------------------------------------- escaping text

LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                 "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}
# Maths symbols (pdflatex's utf8 input knows few beyond Latin-1) and typographic characters, as commands
# valid in text and in maths.
LATEX_UNICODE = {"±": r"\ensuremath{\pm}", "×": r"\ensuremath{\times}", "−": r"\ensuremath{-}",
                 "≈": r"\ensuremath{\approx}", "≥": r"\ensuremath{\geq}", "≤": r"\ensuremath{\leq}",
                 "∞": r"\ensuremath{\infty}", "→": r"\ensuremath{\to}", "∣": r"\ensuremath{\mid}", "–": "--",
                 "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}", "\u00a0": "~"}
GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
# Accents of Latin letters, by the combining character Unicode decomposes them into.
LATEX_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0304": "=", "\u0306": "u",
                 "\u0307": ".", "\u0308": '"', "\u030a": "r", "\u030b": "H", "\u030c": "v", "\u0327": "c",
                 "\u0328": "k"}


def latex_unicode(text: str) -> str:
    """LaTeX source with every character pdflatex cannot read as UTF-8 spelled as a command: maths
    symbols and Greek letters as maths, accented Latin letters with accent commands, anything else
    by its Unicode name in brackets (pdflatex stops on characters it does not know)."""
    out = []
    for c in text:
        if c in LATEX_UNICODE:
            out.append(LATEX_UNICODE[c])
        elif ord(c) < 0x100:
            out.append(c)
        else:
            out.append(_latex_char(c))
    return "".join(out)


def _latex_char(c: str) -> str:
    name = unicodedata.name(c, "")
    if name.startswith("GREEK SMALL LETTER ") and " " not in name[19:]:
        return f"\\ensuremath{{\\{name[19:].lower()}}}"
    if name.startswith("GREEK CAPITAL LETTER ") and name[21:].capitalize() in GREEK_CAPITALS:
        return f"\\ensuremath{{\\{name[21:].capitalize()}}}"
    base, *marks = unicodedata.normalize("NFD", c)
    if marks and ord(base) < 0x80 and all(m in LATEX_ACCENTS for m in marks):
        for m in marks:
            base = f"\\{LATEX_ACCENTS[m]}{{{base}}}"
        return base
    return f"[{name.lower() or hex(ord(c))}]"


def latex_escape(value) -> str:
    """Plain text for LaTeX: specials escaped, other characters as ``latex_unicode`` spells them."""
    return latex_unicode("".join(LATEX_SPECIAL.get(c, c) for c in str(value)))


RST_SPECIAL = re.compile(r"([\\`*_|])")


def rst_escape(value) -> str:
    """Plain text for reStructuredText: its inline-markup characters backslash-escaped."""
    return RST_SPECIAL.sub(r"\\\1", str(value))
