"""Items and their rasterisation: road-scene drawing primitives painted into a BGR image and an id buffer.

An `Item` is one drawable thing (a world depth plus primitives in pixels). `render_items` paints items far to
near into a BGR image and, with the same primitives, into an id buffer (`uint8 [H, W]`, 0 = no labelled object,
k = the k-th labelled item); `silhouette_area` and `visible_region` measure objects from those pixels. The
object-drawing functions that build items live in `road_render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# A primitive: ("poly", points [N, 2], colour) | ("circle", centre, radius, colour) |
# ("line", p1, p2, colour, thickness) | ("text", text, origin, font_scale, colour, thickness).
# Text only paints (it lies inside its plate), every other primitive also fills the id buffer.
Prim = tuple


@dataclass
class Item:
    """One drawable thing at distance `depth` m: a labelled object (`cls` >= 0) or clutter/distractor (-1)."""

    depth: float
    prims: list[Prim]
    cls: int = -1
    kind: str = ""  # "car", "billboard", "pole", ... (what a distractor imitates is in `looks_like`)
    looks_like: int = -1
    lights: list[tuple[float, float, float, tuple[int, int, int]]] = field(default_factory=list)  # x, y, r, BGR
    track_id: int = 0

    def bbox(self) -> tuple[float, float, float, float]:
        """Pixel box x1, y1, x2, y2 around all primitives (unclipped)."""
        xs, ys = [], []
        for p in self.prims:
            if p[0] == "poly":
                xs += [float(p[1][:, 0].min()), float(p[1][:, 0].max())]
                ys += [float(p[1][:, 1].min()), float(p[1][:, 1].max())]
            elif p[0] == "circle":
                (cx, cy), r = p[1], p[2]
                xs += [cx - r, cx + r]
                ys += [cy - r, cy + r]
            elif p[0] == "line":
                t = p[4] / 2
                xs += [min(p[1][0], p[2][0]) - t, max(p[1][0], p[2][0]) + t]
                ys += [min(p[1][1], p[2][1]) - t, max(p[1][1], p[2][1]) + t]
        return min(xs), min(ys), max(xs), max(ys)


def _draw(img: np.ndarray, prim: Prim, colour) -> None:
    kind = prim[0]
    if kind == "poly":
        cv2.fillPoly(img, [np.round(prim[1] * 16).astype(np.int32)], colour, cv2.LINE_8, shift=4)
    elif kind == "circle":
        (cx, cy), r = prim[1], prim[2]
        cv2.circle(img, (int(round(cx * 16)), int(round(cy * 16))), int(round(r * 16)), colour, -1,
                   cv2.LINE_8, shift=4)
    elif kind == "line":
        p1, p2 = prim[1], prim[2]
        cv2.line(img, (int(round(p1[0] * 16)), int(round(p1[1] * 16))),
                 (int(round(p2[0] * 16)), int(round(p2[1] * 16))), colour, prim[4], cv2.LINE_8, shift=4)


def render_items(img: np.ndarray | None, items: list[Item], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Paint `items` far to near onto `img` (in place) and return the id buffer `uint8 [H, W]`.

    With `img=None` only the id buffer of size `shape` (H, W) is drawn (to measure occlusion cheaply).

    Labelled items (cls >= 0) get ids 1, 2, ... in the order they appear in `items` (at most 255); everything
    else paints 0, so a pole or a billboard in front of a car hides that part of the car.
    """
    ids = np.zeros(img.shape[:2] if img is not None else shape, np.uint8)
    labelled = [i for i, it in enumerate(items) if it.cls >= 0]
    if len(labelled) > 255:
        raise ValueError(f"at most 255 labelled objects per image, got {len(labelled)}")
    id_of = {i: k + 1 for k, i in enumerate(labelled)}
    for i in sorted(range(len(items)), key=lambda j: -items[j].depth):
        it, k = items[i], id_of.get(i, 0)
        for prim in it.prims:
            if prim[0] == "text":
                if img is None:
                    continue
                _, text, org, scale, colour, thick = prim
                cv2.putText(img, text, (int(round(org[0])), int(round(org[1]))), cv2.FONT_HERSHEY_SIMPLEX, scale,
                            colour, thick, cv2.LINE_AA)
                continue
            if img is not None:
                _draw(img, prim, prim[-2] if prim[0] == "line" else prim[-1])
            _draw(ids, prim, k)
    return ids


def silhouette_area(item: Item, shape: tuple[int, int]) -> int:
    """Pixels the item would cover in an empty `shape` (H, W) frame (clipped to the frame)."""
    x1, y1, x2, y2 = item.bbox()
    h, w = shape
    x1, y1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    x2, y2 = min(w, int(np.ceil(x2)) + 1), min(h, int(np.ceil(y2)) + 1)
    if x2 <= x1 or y2 <= y1:
        return 0
    roi = np.zeros((y2 - y1, x2 - x1), np.uint8)
    for prim in item.prims:
        if prim[0] == "text":
            continue
        _draw(roi, _shifted(prim, -x1, -y1), 1)
    return int(cv2.countNonZero(roi))


def _shifted(prim: Prim, dx: float, dy: float) -> Prim:
    kind = prim[0]
    if kind == "poly":
        return kind, prim[1] + np.array([dx, dy], np.float32), prim[2]
    if kind == "circle":
        return kind, (prim[1][0] + dx, prim[1][1] + dy), prim[2], prim[3]
    if kind == "line":
        return kind, (prim[1][0] + dx, prim[1][1] + dy), (prim[2][0] + dx, prim[2][1] + dy), prim[3], prim[4]
    return prim


def visible_region(ids: np.ndarray, k: int, min_pixels: int = 6):
    """(box x1, y1, x2, y2 in pixels, polygon [N, 2] in pixels, visible pixel count) of id `k`, or None.

    The box is the bounding box of the visible pixels (x2/y2 exclusive). The polygon is the outer contour of
    the visible part; a part split in pieces by an occluder becomes one polygon whose pieces are joined by
    zero-width bridges (as Ultralytics' own COCO converter joins multi-part masks), so it stays inside the box.
    """
    mask = (ids == k).astype(np.uint8)
    count = int(cv2.countNonZero(mask))
    if count < min_pixels:
        return None
    x, y, w, h = cv2.boundingRect(mask)
    roi = mask[y:y + h, x:x + w]
    contours, _ = cv2.findContours(roi, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = []
    # every part is kept (even a 1-pixel sliver) so that the polygon's extent is exactly the box's
    for c in sorted(contours, key=lambda c: (-cv2.contourArea(c), -len(c))):
        c = cv2.approxPolyDP(c, 0.6, True).reshape(-1, 2)
        parts.append(c + np.array([x, y]))
    poly = _join_parts(parts)
    if len(poly) < 3:  # a 1-2 pixel wide sliver: use its box corners
        poly = np.array([(x, y), (x + w - 1, y), (x + w - 1, y + h - 1), (x, y + h - 1)])
    return (x, y, x + w, y + h), poly.astype(np.float64), count


def _join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon from several: each next part is entered and left at its point nearest the polygon so far."""
    poly = parts[0]
    for part in parts[1:]:
        d = ((poly[:, None, :] - part[None, :, :]) ** 2).sum(-1)
        i, j = np.unravel_index(int(np.argmin(d)), d.shape)
        part = np.roll(part, -j, axis=0)
        poly = np.concatenate([poly[:i + 1], part, part[:1], poly[i:]])
    return poly
