"""Pictures of the group's own figures: the audit chart, a ranked count's rounds and a month's
books, rendered headless.

The core only describes a chart (`describe`: its name and figures, kept in the
outbox with the message); the delivery layer draws it (`draw`) in a process of
its own (bot/chart_worker.py) just before sending. matplotlib's object API with
the Agg canvas (no pyplot): no display, no global state.

The language goes with the figures: `describe` runs in the core, where the group's
language is set, and `draw` speaks it again in the chart process (where nothing sets
it), so titles, legends and axis labels are translated there.
"""

from __future__ import annotations

import json
from functools import lru_cache
from io import BytesIO

from bot import i18n
from bot.actions import Chart
from bot.i18n import N_, _

MEASURED = (  # (figure key, legend label)
    ("needs_met", N_("needs met")),
    ("met_within_48h", N_("met within 48 h")),
    ("decisions", N_("decisions taken")),
    ("role_holders", N_("people who held a role")),
)


def audit_chart(audits: list[tuple[str, dict]], group_title: str | None = None) -> bytes:
    """A PNG of reported and measured figures across audits: `audits` is [(label, figures), …], oldest first."""
    # Imported on first use: matplotlib costs ~0.4 s and ~60 MB, which a bot that never charts need not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    reported_axes, measured_axes = figure.subplots(2, 1, sharex=True)
    labels = [label for label, _figures in audits]
    positions = list(range(len(audits)))
    areas = list(dict.fromkeys(area for _label, figures in audits for area in figures.get("reported", {})))
    for area in areas:
        values = [figures.get("reported", {}).get(area) for _label, figures in audits]
        reported_axes.plot(positions, [v if v is not None else float("nan") for v in values], marker="o", label=area)
    reported_axes.set_title(_("What members reported the group provided itself"))
    for key, legend in MEASURED:
        measured_axes.plot(positions, [figures.get(key) or 0 for _label, figures in audits], marker="s",
                           label=_(legend))
    measured_axes.set_title(_("What the bot measured"))
    for axes in (reported_axes, measured_axes):
        axes.grid(True, alpha=0.3)
        axes.set_ylim(bottom=0)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", fontsize="small", ncols=2)
    measured_axes.set_xticks(positions, labels, rotation=45 if len(labels) > 8 else 0, ha="right"
                             if len(labels) > 8 else "center", fontsize="small")
    title = _safe(group_title or "")
    figure.suptitle(_("Sovereignty audits — {group}").format(group=title) if title else _("Sovereignty audits"))
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def rounds_chart(count: dict, title: str) -> bytes:
    """A PNG of a ranked count (`bot.governance.voting.count_record`): one line per candidate
    across the rounds, the quota dashed for STV, and who was excluded or elected where."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    stages = count["stages"]
    rounds = [stage["number"] for stage in stages]
    for name in stages[0]["totals"]:
        values = [float(stage["totals"].get(name, 0)) for stage in stages]
        axes.plot(rounds, values, marker="o", label=_safe(name)[:30])
    if count["method"] == "stv":
        axes.axhline(float(count["quota"]), linestyle="--", color="grey",
                     label=_("quota {quota}").format(quota=count["quota"]))
    first = _("first")  # the first round's label
    labels = [_safe(stage["subject"] or first)[:14] if stage["action"] != "first" else first for stage in stages]
    axes.set_xticks(rounds, [f"{n}\n{label}" for n, label in zip(rounds, labels, strict=True)], fontsize="small")
    axes.set_ylabel(_("votes"))
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", fontsize="small", ncols=2)
    figure.suptitle(_safe(title)[:80])
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def ledger_chart(month: str, categories: tuple[tuple[str, int, int], ...], currency: str, opening_cents: int,
                 closing_cents: int, group_title: str = "") -> bytes:
    """A PNG of a month's books: money in and out per category (`categories` is ((name, in
    cents, out cents), …)), with the opening and closing balance in the title.

    Cached on its inputs and the language: a past month's figures never change (entries are
    never edited), so asking for the same statement again costs no second rendering, and any
    change to the figures (or the words around them) is a different key."""
    return _ledger_png(i18n.current(), month, categories, currency, opening_cents, closing_cents, group_title)


@lru_cache(maxsize=32)
def _ledger_png(language: str, month: str, categories: tuple[tuple[str, int, int], ...], currency: str,
                opening_cents: int, closing_cents: int, group_title: str) -> bytes:
    # `language` is only part of the cache key: the words are drawn in the current language, which it names.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    names = [_safe(name)[:24] for name, _in, _out in categories] or [_("no entries")]
    positions = list(range(len(names)))
    width = 0.4
    axes.bar([p - width / 2 for p in positions], [money_in / 100 for _name, money_in, _out in categories] or [0],
             width, label=_("in"), color="#2e7d32")
    axes.bar([p + width / 2 for p in positions], [money_out / 100 for _name, _in, money_out in categories] or [0],
             width, label=_("out"), color="#c62828")
    axes.set_xticks(positions, names, rotation=30 if len(names) > 5 else 0, ha="right" if len(names) > 5
                    else "center", fontsize="small")
    axes.set_ylabel(currency)
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    title = _safe(group_title)
    figures = {"month": month, "group": title, "opening": f"{opening_cents / 100:,.2f}",
               "closing": f"{closing_cents / 100:,.2f}", "currency": currency}
    figure.suptitle(_("{month} — {group}: opening {opening}, closing {closing} {currency}").format(**figures)
                    if title else _("{month}: opening {opening}, closing {closing} {currency}").format(**figures))
    buffer = BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _safe(text: str) -> str:
    return text.replace("$", r"\$")  # `$` would start matplotlib's math mode


def describe(name: str, **figures) -> Chart:
    """A chart to draw later, from JSON-able figures (the keyword arguments of its function) and
    the language it is described in (the group's: the core sets it for each event and due item)."""
    figures = {**figures, "language": i18n.current()}
    return Chart(name=name, figures=json.dumps(figures, separators=(",", ":"), sort_keys=True))


def draw(chart: Chart) -> bytes:
    """The PNG of a described chart (run in the chart worker's process), in the language it was
    described in: nothing else sets the language in that process. A chart described before
    charts carried a language is drawn in English."""
    figures = json.loads(chart.figures)
    with i18n.speaking(figures.pop("language", i18n.SOURCE_LANGUAGE)):
        return _draw(chart.name, figures)


def _draw(name: str, figures: dict) -> bytes:
    if name == "audit":
        return audit_chart([(label, values) for label, values in figures["audits"]], figures["group_title"])
    if name == "rounds":
        return rounds_chart(figures["count"], figures["title"])
    return ledger_chart(figures["month"], tuple(tuple(row) for row in figures["categories"]), figures["currency"],
                        figures["opening_cents"], figures["closing_cents"], figures["group_title"])
