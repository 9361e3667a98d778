"""Buses and motorbikes for the synthetic scenes: the classes a real road set often has that the dash-cam set lacks.

Drawn like `road_render`'s vehicles (a world position, primitives in object-normalised coordinates). A
motorbike is a scooter or motorcycle with or without a rider; its label box covers bike and rider (as the
cyclist's does), and a parked one stands on the kerb without a rider.
"""

from __future__ import annotations

import numpy as np

from data_scripts.road_raster import Item
from data_scripts.road_render import BUS, CAR_COLOURS, CLOTHES, MOTORBIKE, Camera, Frame, _shade

BUS_COLOURS = [(40, 200, 230), (200, 120, 30), (235, 235, 235), (40, 40, 190), (60, 150, 60), (150, 60, 140),
               (30, 140, 240), (120, 120, 120)]


def bus(cam: Camera, x: float, z: float, colour, view: str, rng: np.random.Generator) -> Item:
    """A bus (2.55 m wide, 3.2 m tall, 11 m long) on the road at (x, z); `view` rear, front, side_l or side_r."""
    s = cam.scale(z)
    u, v = cam.project(x, 0.0, z)
    glass, black, dark = (80, 60, 50), (25, 25, 25), _shade(colour, 0.6)
    stripe = CAR_COLOURS[rng.integers(len(CAR_COLOURS))]
    lights: list = []
    if view.startswith("side"):
        f = Frame(u, v, 11.0 * s, 3.2 * s)
        X = (lambda n: 1 - n) if view == "side_l" else (lambda n: n)
        prims = [f.rect(X(0.0), 0.1, X(1.0), 1.0, colour), f.rect(X(0.0), 0.3, X(1.0), 0.36, stripe)]
        n_win = int(rng.integers(5, 9))
        for k in range(n_win):
            a = 0.08 + k * 0.84 / n_win
            prims.append(f.rect(X(a), 0.55, X(a + 0.84 / n_win - 0.015), 0.9, glass))
        prims.append(f.rect(X(0.9), 0.12, X(0.97), 0.85, glass))  # door
        for w in (0.18, 0.8):
            prims += [f.circle(X(w), 0.1, 0.028, black), f.circle(X(w), 0.1, 0.012, (150, 150, 150))]
        lights.append((*f.pt(X(0.995), 0.25), 0.04 * s, (200, 240, 255)))
    else:
        f = Frame(u, v, 2.55 * s, 3.2 * s)
        prims = [f.rect(0.05, 0.0, 0.2, 0.1, black), f.rect(0.8, 0.0, 0.95, 0.1, black),
                 f.rect(0.0, 0.08, 1.0, 1.0, colour), f.rect(0.0, 0.3, 1.0, 0.36, stripe),
                 f.rect(0.0, 0.08, 1.0, 0.14, dark)]
        if view == "front":
            prims += [f.rect(0.05, 0.45, 0.95, 0.92, glass), f.rect(0.2, 0.93, 0.8, 0.98, black)]  # windscreen, sign
            lamp = (200, 235, 245)
        else:
            prims += [f.rect(0.12, 0.62, 0.88, 0.9, glass), f.rect(0.4, 0.17, 0.6, 0.24, (230, 230, 230))]
            lamp = (20, 20, 210)
        for x1, x2 in ((0.04, 0.16), (0.84, 0.96)):
            prims.append(f.rect(x1, 0.18, x2, 0.26, lamp))
            lights.append((*f.pt((x1 + x2) / 2, 0.22), 0.06 * 2.55 * s, lamp))
    return Item(z, prims, BUS, "bus", lights=lights)


def motorbike(cam: Camera, x: float, z: float, rng: np.random.Generator, view: str = "side_r",
              rider: bool = True) -> Item:
    """A scooter or motorcycle at (x, z), 1.9 m long; `view` side_l, side_r, rear or front; with or without rider."""
    s = cam.scale(z)
    u, v = cam.project(x, 0.0, z)
    body = [(30, 30, 30), (200, 200, 200), (30, 30, 180), (180, 90, 20), (20, 20, 20), (40, 140, 40)][rng.integers(6)]
    top = CLOTHES[rng.integers(len(CLOTHES))]
    skin = [(150, 180, 220), (90, 120, 170), (60, 80, 110)][rng.integers(3)]
    helmet = [(30, 30, 30), (230, 230, 230), (30, 30, 200), (200, 150, 30)][rng.integers(4)]
    black, grey = (20, 20, 20), (120, 120, 120)
    height = 1.65 if rider else 1.15
    lights: list = []
    if view.startswith("side"):
        f = Frame(u, v, 1.9 * s, height * s)
        X = (lambda n: 1 - n) if view == "side_l" else (lambda n: n)
        k = 1.65 / height  # rider-less frames are shorter: keep the bike's proportions
        r = 0.17
        prims = [f.circle(X(0.17), 0.2 * k * 0.7, r, black), f.circle(X(0.17), 0.2 * k * 0.7, r * 0.5, grey),
                 f.circle(X(0.83), 0.2 * k * 0.7, r, black), f.circle(X(0.83), 0.2 * k * 0.7, r * 0.5, grey),
                 f.poly([(X(0.25), 0.2 * k), (X(0.72), 0.2 * k), (X(0.68), 0.42 * k), (X(0.3), 0.45 * k)], body),
                 f.poly([(X(0.25), 0.42 * k), (X(0.55), 0.42 * k), (X(0.55), 0.48 * k), (X(0.22), 0.5 * k)],
                        _shade(body, 0.6)),
                 f.line((X(0.72), 0.3 * k), (X(0.8), 0.62 * k), _shade(body, 0.8), 0.04),
                 f.line((X(0.78), 0.62 * k), (X(0.7), 0.66 * k), black, 0.03)]
        lights.append((*f.pt(X(0.84), 0.55 * k), 0.03 * s, (200, 240, 255)))
        if rider:
            prims += [f.line((X(0.42), 0.5), (X(0.6), 0.3), _shade(top, 0.6), 0.08),
                      f.line((X(0.42), 0.52), (X(0.5), 0.85), top, 0.14),
                      f.line((X(0.52), 0.8), (X(0.72), 0.65), _shade(top, 0.8), 0.06),
                      f.circle(X(0.52), 0.92, 0.075, helmet), f.circle(X(0.56), 0.9, 0.03, skin)]
        return Item(z, prims, MOTORBIKE, "motorbike", lights=lights)
    f = Frame(u, v, 0.75 * s, height * s)
    k = 1.65 / height
    prims = [f.rect(0.42, 0.0, 0.58, 0.25 * k, black), f.rect(0.2, 0.2 * k, 0.8, 0.45 * k, body),
             f.line((0.05, 0.55 * k), (0.95, 0.55 * k), black, 0.05)]
    lamp = (20, 20, 210) if view == "rear" else (200, 235, 245)
    prims.append(f.rect(0.38, 0.3 * k, 0.62, 0.38 * k, lamp))
    lights.append((*f.pt(0.5, 0.34 * k), 0.06 * s, lamp))
    if rider:
        prims += [f.rect(0.22, 0.45, 0.78, 0.82, top), f.rect(0.15, 0.3, 0.35, 0.5, _shade(top, 0.7)),
                  f.rect(0.65, 0.3, 0.85, 0.5, _shade(top, 0.7)), f.circle(0.5, 0.91, 0.2, helmet)]
    return Item(z, prims, MOTORBIKE, "motorbike", lights=lights)
