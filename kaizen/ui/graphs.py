"""Geometry for the two drawings, the checkpoint tree and the usage chart (no markup here).

The templates turn these numbers into inline SVG, so every label goes through the same
autoescaping as the rest of the page and the console needs no JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from kaizen.core.autonomy.state.types import CheckpointMetadata

ROW = 28        # pixels between two checkpoints of the tree
COLUMN = 22     # pixels between two branches
MARGIN = 14
TREE_LIMIT = 400  # the newest checkpoints drawn


@dataclass(frozen=True)
class Node:
    checkpoint_id: str
    step: int
    status: str
    saved_at: str
    x: int
    y: int
    damaged: bool
    fork_point: bool


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class TreeDrawing:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    label_x: int
    left_out: int  # older checkpoints not drawn


def tree_drawing(metas: list[CheckpointMetadata], damaged: set[str], when: Callable[[datetime], str],
                 limit: int = TREE_LIMIT) -> TreeDrawing:
    """Checkpoints top (oldest) to bottom, one column per branch, as ``git log --graph`` does.

    A straight history stays in its column; each further child of a fork point opens the next
    free column. ``metas`` is newest first (``list_checkpoints``); ``when`` formats a time.
    """
    kept = metas[:limit]
    known = {meta.checkpoint_id: meta for meta in kept}
    children: dict[str | None, list[str]] = {}
    for meta in reversed(kept):  # oldest first, so children are in saving order
        parent = meta.parent_checkpoint_id if meta.parent_checkpoint_id in known else None
        children.setdefault(parent, []).append(meta.checkpoint_id)
    place: dict[str, tuple[int, int]] = {}  # id -> (row, column)
    columns = 0
    stack: list[tuple[str, int]] = []
    for root in reversed(children.get(None, [])):
        stack.append((root, -1))
    row = 0
    while stack:
        checkpoint_id, column = stack.pop()
        if column < 0:
            column, columns = columns, columns + 1
        place[checkpoint_id] = (row, column)
        row += 1
        kids = children.get(checkpoint_id, [])
        # the first child continues this column; the others (pushed first, so drawn later) open new ones
        stack.extend((kid, -1) for kid in reversed(kids[1:]))
        if kids:
            stack.append((kids[0], column))
    nodes, edges = [], []
    for checkpoint_id, (row, column) in place.items():
        meta = known[checkpoint_id]
        x, y = MARGIN + column * COLUMN, MARGIN + row * ROW
        nodes.append(Node(checkpoint_id, meta.step_number, meta.status, when(meta.timestamp), x, y,
                          checkpoint_id in damaged, len(children.get(checkpoint_id, [])) > 1))
        parent = meta.parent_checkpoint_id
        if parent in place:
            prow, pcolumn = place[parent]
            edges.append(Edge(MARGIN + pcolumn * COLUMN, MARGIN + prow * ROW, x, y))
    nodes.sort(key=lambda node: node.y)
    label_x = MARGIN + max(columns, 1) * COLUMN
    return TreeDrawing(nodes, edges, label_x + 420, MARGIN * 2 + max(len(nodes) - 1, 0) * ROW,
                       label_x, max(len(metas) - limit, 0))


@dataclass(frozen=True)
class Chart:
    """A line chart in a 600 x 220 box: a polyline, its dots and a few axis labels."""

    title: str
    unit: str
    points: str                                # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]]       # x, y, tooltip
    y_ticks: list[tuple[float, str]]           # y, label
    x_labels: list[tuple[float, str]]          # x, label
    width: int = 600
    height: int = 220


PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 70.0, 585.0, 15.0, 190.0


def line_chart(title: str, unit: str, series: list[tuple[datetime, float]], fmt: str = "{:,.0f}") -> Chart | None:
    """A chart of ``series`` (time, value), or None with nothing to draw."""
    if not series:
        return None
    times = [moment.timestamp() for moment, _ in series]
    values = [value for _, value in series]
    t0, t1 = min(times), max(times)
    top = max(values) or 1.0
    span = (t1 - t0) or 1.0

    def x(moment: float) -> float:
        return round(PLOT_LEFT + (moment - t0) / span * (PLOT_RIGHT - PLOT_LEFT), 1) if t1 > t0 else PLOT_LEFT

    def y(value: float) -> float:
        return round(PLOT_BOTTOM - value / top * (PLOT_BOTTOM - PLOT_TOP), 1)

    coordinates = [(x(moment), y(value)) for moment, value in zip(times, values)]
    dots = [(cx, cy, f"{moment:%Y-%m-%d %H:%M:%S} UTC: {fmt.format(value)} {unit}")
            for (cx, cy), (moment, value) in zip(coordinates, series)]
    ticks = [(y(top * share), fmt.format(top * share)) for share in (0.0, 0.5, 1.0)]
    first, last = series[0][0], series[-1][0]
    labels = [(PLOT_LEFT, f"{first:%H:%M:%S}")]
    if t1 > t0:
        labels.append((PLOT_RIGHT, f"{last:%H:%M:%S}"))
    return Chart(title, unit, " ".join(f"{cx},{cy}" for cx, cy in coordinates), dots, ticks, labels)
