"""The static part of a dash-camera frame: sky, skyline, verge, sidewalks, the road and its lane markings.

`RoadLayout` says where the lanes are (metres, camera at X = 0); `draw_backdrop` paints it in perspective with
a `road_render.Camera`. `travelled` (metres the camera has driven) scrolls the dashed markings, so a video
shows forward motion by changing only that number.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from data_scripts.road_render import LANE_WIDTH, Camera

Z_NEAR, Z_FAR = 0.5, 400.0


@dataclass(frozen=True)
class RoadLayout:
    """Lanes around the camera's lane: `lanes_left`/`lanes_right` extra lanes, the leftmost `oncoming` of
    them carry oncoming traffic; the camera sits `ego_offset` m right of its lane centre."""

    lanes_left: int = 1
    lanes_right: int = 0
    oncoming: int = 1
    ego_offset: float = 0.0
    sidewalk: float = 2.5
    crosswalk_z: float | None = None  # distance of a zebra crossing, if any

    @classmethod
    def sample(cls, rng: np.random.Generator) -> RoadLayout:
        left = int(rng.choice([0, 1, 1, 2]))
        return cls(lanes_left=left, lanes_right=int(rng.choice([0, 0, 1])), oncoming=int(rng.integers(0, left + 1)),
                   ego_offset=float(rng.uniform(-0.4, 0.4)), sidewalk=float(rng.uniform(1.8, 3.5)),
                   crosswalk_z=float(rng.uniform(9, 25)) if rng.random() < 0.25 else None)

    def lane_centre(self, k: int) -> float:
        """X (m) of lane k: 0 = the camera's lane, negative to the left."""
        return k * LANE_WIDTH - self.ego_offset

    def lanes(self) -> list[tuple[int, bool]]:
        """(lane index, oncoming?) for every lane, left to right."""
        return [(k, k < -self.lanes_left + self.oncoming) for k in range(-self.lanes_left, self.lanes_right + 1)]

    @property
    def left_edge(self) -> float:
        return self.lane_centre(-self.lanes_left) - LANE_WIDTH / 2

    @property
    def right_edge(self) -> float:
        return self.lane_centre(self.lanes_right) + LANE_WIDTH / 2


def _ground_quad(cam: Camera, x1: float, x2: float, z1: float, z2: float) -> np.ndarray:
    pts = [cam.project(x1, 0, z1), cam.project(x2, 0, z1), cam.project(x2, 0, z2), cam.project(x1, 0, z2)]
    return np.round(np.array(pts) * 16).astype(np.int32)


def _fill(img, pts, colour):
    cv2.fillPoly(img, [pts], colour, cv2.LINE_AA, shift=4)


@dataclass(frozen=True)
class Scenery:
    """Random but fixed look of a place (colours, skyline), so a video keeps it while the markings scroll."""

    sky_top: tuple[int, int, int]
    sky_low: tuple[int, int, int]
    verge: tuple[int, int, int]
    road: int
    sidewalk: tuple[int, int, int]
    skyline: tuple[tuple[float, float, float, tuple[int, int, int]], ...]  # x1, x2 (share of width), height px/H
    trees: tuple[tuple[float, float, tuple[int, int, int]], ...]  # x share, radius share of H, colour
    patches: tuple[tuple[float, float, float, float], ...]  # x1, x2 (m), z1, z2 (m) darker asphalt

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Scenery:
        blue = int(rng.integers(170, 235))
        sky_top = (blue, int(blue * rng.uniform(0.7, 0.85)), int(blue * rng.uniform(0.45, 0.6)))
        sky_low = (int(rng.integers(200, 245)),) * 2 + (int(rng.integers(190, 235)),)
        verge = [(60, 120, 70), (70, 140, 110), (80, 110, 120), (120, 125, 125)][rng.integers(4)]
        skyline = []
        x = -0.05
        while x < 1.05:
            w = rng.uniform(0.03, 0.12)
            grey = int(rng.integers(80, 170))
            skyline.append((x, x + w, rng.uniform(0.02, 0.16),
                            (grey, grey + int(rng.integers(-10, 15)), grey + int(rng.integers(-10, 25)))))
            x += w + rng.uniform(0.0, 0.08)
        trees = tuple((float(rng.uniform(0, 1)), float(rng.uniform(0.02, 0.06)),
                       (int(rng.integers(30, 70)), int(rng.integers(90, 140)), int(rng.integers(40, 80))))
                      for _ in range(int(rng.integers(0, 8))))
        patches = tuple((float(rng.uniform(-6, 4)), 0.0, float(rng.uniform(4, 60)), 0.0)
                        for _ in range(int(rng.integers(0, 4))))
        patches = tuple((x1, x1 + float(rng.uniform(0.5, 2.5)), z1, z1 + float(rng.uniform(1, 6)))
                        for x1, _, z1, _ in patches)
        return cls(sky_top, sky_low, verge, int(rng.integers(70, 105)),
                   (int(rng.integers(140, 180)),) * 3, tuple(skyline), trees, patches)


def draw_backdrop(cam: Camera, layout: RoadLayout, scenery: Scenery, travelled: float = 0.0) -> np.ndarray:
    """A BGR `uint8 [H, W, 3]` frame with sky, skyline, verge, sidewalks, road and markings (no objects)."""
    h, w = cam.height, cam.width
    hz = int(round(cam.horizon))
    img = np.empty((h, w, 3), np.uint8)
    t = np.linspace(0, 1, max(hz, 1))[:, None]
    img[:hz] = (np.array(scenery.sky_top) * (1 - t) + np.array(scenery.sky_low) * t).astype(np.uint8)[:, None, :]
    img[hz:] = scenery.verge
    for x1, x2, top, colour in scenery.skyline:
        cv2.rectangle(img, (int(x1 * w), int(hz - top * h)), (int(x2 * w), hz + 1), colour, -1)
    for x, r, colour in scenery.trees:
        cx, rr = int(x * w), max(2, int(r * h))
        cv2.rectangle(img, (cx - max(1, rr // 6), hz - rr), (cx + max(1, rr // 6), hz + 1), (40, 60, 80), -1)
        cv2.circle(img, (cx, hz - rr - rr // 2), rr, colour, -1, cv2.LINE_AA)
    le, re = layout.left_edge, layout.right_edge
    side = scenery.sidewalk
    _fill(img, _ground_quad(cam, le - layout.sidewalk, le, Z_NEAR, Z_FAR), side)
    _fill(img, _ground_quad(cam, re, re + layout.sidewalk, Z_NEAR, Z_FAR), side)
    g = scenery.road
    _fill(img, _ground_quad(cam, le, re, Z_NEAR, Z_FAR), (g, g, g + 4))
    for x1, x2, z1, z2 in scenery.patches:
        _fill(img, _ground_quad(cam, max(le, x1), min(re, x2), z1, z2), (g - 12, g - 12, g - 10))
    white, yellow = (235, 235, 235), (40, 200, 230)
    line = 0.15
    for x in (le + 0.2, re - 0.2):  # solid edge lines
        _fill(img, _ground_quad(cam, x - line / 2, x + line / 2, Z_NEAR, Z_FAR), white)
    for x in (le, re):  # curbs
        _fill(img, _ground_quad(cam, x - 0.12, x + 0.12, Z_NEAR, Z_FAR), (200, 200, 200))
    lanes = layout.lanes()
    for (k, onc), (_, onc_next) in zip(lanes, lanes[1:], strict=False):
        x = layout.lane_centre(k) + LANE_WIDTH / 2
        if onc and not onc_next:  # double solid yellow between the directions
            for dx in (-0.12, 0.12):
                _fill(img, _ground_quad(cam, x + dx - line / 2, x + dx + line / 2, Z_NEAR, Z_FAR), yellow)
            continue
        period, dash = 12.0, 4.0
        z0 = Z_NEAR - (travelled % period)
        while z0 < 120:
            z1, z2 = max(z0, Z_NEAR), z0 + dash
            if z2 > Z_NEAR:
                _fill(img, _ground_quad(cam, x - line / 2, x + line / 2, z1, z2), white)
            z0 += period
    if layout.crosswalk_z is not None:
        zc = layout.crosswalk_z - travelled
        if zc > 1.0:
            x = le
            while x < re:
                _fill(img, _ground_quad(cam, x, min(x + 0.5, re), zc, zc + 3.0), white)
                x += 1.0
    return img
