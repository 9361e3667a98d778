"""Draw dash-camera road scenes: a pinhole camera over a flat road, objects as lists of drawing primitives.

Both generators (`make_driving_scenes`, `make_driving_video`) build a scene as a list of `Item`s, each a world
position plus primitives in pixels, then `render_items` paints them far to near into a BGR image and, with the
same primitives, into an id buffer (`uint8 [H, W]`, 0 = no labelled object, k = the k-th labelled item). The id
buffer is what the labels come from: an object's visible pixels are exactly where its id survived the nearer
items drawn over it, so boxes and polygons describe the *visible part* of each object.

World frame (metres): X to the right, Y up from the road surface, Z forward from the camera. The camera sits
`cam_height` above the road looking along Z; `Camera.project` maps a world point to pixel (u, v).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from data_scripts.road_raster import (  # noqa: F401 (render_items etc. re-exported for the generators)
    Item,
    Prim,
    render_items,
    silhouette_area,
    visible_region,
)

# Generator classes. The first six are the dash-cam set's classes (its default output); bus and motorbike
# (drawn in road_extra_classes) are generated only when a class map names them.
NAMES = ["car", "truck", "pedestrian", "cyclist", "traffic_light", "stop_sign", "bus", "motorbike"]
DEFAULT_NAMES = NAMES[:6]
CAR, TRUCK, PEDESTRIAN, CYCLIST, TRAFFIC_LIGHT, STOP_SIGN, BUS, MOTORBIKE = range(8)
LANE_WIDTH = 3.5  # metres

# Body colours of vehicles (BGR), chosen to stand out from the grey road at every lighting.
CAR_COLOURS = [(40, 40, 190), (190, 70, 30), (230, 230, 230), (30, 30, 30), (60, 150, 60), (20, 160, 220),
               (150, 150, 150), (120, 40, 120), (0, 90, 160), (200, 180, 60)]
TRUCK_COLOURS = [(235, 235, 235), (200, 200, 200), (180, 120, 40), (40, 60, 170), (60, 170, 230), (90, 140, 60)]
CLOTHES = [(40, 40, 160), (160, 60, 30), (30, 30, 30), (60, 140, 220), (200, 200, 200), (50, 120, 50),
           (130, 50, 130), (20, 180, 230)]


@dataclass(frozen=True)
class Camera:
    """Pinhole camera `cam_height` m over a flat road; `focal` and `horizon` in pixels."""

    width: int
    height: int
    focal: float
    horizon: float
    cam_height: float = 1.4

    @classmethod
    def default(cls, width: int, height: int, horizon_share: float = 0.42) -> Camera:
        """A dash camera with ~51 degrees horizontal field of view and the horizon at `horizon_share` of height.

        (A narrower view than most dash cameras: objects come out larger, which a tiny detector at 320 px needs.)
        """
        return cls(width, height, focal=1.05 * width, horizon=horizon_share * height)

    def scale(self, z: float) -> float:
        """Pixels per metre at distance `z` m."""
        return self.focal / z

    def project(self, x: float, y: float, z: float) -> tuple[float, float]:
        """Pixel (u, v) of the world point (x, y, z) (metres; y up from the road)."""
        return self.width / 2 + self.focal * x / z, self.horizon + self.focal * (self.cam_height - y) / z

    def ground_z(self, v: float) -> float:
        """Distance (m) of the road point seen at image row `v` (rows below the horizon only)."""
        return self.focal * self.cam_height / max(v - self.horizon, 1e-3)


class Frame:
    """Maps object-normalised coordinates (nx 0..1 left to right, ny 0..1 bottom to top) to pixels."""

    def __init__(self, u: float, v: float, w: float, h: float):
        self.u, self.v, self.w, self.h = u, v, w, h

    def pt(self, nx: float, ny: float) -> tuple[float, float]:
        return self.u + (nx - 0.5) * self.w, self.v - ny * self.h

    def poly(self, pts, colour) -> Prim:
        return "poly", np.array([self.pt(x, y) for x, y in pts], np.float32), colour

    def rect(self, x1, y1, x2, y2, colour) -> Prim:
        return self.poly([(x1, y1), (x2, y1), (x2, y2), (x1, y2)], colour)

    def circle(self, nx, ny, r_w, colour) -> Prim:
        """A disc at (nx, ny) with radius `r_w` as a share of the object's width."""
        return "circle", self.pt(nx, ny), max(r_w * self.w, 0.7), colour

    def line(self, a, b, colour, t_w) -> Prim:
        return "line", self.pt(*a), self.pt(*b), colour, max(1, int(round(t_w * self.w)))


def _shade(colour, k: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * k))) for c in colour)


# --------------------------------------------------------------------------------------------- objects


def vehicle(cam: Camera, x: float, z: float, cls: int, colour, view: str, rng: np.random.Generator) -> Item:
    """A car or truck standing on the road at (x, z): `view` "rear" (same direction), "front" (oncoming) or
    "side_l"/"side_r" (crossing, heading left/right)."""
    s = cam.scale(z)
    u, v = cam.project(x, 0.0, z)
    lights: list = []
    dark, glass, black = _shade(colour, 0.55), (70, 55, 45), (25, 25, 25)
    if view.startswith("side"):
        length, height = (4.3, 1.45) if cls == CAR else (8.5, 3.4)
        f = Frame(u, v, length * s, height * s)
        flip = view == "side_l"
        X = (lambda n: 1 - n) if flip else (lambda n: n)
        if cls == CAR:
            prims = [f.poly([(X(0.0), 0.12), (X(1.0), 0.12), (X(1.0), 0.55), (X(0.0), 0.55)], colour),
                     f.poly([(X(0.22), 0.55), (X(0.78), 0.55), (X(0.66), 1.0), (X(0.32), 1.0)], colour),
                     f.poly([(X(0.27), 0.6), (X(0.48), 0.6), (X(0.48), 0.93), (X(0.34), 0.93)], glass),
                     f.poly([(X(0.52), 0.6), (X(0.73), 0.6), (X(0.64), 0.93), (X(0.52), 0.93)], glass),
                     f.circle(X(0.2), 0.16, 0.075, black), f.circle(X(0.8), 0.16, 0.075, black),
                     f.circle(X(0.2), 0.16, 0.035, (150, 150, 150)), f.circle(X(0.8), 0.16, 0.035, (150, 150, 150))]
            front = X(0.98)
        else:
            cab = CAR_COLOURS[rng.integers(len(CAR_COLOURS))]
            prims = [f.rect(X(0.0), 0.12, X(0.74), 1.0, colour), f.rect(X(0.75), 0.12, X(1.0), 0.78, cab),
                     f.rect(X(0.84), 0.45, X(0.98), 0.72, glass), f.rect(X(0.0), 0.1, X(1.0), 0.16, black)]
            for w in (0.1, 0.22, 0.86):
                prims += [f.circle(X(w), 0.1, 0.038, black), f.circle(X(w), 0.1, 0.016, (150, 150, 150))]
            front = X(0.99)
        lights.append((*f.pt(front, 0.4), 0.05 * s, (200, 240, 255)))
        return Item(z, prims, cls, NAMES[cls], lights=lights)
    width, height = (1.8, 1.45) if cls == CAR else (2.5, 3.4)
    f = Frame(u, v, width * s, height * s)
    if cls == CAR:
        prims = [f.rect(0.06, 0.0, 0.22, 0.2, black), f.rect(0.78, 0.0, 0.94, 0.2, black),
                 f.poly([(0.0, 0.14), (1.0, 0.14), (1.0, 0.6), (0.0, 0.6)], colour),
                 f.poly([(0.1, 0.6), (0.9, 0.6), (0.78, 1.0), (0.22, 1.0)], colour),
                 f.poly([(0.16, 0.63), (0.84, 0.63), (0.74, 0.94), (0.26, 0.94)], glass),
                 f.rect(0.0, 0.14, 1.0, 0.22, dark)]
        lamp_y = (0.42, 0.53)
    else:
        prims = [f.rect(0.06, 0.0, 0.2, 0.15, black), f.rect(0.8, 0.0, 0.94, 0.15, black),
                 f.rect(0.0, 0.12, 1.0, 1.0, colour), f.rect(0.0, 0.12, 1.0, 0.2, black)]
        lamp_y = (0.22, 0.3)
        if view == "rear":
            prims.append(f.line((0.5, 0.22), (0.5, 0.97), dark, 0.015))
        else:
            prims.append(f.rect(0.1, 0.55, 0.9, 0.9, glass))
    if view == "rear":
        lamp, glow = (20, 20, 210), (40, 40, 255)
        prims.append(f.rect(0.4, 0.24, 0.6, 0.33, (230, 230, 230)))  # number plate
    else:
        lamp, glow = (200, 235, 245), (210, 245, 255)
        prims.append(f.rect(0.3, 0.22, 0.7, 0.38, (45, 45, 45)))  # grille
        if cls == CAR:
            prims[4] = f.poly([(0.16, 0.63), (0.84, 0.63), (0.74, 0.94), (0.26, 0.94)], (110, 95, 80))
    for x1, x2 in ((0.03, 0.2), (0.8, 0.97)):
        prims.append(f.rect(x1, lamp_y[0], x2, lamp_y[1], lamp))
        lights.append((*f.pt((x1 + x2) / 2, sum(lamp_y) / 2), 0.09 * width * s, glow))
    return Item(z, prims, cls, NAMES[cls], lights=lights)


def pedestrian(cam: Camera, x: float, z: float, rng: np.random.Generator, stride: float | None = None) -> Item:
    """A person 1.6-1.9 m tall standing or walking at (x, z); `stride` 0..1 sets the leg spread."""
    s = cam.scale(z)
    u, v = cam.project(x, 0.0, z)
    height = rng.uniform(1.6, 1.9)
    f = Frame(u, v, 0.55 * s, height * s)
    top, legs = CLOTHES[rng.integers(len(CLOTHES))], CLOTHES[rng.integers(len(CLOTHES))]
    skin = [(150, 180, 220), (90, 120, 170), (60, 80, 110)][rng.integers(3)]
    spread = 0.18 * (rng.uniform(0, 1) if stride is None else stride)
    prims = [f.poly([(0.33 - spread, 0.0), (0.47 - spread, 0.0), (0.5, 0.48), (0.32, 0.48)], _shade(legs, 0.8)),
             f.poly([(0.53 + spread, 0.0), (0.67 + spread, 0.0), (0.68, 0.48), (0.5, 0.48)], legs),
             f.rect(0.18, 0.46, 0.82, 0.82, top),
             f.line((0.15, 0.8), (0.05, 0.5), _shade(top, 0.8), 0.14),
             f.line((0.85, 0.8), (0.95, 0.5), _shade(top, 0.8), 0.14),
             f.rect(0.42, 0.8, 0.58, 0.85, skin),
             f.circle(0.5, 0.91, 0.22, skin),
             f.poly([(0.28, 0.93), (0.72, 0.93), (0.7, 1.0), (0.3, 1.0)], (30, 30, 40))]
    return Item(z, prims, PEDESTRIAN, "pedestrian")


def cyclist(cam: Camera, x: float, z: float, rng: np.random.Generator, heading: str = "right",
            pedal: float | None = None) -> Item:
    """A person riding a bicycle seen from the side (1.75 m long, ~1.8 m tall) at (x, z)."""
    s = cam.scale(z)
    u, v = cam.project(x, 0.0, z)
    f = Frame(u, v, 1.75 * s, 1.8 * s)
    X = (lambda n: n) if heading == "right" else (lambda n: 1 - n)
    frame_c = [(30, 30, 200), (200, 120, 20), (20, 20, 20), (40, 170, 40), (0, 200, 240)][rng.integers(5)]
    top = CLOTHES[rng.integers(len(CLOTHES))]
    skin = [(150, 180, 220), (90, 120, 170), (60, 80, 110)][rng.integers(3)]
    r = 0.2
    p = rng.uniform(0, 2 * np.pi) if pedal is None else pedal
    foot = (X(0.47 + 0.08 * np.cos(p)), 0.2 + 0.08 * 1.75 / 1.8 * np.sin(p))
    prims = [f.circle(X(0.2), 0.19, r, (20, 20, 20)), f.circle(X(0.2), 0.19, r * 0.75, (120, 120, 120)),
             f.circle(X(0.8), 0.19, r, (20, 20, 20)), f.circle(X(0.8), 0.19, r * 0.75, (120, 120, 120)),
             f.line((X(0.2), 0.19), (X(0.47), 0.2), frame_c, 0.03),
             f.line((X(0.47), 0.2), (X(0.4), 0.52), frame_c, 0.03),
             f.line((X(0.4), 0.48), (X(0.72), 0.5), frame_c, 0.03),
             f.line((X(0.72), 0.5), (X(0.8), 0.19), frame_c, 0.03),
             f.line((X(0.47), 0.2), (X(0.72), 0.5), frame_c, 0.03),
             f.line((X(0.68), 0.58), (X(0.76), 0.6), (30, 30, 30), 0.03),
             f.line((X(0.4), 0.55), foot, _shade(top, 0.6), 0.07),
             f.line((X(0.4), 0.55), (X(0.58), 0.87), top, 0.12),
             f.line((X(0.56), 0.84), (X(0.7), 0.6), _shade(top, 0.8), 0.05),
             f.circle(X(0.6), 0.93, 0.065, skin), f.circle(X(0.6), 0.96, 0.05, (30, 30, 200))]
    return Item(z, prims, CYCLIST, "cyclist")


def pole(cam: Camera, x: float, z: float, top: float, colour=(110, 110, 110), arm_to: float | None = None) -> Item:
    """A vertical pole from the road up to `top` m (and an arm across to x=`arm_to`): clutter, never labelled."""
    s = cam.scale(z)
    (u0, v0), (u1, v1) = cam.project(x, 0.0, z), cam.project(x, top, z)
    t = max(1.0, 0.12 * s)
    prims = [("poly", np.array([(u0 - t / 2, v0), (u0 + t / 2, v0), (u1 + t / 2, v1), (u1 - t / 2, v1)],
                               np.float32), colour)]
    if arm_to is not None:
        ua, _ = cam.project(arm_to, top, z)
        prims.append(("line", (u1, v1), (ua, v1), colour, max(1, int(t * 0.8))))
    return Item(z + 0.01, prims, -1, "pole")


def traffic_light(cam: Camera, x: float, z: float, mount: float, state: int) -> Item:
    """A three-lamp signal head (0.5 x 1.3 m) whose bottom is `mount` m up; lamp `state` 0 red/1 amber/2 green lit."""
    s = cam.scale(z)
    u, v = cam.project(x, mount, z)
    f = Frame(u, v, 0.5 * s, 1.3 * s)
    prims = [f.rect(0.0, 0.0, 1.0, 1.0, (28, 28, 28)), f.rect(0.1, 0.03, 0.9, 0.97, (45, 45, 45))]
    lit = [(40, 40, 255), (30, 190, 255), (120, 255, 60)]
    lights = []
    for k, ny in enumerate((0.8, 0.5, 0.2)):
        on = k == state
        prims.append(f.circle(0.5, ny, 0.3, lit[k] if on else _shade(lit[k], 0.25)))
        if on:
            lights.append((*f.pt(0.5, ny), 0.5 * f.w, lit[k]))
    return Item(z, prims, TRAFFIC_LIGHT, "traffic_light", lights=lights)


def _octagon(f: Frame, scale: float):
    a = [np.pi / 8 + k * np.pi / 4 for k in range(8)]
    return [(0.5 + 0.5 * scale * np.cos(t), 0.5 + 0.5 * scale * np.sin(t)) for t in a]


def stop_sign(cam: Camera, x: float, z: float, centre: float, size: float = 0.9) -> Item:
    """A red octagon with a white rim and STOP on it, `size` m across, centred `centre` m up."""
    s = cam.scale(z)
    u, v = cam.project(x, centre - size / 2, z)
    f = Frame(u, v, size * s, size * s)
    prims = [f.poly(_octagon(f, 1.0), (235, 235, 235)), f.poly(_octagon(f, 0.86), (30, 30, 200))]
    px = f.w
    if px >= 12:
        scale = px / 95
        (tw, th), _ = cv2.getTextSize("STOP", cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, int(px / 40)))
        prims.append(("text", "STOP", (u - tw / 2, v - f.h / 2 + th / 2), scale, (245, 245, 245),
                      max(1, int(px / 40))))
    else:
        prims.append(f.rect(0.25, 0.44, 0.75, 0.56, (235, 235, 235)))
    return Item(z, prims, STOP_SIGN, "stop_sign")


# ----------------------------------------------------------------------------------------- distractors


def red_disc_board(cam: Camera, x: float, z: float, centre: float, size: float, rng: np.random.Generator) -> Item:
    """Looks like a stop sign, is not: a red round board (no-entry sign, logo, advert disc)."""
    s = cam.scale(z)
    u, v = cam.project(x, centre - size / 2, z)
    f = Frame(u, v, size * s, size * s)
    red = (int(rng.integers(20, 50)), int(rng.integers(20, 50)), int(rng.integers(180, 235)))
    style = rng.integers(3)
    prims = []
    if style == 0:  # no-entry: red disc, white bar
        prims += [f.circle(0.5, 0.5, 0.5, red), f.rect(0.2, 0.42, 0.8, 0.58, (240, 240, 240))]
    elif style == 1:  # advert: square panel with a big red disc
        prims += [f.rect(-0.15, -0.15, 1.15, 1.15, (230, 230, 230)), f.circle(0.5, 0.5, 0.5, red),
                  f.circle(0.5, 0.5, 0.22, (240, 240, 240))]
    else:  # white-rimmed red disc (a prohibition sign)
        prims += [f.circle(0.5, 0.5, 0.5, (235, 235, 235)), f.circle(0.5, 0.5, 0.42, red)]
    return Item(z, prims, -1, "red_disc_board", looks_like=STOP_SIGN)


def signal_like_box(cam: Camera, x: float, z: float, mount: float, rng: np.random.Generator) -> Item:
    """Looks like a traffic light, is not: a dark box on a tall pole (camera housing, pedestrian signal, lamp)."""
    s = cam.scale(z)
    u, v = cam.project(x, mount, z)
    w, h = rng.uniform(0.35, 0.55), rng.uniform(0.8, 1.4)
    f = Frame(u, v, w * s, h * s)
    prims = [f.rect(0.0, 0.0, 1.0, 1.0, (30, 30, 30))]
    lights = []
    style = rng.integers(3)
    if style == 0:  # unlit three-lamp head (dark, no colour)
        for ny in (0.8, 0.5, 0.2):
            prims.append(f.circle(0.5, ny, 0.28, (60, 60, 60)))
    elif style == 1:  # a single orange street-lamp head
        prims.append(f.circle(0.5, 0.75, 0.35, (60, 170, 250)))
        lights.append((*f.pt(0.5, 0.75), 0.5 * f.w, (80, 180, 255)))
    else:  # an information box with a small grid of LEDs
        for ny in (0.3, 0.5, 0.7):
            for nx in (0.3, 0.7):
                prims.append(f.circle(nx, ny, 0.1, (70, 90, 230) if rng.random() < 0.5 else (80, 200, 80)))
    return Item(z, prims, -1, "signal_like_box", looks_like=TRAFFIC_LIGHT, lights=lights)


def verge_box(cam: Camera, x: float, z: float, rng: np.random.Generator) -> Item:
    """Looks like a car or truck, is not: a crate, container or skip standing on the verge (no wheels, lamps)."""
    s = cam.scale(z)
    u, v = cam.project(x, 0.0, z)
    w, h = rng.uniform(1.5, 2.8), rng.uniform(0.9, 3.2)
    f = Frame(u, v, w * s, h * s)
    colour = tuple(int(c) for c in rng.choice(CAR_COLOURS + TRUCK_COLOURS))
    prims = [f.rect(0.0, 0.0, 1.0, 0.85, colour), f.poly([(0.0, 0.85), (1.0, 0.85), (0.9, 1.0), (0.1, 1.0)],
                                                         _shade(colour, 1.2))]
    if rng.random() < 0.5:
        prims.append(f.rect(0.0, 0.0, 1.0, 0.1, (35, 35, 35)))  # dark base, like a bumper line
    if rng.random() < 0.5:
        for k in range(1, 4):
            prims.append(f.line((k / 4, 0.05), (k / 4, 0.8), _shade(colour, 0.7), 0.02))
    return Item(z, prims, -1, "verge_box", looks_like=TRUCK if h > 2.2 else CAR)
