"""Is a figure readable when printed? Checks every report figure as it is saved.

A figure is saved at ``dpi`` (110 by default, ``ReportOutputs.figure``), shown in the HTML report
at its natural size (at most the page width) and printed on A4 portrait with
:data:`PRINT_WIDTH_IN` inches of usable width. A font of ``s`` points in a figure whose tight width
is ``w`` inches then prints at ``s * min(dpi / 96, PRINT_WIDTH_IN / w)`` points (96 CSS pixels to
the inch). :func:`figure_problems` reports, in words:

* text that prints below :data:`MIN_PRINT_PT` points (8 pt: the smallest a handout may use);
* two drawn text labels whose glyph boxes overlap (tick labels, annotations, titles, node labels;
  a rotated label by its rotated box; the tick labels matplotlib keeps beyond the axis limits but
  never draws are left out);
* a legend (of an axes or of the figure) drawn inside an axes over its data: a line point, bar or
  scatter point under it, or a line passing through it.

``ReportOutputs.figure`` records the problems of every figure in ``figures/figure_checks.json``;
the report-quality browser test fails on any.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PRINT_WIDTH_IN", "MIN_PRINT_PT", "print_scale", "figure_problems"]

PRINT_WIDTH_IN = 7.3  # A4 (8.27 in) minus 12 mm margins on both sides
MIN_PRINT_PT = 8.0
_MIN_OVERLAP = 0.15  # of the smaller box: glyph boxes touch at the edges without being unreadable


def print_scale(fig: Any, *, dpi: float = 110, print_width_in: float = PRINT_WIDTH_IN) -> float:
    """Printed size of one figure point, in points (see the module docstring).

    A figure not drawn since its last change is laid out first (a constrained or tight layout
    moves its axes only when drawn), so the width is the one it is saved with."""
    if fig.stale:
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width = fig.get_tightbbox(renderer).width  # inches, as saved with bbox_inches="tight"
    return min(dpi / 96.0, print_width_in / width) if width > 0 else dpi / 96.0


def _undrawn_tick_labels(fig: Any) -> set[int]:
    """Ids of tick labels matplotlib keeps but does not draw: ticks outside the view limits (a
    locator returns one beyond each end) and spare tick objects beyond the current locations."""
    hidden: set[int] = set()
    for ax in fig.axes:
        for axis in (getattr(ax, "xaxis", None), getattr(ax, "yaxis", None)):
            if axis is None:
                continue
            try:
                scale = axis.get_transform()
                lo, hi = sorted(scale.transform(np.asarray(axis.get_view_interval(), dtype=float)))
            except Exception:  # an axis without a usable scale: keep its labels
                continue
            tol = 1e-8 * max(hi - lo, 1e-12)
            for ticks, n in ((axis.majorTicks, len(axis.get_majorticklocs())),
                             (axis.minorTicks, len(axis.get_minorticklocs()))):
                for i, tick in enumerate(ticks):
                    try:
                        loc = float(scale.transform(np.array([float(tick.get_loc())]))[0])
                    except Exception:
                        loc = float("nan")
                    if i >= n or not (lo - tol <= loc <= hi + tol):
                        hidden.update((id(tick.label1), id(tick.label2)))
    return hidden


def _texts(fig: Any) -> list[Any]:
    from matplotlib.text import Text

    seen, out = _undrawn_tick_labels(fig), []
    for t in fig.findobj(Text):
        if id(t) in seen or not t.get_visible() or not t.get_text().strip():
            continue
        seen.add(id(t))
        out.append(t)
    return out


def _oriented_box(t: Any, renderer: Any, box: tuple[float, float, float, float]) -> np.ndarray:
    """Corners (4 x 2, display pixels) of a text's rotated glyph box; its axis-aligned bounding box
    `box` shares its centre. An unrotated text's box is `box` itself."""
    x0, y0, x1, y1 = box
    angle = float(t.get_rotation()) % 180.0
    if angle in (0.0, 90.0):
        return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)
    rotation = t.get_rotation()
    try:
        t.set_rotation(0)
        flat = t.get_window_extent(renderer)
    finally:
        t.set_rotation(rotation)
    w, h = flat.width, flat.height
    theta = np.deg2rad(angle)
    c, s = np.cos(theta), np.sin(theta)
    half = np.array([(-w, -h), (w, -h), (w, h), (-w, h)], dtype=float) / 2
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    return centre + half @ np.array([[c, s], [-s, c]])


def _polygon_area(p: np.ndarray) -> float:
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman: the part of convex polygon `subject` inside convex polygon `clip`."""
    if _polygon_area(clip) == 0:
        return np.zeros((0, 2))
    # orient the clip polygon counter-clockwise
    x, y = clip[:, 0], clip[:, 1]
    if np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) < 0:
        clip = clip[::-1]
    out = [tuple(p) for p in subject]
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        inp, out = out, []
        if not inp:
            break

        def inside(p: tuple[float, float], a=a, b=b) -> bool:
            return (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0

        def cross(p: tuple[float, float], q: tuple[float, float], a=a, b=b) -> tuple[float, float]:
            dx, dy = q[0] - p[0], q[1] - p[1]
            ex, ey = b[0] - a[0], b[1] - a[1]
            den = dx * ey - dy * ex
            if den == 0:
                return q
            u = ((a[0] - p[0]) * ey - (a[1] - p[1]) * ex) / den
            return (p[0] + u * dx, p[1] + u * dy)

        for j, cur in enumerate(inp):
            prev = inp[j - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
    return np.array(out, dtype=float).reshape(-1, 2)


def _boxes(texts: list[Any], renderer: Any, fig_box: Any) -> tuple[list[Any], np.ndarray]:
    kept, boxes = [], []
    for t in texts:
        try:
            b = t.get_window_extent(renderer)
        except Exception:  # a text without a position (e.g. an empty offset box)
            continue
        if b.width <= 0 or b.height <= 0 or not b.overlaps(fig_box):
            continue  # not drawn inside the saved figure
        kept.append(t)
        boxes.append((b.x0, b.y0, b.x1, b.y1))
    return kept, np.array(boxes, dtype=float).reshape(-1, 4)


def _overlaps(texts: list[Any], boxes: np.ndarray, renderer: Any = None) -> list[str]:
    if len(boxes) < 2:
        return []
    x0, y0, x1, y1 = (boxes[:, i][:, None] for i in range(4))
    w = np.clip(np.minimum(x1, x1.T) - np.maximum(x0, x0.T), 0, None)
    h = np.clip(np.minimum(y1, y1.T) - np.maximum(y0, y0.T), 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    smaller = np.minimum(area[:, None], area[None, :])
    frac = np.where(smaller > 0, w * h / np.where(smaller > 0, smaller, 1), 0)
    i, j = np.nonzero(np.triu(frac > _MIN_OVERLAP, k=1))
    if renderer is not None and len(i):
        # rotated labels (45° tick labels): their axis-aligned boxes overlap while the glyphs do
        # not; compare the rotated glyph boxes instead
        corners: dict[int, np.ndarray] = {}
        keep = []
        for a, b in zip(i, j):
            if float(texts[a].get_rotation()) % 90 == 0 and float(texts[b].get_rotation()) % 90 == 0:
                keep.append(True)
                continue
            for k in (a, b):
                if k not in corners:
                    corners[k] = _oriented_box(texts[k], renderer, tuple(boxes[k]))
            pa, pb = corners[a], corners[b]
            small = min(_polygon_area(pa), _polygon_area(pb))
            keep.append(small > 0 and _polygon_area(_clip(pa, pb)) / small > _MIN_OVERLAP)
        i, j = i[np.array(keep, dtype=bool)], j[np.array(keep, dtype=bool)]
    out = []
    for a, b in zip(i[:5], j[:5]):
        out.append(f"labels overlap: {texts[a].get_text()[:40]!r} and {texts[b].get_text()[:40]!r}")
    if len(i) > 5:
        out.append(f"... and {len(i) - 5} more overlapping label pairs")
    return out


def _data_boxes(ax: Any, renderer: Any) -> list[tuple[float, float, float, float]]:
    """Display-space boxes of an axes' data: points of lines and scatters, bars and other patches."""
    from matplotlib.collections import Collection
    from matplotlib.patches import Rectangle

    out = []
    for line in ax.get_lines():
        xy = line.get_xydata()
        if len(xy) == 0 or not line.get_visible():
            continue
        pts = line.get_transform().transform(xy)
        out += [(x, y, x, y) for x, y in pts if np.isfinite(x) and np.isfinite(y)]
    for coll in ax.collections:
        if not coll.get_visible() or not isinstance(coll, Collection):
            continue
        offsets = coll.get_offsets()
        if len(offsets) and coll.get_offset_transform() is not None:
            pts = coll.get_offset_transform().transform(offsets)
            out += [(x, y, x, y) for x, y in pts if np.isfinite(x) and np.isfinite(y)]
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and patch.get_visible() and patch.get_width() and patch.get_height():
            b = patch.get_window_extent(renderer)
            out.append((b.x0, b.y0, b.x1, b.y1))
    return out


def _lines_crossing(ax: Any, box: Any) -> int:
    """Lines of `ax` that pass through `box` between their points (a two-point line under a legend)."""
    n = 0
    for line in ax.get_lines():
        if not line.get_visible() or len(line.get_xydata()) < 2 or line.get_linestyle() in ("None", "none", "", " "):
            continue
        path = line.get_transform().transform_path(line.get_path())
        if path.intersects_bbox(box, filled=False):
            n += 1
    return n


def _covered(ax: Any, box: Any, renderer: Any) -> int:
    points = sum(1 for x0, y0, x1, y1 in _data_boxes(ax, renderer)
                 if x1 >= box.x0 and x0 <= box.x1 and y1 >= box.y0 and y0 <= box.y1)
    return points or _lines_crossing(ax, box)


def _legend_problems(fig: Any, renderer: Any) -> list[str]:
    out = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        lb = legend.get_window_extent(renderer)
        if not lb.overlaps(ax.get_window_extent(renderer)):
            continue  # outside the axes
        covered = _covered(ax, lb, renderer)
        if covered:
            title = ax.get_title() or ax.get_ylabel() or "an axes"
            out.append(f"legend covers data in {title[:40]!r} ({covered} data points or bars under it): "
                       "place it outside the axes")
    for legend in getattr(fig, "legends", []):  # fig.legend(...): may sit over any axes
        if not legend.get_visible():
            continue
        lb = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if not lb.overlaps(ax.get_window_extent(renderer)):
                continue
            covered = _covered(ax, lb, renderer)
            if covered:
                title = ax.get_title() or ax.get_ylabel() or "an axes"
                out.append(f"figure legend covers data in {title[:40]!r} ({covered} data points or bars under "
                           "it): place it outside the axes")
    return out


def figure_problems(fig: Any, *, dpi: float = 110, print_width_in: float = PRINT_WIDTH_IN,
                    min_pt: float = MIN_PRINT_PT) -> list[str]:
    """Readability problems of a matplotlib figure at print size (empty list: none).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (drawn or not).
    dpi : float
        The resolution it is saved at.
    print_width_in : float
        Usable page width in inches.
    min_pt : float
        Smallest printed font size allowed.

    Returns
    -------
    list of str
        One sentence per problem.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(6, 4)); _ = ax.set_title("fine", fontsize=10)
    >>> figure_problems(fig)
    []
    >>> _ = ax.set_xlabel("tiny", fontsize=4)
    >>> figure_problems(fig)[0][:28]
    "text 'tiny' prints at 4.6 pt"
    """
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    scale = print_scale(fig, dpi=dpi, print_width_in=print_width_in)
    # saved with bbox_inches="tight": text outside the canvas (a legend beside the axes) is in the image
    saved = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    texts, boxes = _boxes(_texts(fig), renderer, saved)
    problems = []
    small = sorted(((t.get_fontsize() * scale, t.get_text()) for t in texts
                    if t.get_fontsize() * scale < min_pt - 1e-9), key=lambda x: x[0])
    if small:
        size, text = small[0]
        more = f" (and {len(small) - 1} more texts)" if len(small) > 1 else ""
        problems.append(f"text {text[:40]!r} prints at {size:.1f} pt (smallest allowed {min_pt:g} pt){more}")
    problems += _overlaps(texts, boxes, renderer)
    problems += _legend_problems(fig, renderer)
    return problems
