"""What the camera and the weather do to a rendered frame: lighting, lamp glow, glare, roll, blur, rain, noise.

Only `roll` moves pixels, so it also transforms the id buffer the labels come from (nearest-neighbour, same
matrix); every other effect changes colours only and leaves the labels as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Lighting:
    """A time of day: `gain` scales brightness, `tint` (B, G, R) colours it, `glow` scales lamp halos."""

    name: str
    gain: float
    tint: tuple[float, float, float]
    glow: float
    noise: float  # sensor noise sigma in grey levels (darker scenes are noisier)


LIGHTING = {
    "day": Lighting("day", 1.0, (1.0, 1.0, 1.0), 0.0, 3.0),
    "dusk": Lighting("dusk", 0.62, (0.8, 0.9, 1.12), 0.55, 5.0),
    "night": Lighting("night", 0.32, (1.15, 0.95, 0.85), 1.0, 7.0),
}


def apply_lighting(img: np.ndarray, light: Lighting, lamps: list, gain_jitter: float = 1.0) -> np.ndarray:
    """Darken/tint the frame for `light` and add halos around `lamps` [(x, y, radius px, BGR)] (new array)."""
    if light.gain == 1.0 and gain_jitter == 1.0 and light.tint == (1.0, 1.0, 1.0) and not light.glow:
        return img
    lut = np.stack([np.clip(np.arange(256) * light.gain * gain_jitter * t, 0, 255) for t in light.tint], 1)
    out = cv2.LUT(img, lut.astype(np.uint8).reshape(256, 1, 3))
    if light.glow and lamps:
        h, w = img.shape[:2]
        f = 4  # halos are smooth: draw and blur them at quarter resolution
        halo = np.zeros((h // f + 1, w // f + 1, 3), np.float32)
        for x, y, r, colour in lamps:
            if -3 * r < x < w + 3 * r and -3 * r < y < h + 3 * r:
                cv2.circle(halo, (int(x / f), int(y / f)), max(1, int(1.6 * r / f)),
                           tuple(c * light.glow for c in colour), -1)
        halo = cv2.GaussianBlur(halo, (0, 0), 2.0)
        halo = cv2.resize(halo, (w, h), interpolation=cv2.INTER_LINEAR)
        out = cv2.add(out, np.clip(halo, 0, 255).astype(np.uint8))
        # the lamps themselves stay bright at night
        for x, y, r, colour in lamps:
            cv2.circle(out, (int(round(x)), int(round(y))), max(1, int(r * 0.45)), colour, -1, cv2.LINE_AA)
    return out


def glare(img: np.ndarray, x: float, y: float, radius: float, strength: float) -> np.ndarray:
    """A low sun or a headlight in the lens: a bright radial wash at (x, y) with a horizontal streak."""
    h, w = img.shape[:2]
    f = 4
    layer = np.zeros((h // f + 1, w // f + 1), np.float32)
    cv2.circle(layer, (int(x / f), int(y / f)), max(1, int(radius / f)), 1.0, -1)
    cv2.line(layer, (0, int(y / f)), (w // f, int(y / f)), 0.35, max(1, int(radius / f / 6)))
    layer = cv2.GaussianBlur(layer, (0, 0), max(1.0, radius / f / 2))
    layer = cv2.resize(layer, (w, h)) * (255 * strength)
    wash = cv2.merge([layer * 0.85, layer * 0.95, layer])
    return cv2.add(img, np.clip(wash, 0, 255).astype(np.uint8))


def roll_matrix(w: int, h: int, degrees: float) -> np.ndarray:
    """2x3 affine that rolls the frame about its centre by `degrees` and zooms just enough to hide the corners."""
    t = np.deg2rad(abs(degrees))
    zoom = max((w * np.cos(t) + h * np.sin(t)) / w, (w * np.sin(t) + h * np.cos(t)) / h)
    return cv2.getRotationMatrix2D((w / 2, h / 2), degrees, zoom)


def roll(img: np.ndarray, ids: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Roll the camera: the frame with bilinear, the id buffer with nearest-neighbour interpolation."""
    h, w = img.shape[:2]
    m = roll_matrix(w, h, degrees)
    return (cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            cv2.warpAffine(ids, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0))


def motion_blur(img: np.ndarray, length: int, degrees: float) -> np.ndarray:
    """Blur along a line of `length` px at `degrees` (camera shake or a slow shutter)."""
    if length < 2:
        return img
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = np.cos(np.deg2rad(degrees)) * c, np.sin(np.deg2rad(degrees)) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return cv2.filter2D(img, -1, k / k.sum())


def rain(img: np.ndarray, rng: np.random.Generator, density: float) -> np.ndarray:
    """Rain: slanted light streaks (`density` streaks per 1,000 px) over a slightly washed-out frame."""
    h, w = img.shape[:2]
    n = int(density * h * w / 1000)
    streaks = np.zeros((h, w), np.uint8)
    slant = rng.uniform(-0.3, 0.3)
    xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
    lens = rng.uniform(0.02, 0.06, n) * h
    for x, y, ln in zip(xs, ys, lens, strict=False):
        cv2.line(streaks, (int(x), int(y)), (int(x + slant * ln), int(y + ln)), int(rng.integers(90, 200)), 1)
    washed = cv2.addWeighted(img, 0.8, np.full_like(img, 150), 0.2, 0)
    return cv2.add(washed, cv2.merge([streaks, streaks, streaks]))


def sensor_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian pixel noise with standard deviation `sigma` grey levels (seeded from `rng`)."""
    # OpenCV's generator is ~4x faster than NumPy's here; seeding it from `rng` keeps every image reproducible.
    cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
    noise = np.empty(img.shape, np.int16)
    cv2.randn(noise, (0.0,) * 4, (float(sigma),) * 4)
    return cv2.add(img, noise, dtype=cv2.CV_8U)
