"""A small scatter/line chart written as inline SVG: points with tooltips and links, hollow markers, error bars,
lines and steps, linear or log axes with round ticks. Every text is escaped; nothing is styled inline."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#bab0ac",
           "#ff9da6")
WIDTH, HEIGHT = 560, 320
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 14, 46


def color(i: int) -> str:
    """The color of the i-th series."""
    return PALETTE[i % len(PALETTE)]


def _nice_step(span: float, count: int = 5) -> float:
    raw = span / count if span > 0 else 1.0
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


@dataclass
class Axis:
    """One axis: the range of the values drawn on it, linear or log."""

    log: bool = False
    values: list[float] = field(default_factory=list)
    fixed: tuple[float, float] | None = None  # the range to draw, where the caller knows it

    def bounds(self) -> tuple[float, float]:
        """The drawn range: the values' range padded, or rounded to powers of ten on a log axis."""
        if self.fixed is not None:
            return self.fixed
        vals = [v for v in self.values if not self.log or v > 0] or [1.0]
        lo, hi = min(vals), max(vals)
        if self.log:
            return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi) + 1e-9)
        pad = (hi - lo) * 0.08 or max(abs(hi) * 0.1, 1.0)
        return lo - pad, hi + pad

    def ticks(self) -> list[float]:
        """Round tick values inside the range."""
        lo, hi = self.bounds()
        if self.log:
            return [10.0 ** e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
        step = _nice_step(hi - lo)
        return [i * step for i in range(math.ceil(lo / step), math.floor(hi / step) + 1)]

    def fraction(self, value: float) -> float:
        """Where a value sits on the axis, 0 to 1."""
        lo, hi = self.bounds()
        if self.log:
            lo, hi, value = math.log10(lo), math.log10(hi), math.log10(max(value, lo))
        return (value - lo) / (hi - lo) if hi > lo else 0.5


def tick_text(value: float) -> str:
    """A tick label: short, without needless decimals."""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.0e}"
    return f"{value:.10g}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"


@dataclass(frozen=True)
class Mark:
    """Something drawn: a point (hollow or filled, with a tooltip and link), an error bar, or a polyline."""

    kind: str  # point | errorbar | line | step
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    color: str
    tip: str = ""
    href: str | None = None
    hollow: bool = False
    dashed: bool = False


class Chart:
    """A chart with a title and axis labels; marks are added, then `render` writes the SVG."""

    def __init__(self, title: str, xlabel: str, ylabel: str, xlog: bool = False) -> None:
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.x, self.y = Axis(log=xlog), Axis()
        self.marks: list[Mark] = []
        self.x_ticks: list[tuple[float, str]] | None = None  # (value, label) in place of numeric ticks

    def add(self, mark: Mark) -> None:
        """Add a mark; its values widen the axes."""
        self.marks.append(mark)
        self.x.values += list(mark.xs)
        self.y.values += list(mark.ys)

    def point(self, x: float, y: float, color: str, tip: str, href: str | None = None, hollow: bool = False) -> None:
        """A point with a tooltip (and a link)."""
        self.add(Mark("point", (x,), (y,), color, tip, href, hollow))

    def errorbar(self, x: float, lo: float, hi: float, color: str) -> None:
        """A vertical interval at x."""
        self.add(Mark("errorbar", (x, x), (lo, hi), color))

    def line(self, xs: list[float], ys: list[float], color: str, tip: str = "", step: bool = False,
             dashed: bool = False) -> None:
        """A polyline (or a step line, drawn across then up)."""
        self.add(Mark("step" if step else "line", tuple(xs), tuple(ys), color, tip, dashed=dashed))

    def _xy(self, x: float, y: float) -> tuple[float, float]:
        w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
        return LEFT + self.x.fraction(x) * w, TOP + (1 - self.y.fraction(y)) * h

    def _axes(self) -> list[str]:
        out = [f'<rect class="frame" x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
               f'height="{HEIGHT - TOP - BOTTOM}" fill="none" stroke="#999"/>']
        for t, text in self.x_ticks if self.x_ticks is not None else [(t, tick_text(t)) for t in self.x.ticks()]:
            px, _ = self._xy(t, 0)
            out.append(f'<text x="{px:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11">'
                       f"{html.escape(text)}</text>")
            out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" stroke="#eee"/>')
        for t in self.y.ticks():
            _, py = self._xy(self.x.bounds()[0], t)
            out.append(f'<text x="{LEFT - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11">'
                       f"{html.escape(tick_text(t))}</text>")
            out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{py:.1f}" y2="{py:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">'
                   f"{html.escape(self.xlabel)}</text>")
        out.append(f'<text x="14" y="{(TOP + HEIGHT - BOTTOM) / 2}" text-anchor="middle" font-size="12" '
                   f'transform="rotate(-90 14 {(TOP + HEIGHT - BOTTOM) / 2})">{html.escape(self.ylabel)}</text>')
        return out

    def _mark(self, m: Mark) -> str:
        tip = f"<title>{html.escape(m.tip)}</title>" if m.tip else ""
        if m.kind == "point":
            x, y = self._xy(m.xs[0], m.ys[0])
            fill = "none" if m.hollow else m.color
            dot = (f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="{6 if m.hollow else 5}" fill="{fill}" '
                   f'stroke="{m.color}" stroke-width="2">{tip}</circle>')
            return f'<a href="{html.escape(m.href)}">{dot}</a>' if m.href else dot
        pts = [self._xy(x, y) for x, y in zip(m.xs, m.ys, strict=True)]
        if m.kind == "step":
            pts = [p for a, b in zip(pts, pts[1:], strict=False) for p in (a, (b[0], a[1]))] + pts[-1:]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        dash = ' stroke-dasharray="5 4"' if m.dashed else ""
        return f'<polyline points="{path}" fill="none" stroke="{m.color}" stroke-width="1.5"{dash}>{tip}</polyline>'

    def render(self) -> str:
        """The chart as an inline <svg> element."""
        body = self._axes() + [self._mark(m) for m in self.marks]
        return (f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
                f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(self.title)}">'
                + "".join(body) + "</svg>")
