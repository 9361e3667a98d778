"""Domain randomisation for synthetic scenes meant to pre-train a detector for real photographs.

A real road set is shot by many cameras: different mounting heights (dash, roadside pole, a person's hand),
lenses (wide to telephoto, so objects from tiny to frame-filling), exposure, white balance, focus and JPEG
compression, over surfaces with texture. The flat-shaded dash-cam scenes have one camera and no texture, so a
detector pre-trained on them learns shortcuts (flat colour = object) that real images never offer.

`random_camera` draws the camera; `sample_look` draws the photographic effects of one image and `apply_look`
applies them (colour only: blur, texture, colour cast, vignetting, resolution loss; nothing moves, so the labels
stay exact). `jpeg_quality` of the look is the quality the image is written with.
"""

from __future__ import annotations

import cv2
import numpy as np

from data_scripts.road_render import Camera


def random_camera(width: int, height: int, rng: np.random.Generator) -> Camera:
    """A camera 1.1-3.2 m above the road, focal 0.55-2.2 x width (about 110 to 26 degrees), horizon 30-55 %."""
    focal = width * float(np.exp(rng.uniform(np.log(0.55), np.log(2.2))))
    return Camera(width, height, focal=focal, horizon=float(rng.uniform(0.30, 0.55)) * height,
                  cam_height=float(rng.uniform(1.1, 3.2)))


def sample_look(rng: np.random.Generator) -> dict:
    """The photographic effects of one image (plain numbers, stored in the scene's metadata)."""
    return {"texture": float(rng.uniform(0.05, 0.3)), "texture_cells": int(rng.integers(4, 40)),
            "grain": float(rng.uniform(0, 6)),
            "colour_gain": [float(g) for g in rng.uniform(0.8, 1.2, 3)], "gamma": float(rng.uniform(0.7, 1.4)),
            "saturation": float(rng.uniform(0.6, 1.4)),
            "defocus": float(rng.uniform(0.4, 2.0)) if rng.random() < 0.4 else 0.0,
            "vignette": float(rng.uniform(0.1, 0.5)) if rng.random() < 0.4 else 0.0,
            "downscale": float(rng.uniform(0.35, 0.8)) if rng.random() < 0.3 else 1.0,
            "jpeg_quality": int(rng.integers(30, 96)), "seed": int(rng.integers(2**31 - 1))}


def apply_look(img: np.ndarray, look: dict) -> np.ndarray:
    """A new BGR uint8 image [H, W, 3] with the look's texture, colour, blur, vignetting and resolution loss."""
    h, w = img.shape[:2]
    rng = np.random.default_rng(look["seed"])
    out = img.astype(np.float32)
    cells = look["texture_cells"]
    field = rng.normal(0, 1, (max(2, cells * h // w), cells)).astype(np.float32)
    field = cv2.resize(field, (w, h), interpolation=cv2.INTER_CUBIC)
    out *= (1 + look["texture"] * np.clip(field, -2.5, 2.5))[..., None]  # uneven surfaces and light
    if look["grain"]:
        out += rng.normal(0, look["grain"], (h, w, 1)).astype(np.float32)  # fine texture (luminance grain)
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * look["saturation"]
    out *= np.array(look["colour_gain"], np.float32)  # white balance
    out = 255 * (np.clip(out, 0, 255) / 255) ** look["gamma"]  # exposure curve
    if look["vignette"]:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        out *= (1 - look["vignette"] * np.clip(r2 / 2, 0, 1))[..., None]
    out = np.clip(out, 0, 255).astype(np.uint8)
    if look["defocus"]:
        out = cv2.GaussianBlur(out, (0, 0), look["defocus"])
    if look["downscale"] < 1:  # a small sensor or a re-posted photo: detail lost, size kept
        small = cv2.resize(out, (max(8, int(w * look["downscale"])), max(8, int(h * look["downscale"]))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out
