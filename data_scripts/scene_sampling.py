"""What goes into one synthetic dash-camera scene of `make_driving_scenes`, decided before anything is drawn.

`SceneConfig` says what to generate; `place_object` / `place_distractor` put one labelled object or one
look-alike distractor at a plausible place on the road; `sample_scene` decides the road, objects, distractors,
lighting and effects of one image as a `Scene`. Drawing and writing the data set is `make_driving_scenes`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from data_scripts import road_extra_classes as rx
from data_scripts import road_render as rr
from data_scripts.road_backdrop import RoadLayout, Scenery
from data_scripts.road_domain import random_camera, sample_look

LIGHTINGS = ("day", "dusk", "night")
DOMAINS = ("dashcam", "randomised")
EXTRA_MIX = (0.10, 0.14)  # weights of bus and motorbike when a class map names them and class_mix has six entries


@dataclass
class SceneConfig:
    """What to generate. Shares are fractions of images; `class_mix` weights the generator classes in name order
    (car, truck, pedestrian, cyclist, traffic_light, stop_sign[, bus, motorbike]) when an object slot is filled.

    class_map: generator class -> output class name; only mapped classes are generated (default: the six
    dash-cam classes as themselves). Several generator classes may map onto one output class (cyclist and
    motorbike -> motorbike). names: the output classes in id order (default: the map's targets in order of
    first appearance); list the target data set's names here so scene labels and real labels share ids.
    domain: "dashcam" (one dash camera, flat shading: the reference scenes) or "randomised" (camera height and
    lens, texture, colour, exposure, defocus, vignetting, resolution loss and JPEG quality drawn per image:
    for pre-training a detector meant for real photographs; data_scripts.road_domain).
    """

    n_train: int = 1000
    n_val: int = 200
    n_pool: int = 500
    width: int = 640
    height: int = 384
    seed: int = 0
    class_mix: tuple[float, ...] = (0.40, 0.13, 0.22, 0.04, 0.11, 0.10)
    rare_class: int = rr.CYCLIST
    pool_rare_boost: float = 3.0  # the pool's weight for the rare class = this x class_mix[rare_class]
    objects_per_image: float = 5.0  # mean number of object slots in a non-background image
    background_share: float = 0.08  # train and val
    pool_background_share: float = 0.25
    distractor_rate: float = 0.1  # mean look-alike distractors per train image
    eval_distractor_rate: float = 1.5  # mean look-alike distractors per val / pool image
    min_visible: float = 0.3  # objects less visible than this are not placed
    lighting_mix: tuple[float, float, float] = (0.6, 0.25, 0.15)  # day, dusk, night
    rain_share: float = 0.15
    blur_share: float = 0.25
    glare_share: float = 0.15
    max_roll: float = 3.0  # degrees
    jpeg_quality: int = 90
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    class_map: dict[str, str] = field(default_factory=lambda: {n: n for n in rr.DEFAULT_NAMES})
    names: tuple[str, ...] = ()
    domain: str = "dashcam"

    def __post_init__(self):
        self.class_mix = tuple(float(x) for x in self.class_mix)
        if len(self.class_mix) == len(rr.DEFAULT_NAMES):
            self.class_mix = self.class_mix + EXTRA_MIX
        self.class_map = {str(k): str(v) for k, v in dict(self.class_map).items()}
        unknown = [k for k in self.class_map if k not in rr.NAMES]
        if unknown or not self.class_map or not all(self.class_map.values()):
            raise ValueError(f"class_map: keys must be generator classes ({', '.join(rr.NAMES)}) and values output "
                             f"class names, got {self.class_map}; e.g. pedestrian=person,cyclist=motorbike")
        self.names = tuple(self.names) or tuple(dict.fromkeys(self.class_map.values()))
        missing = sorted(set(self.class_map.values()) - set(self.names))
        if missing or len(set(self.names)) != len(self.names):
            raise ValueError(f"names {list(self.names)} must list every class_map target once (missing: {missing})")
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, got {self.domain!r}")
        self.lighting_mix = tuple(float(x) for x in self.lighting_mix)
        for name in ("n_train", "n_val"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1 (Ultralytics needs a train and a val split), "
                                 f"got {getattr(self, name)}")
        if self.n_pool < 0:
            raise ValueError(f"n_pool must be 0 or more, got {self.n_pool}")
        if self.width < 64 or self.height < 64:
            raise ValueError(f"image size {self.width}x{self.height} is too small; use at least 64x64 "
                             "(objects would be a few pixels)")
        if len(self.class_mix) != len(rr.NAMES) or min(self.class_mix) < 0 or sum(self.class_mix) <= 0:
            raise ValueError(f"class_mix needs {len(rr.DEFAULT_NAMES)} or {len(rr.NAMES)} non-negative weights "
                             f"({', '.join(rr.NAMES)}), got {self.class_mix}")
        if len(self.lighting_mix) != 3 or min(self.lighting_mix) < 0 or sum(self.lighting_mix) <= 0:
            raise ValueError(f"lighting_mix needs 3 non-negative weights (day, dusk, night), got {self.lighting_mix}")
        for name in ("background_share", "pool_background_share", "min_visible", "rain_share", "blur_share",
                     "glare_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} is a share and must lie in [0, 1], got {getattr(self, name)}")
        for name in ("distractor_rate", "eval_distractor_rate", "objects_per_image", "pool_rare_boost", "max_roll"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.rare_class < len(rr.NAMES):
            raise ValueError(f"rare_class must be a class id 0..{len(rr.NAMES) - 1}, got {self.rare_class}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "pool": self.n_pool}

    def class_weights(self, split: str) -> np.ndarray:
        """Probability of each generator class for an object slot (unmapped classes: 0)."""
        w = np.array(self.class_mix, float)
        w[[k for k, n in enumerate(rr.NAMES) if n not in self.class_map]] = 0.0
        if split == "pool":
            w[self.rare_class] *= self.pool_rare_boost
        if w.sum() <= 0:
            raise ValueError(f"class_mix gives every mapped class ({', '.join(self.class_map)}) weight 0")
        return w / w.sum()

    def output_ids(self) -> np.ndarray:
        """Output class id of each generator class (-1: not generated), indexed by generator id."""
        return np.array([self.names.index(self.class_map[n]) if n in self.class_map else -1 for n in rr.NAMES])


# ------------------------------------------------------------------------------------------ placement


def _z(rng, lo: float, hi: float) -> float:
    """A distance in [lo, hi] m, nearer ones a little more likely (as in dash-cam footage)."""
    return lo + (hi - lo) * rng.uniform() ** 1.2


def _roadside(rng, layout: RoadLayout, right_p: float = 0.7, lo: float = 0.3, hi: float = 1.5) -> float:
    if rng.random() < right_p:
        return layout.right_edge + rng.uniform(lo, hi)
    return layout.left_edge - rng.uniform(lo, hi)


def place_object(cls: int, cam: rr.Camera, layout: RoadLayout, rng: np.random.Generator) -> list[rr.Item]:
    """The item(s) for one object of class `cls` at a plausible place (signals and signs come with a pole)."""
    if cls in (rr.CAR, rr.TRUCK):
        colours = rr.CAR_COLOURS if cls == rr.CAR else rr.TRUCK_COLOURS
        colour = colours[rng.integers(len(colours))]
        zmax = 30.0 if cls == rr.CAR else 36.0
        if rng.random() < 0.08:  # crossing at a junction ahead
            x, z = rng.uniform(layout.left_edge - 2, layout.right_edge + 2), _z(rng, 12, zmax)
            return [rr.vehicle(cam, x, z, cls, colour, ["side_l", "side_r"][rng.integers(2)], rng)]
        if rng.random() < 0.12:  # parked at the kerb
            x = (layout.right_edge - 1.1) if rng.random() < 0.7 else (layout.left_edge + 1.1)
            return [rr.vehicle(cam, x, _z(rng, 5, zmax), cls, colour, "rear" if rng.random() < 0.7 else "front", rng)]
        k, oncoming = layout.lanes()[rng.integers(len(layout.lanes()))]
        x = layout.lane_centre(k) + rng.uniform(-0.35, 0.35)
        zmin = 6.0 if k == 0 else 4.5
        return [rr.vehicle(cam, x, _z(rng, zmin, zmax), cls, colour, "front" if oncoming else "rear", rng)]
    if cls == rr.PEDESTRIAN:
        if rng.random() < 0.3:  # crossing the road
            z = layout.crosswalk_z + rng.uniform(0.5, 2.5) if layout.crosswalk_z else _z(rng, 5, 20)
            x = rng.uniform(layout.left_edge, layout.right_edge)
        else:
            z = _z(rng, 4.5, 20)
            x = _roadside(rng, layout, 0.6, 0.3, max(0.5, layout.sidewalk - 0.3))
        return [rr.pedestrian(cam, x, z, rng)]
    if cls == rr.CYCLIST:
        if rng.random() < 0.6:
            x, z = rng.uniform(layout.left_edge, layout.right_edge), _z(rng, 5, 22)
        else:
            x, z = _roadside(rng, layout, 0.6, 0.3, max(0.5, layout.sidewalk)), _z(rng, 5, 22)
        return [rr.cyclist(cam, x, z, rng, ["left", "right"][rng.integers(2)])]
    if cls == rr.TRAFFIC_LIGHT:
        z, state = _z(rng, 7, 25), int(rng.integers(3))
        xp = _roadside(rng, layout, 0.65, 0.3, 1.2)
        if rng.random() < 0.4:  # on an arm over a lane
            k = int(rng.integers(-layout.lanes_left, layout.lanes_right + 1))
            x = layout.lane_centre(k)
            return [rr.pole(cam, xp, z, 5.9, arm_to=x), rr.traffic_light(cam, x, z, 4.7, state)]
        mount = rng.uniform(2.8, 3.8)
        return [rr.pole(cam, xp, z, mount), rr.traffic_light(cam, xp, z, mount, state)]
    if cls == rr.STOP_SIGN:
        z, x = _z(rng, 5, 22), _roadside(rng, layout, 0.75, 0.3, 1.2)
        centre = rng.uniform(2.0, 2.5)
        return [rr.pole(cam, x, z, centre), rr.stop_sign(cam, x, z, centre, rng.uniform(0.75, 0.95))]
    if cls == rr.BUS:
        colour = rx.BUS_COLOURS[rng.integers(len(rx.BUS_COLOURS))]
        if rng.random() < 0.15:  # crossing or turning ahead
            x, z = rng.uniform(layout.left_edge - 3, layout.right_edge + 3), _z(rng, 14, 45)
            return [rx.bus(cam, x, z, colour, ["side_l", "side_r"][rng.integers(2)], rng)]
        k, oncoming = layout.lanes()[rng.integers(len(layout.lanes()))]
        x = layout.lane_centre(k) + rng.uniform(-0.3, 0.3)
        return [rx.bus(cam, x, _z(rng, 7.0, 40), colour, "front" if oncoming else "rear", rng)]
    if cls == rr.MOTORBIKE:
        if rng.random() < 0.25:  # parked at the kerb, no rider
            x = _roadside(rng, layout, 0.6, 0.2, max(0.5, layout.sidewalk - 0.4))
            return [rx.motorbike(cam, x, _z(rng, 3.5, 20), rng, ["side_l", "side_r"][rng.integers(2)], rider=False)]
        k, oncoming = layout.lanes()[rng.integers(len(layout.lanes()))]
        x = layout.lane_centre(k) + rng.uniform(-1.2, 1.2)
        view = ("front" if oncoming else "rear") if rng.random() < 0.6 else ["side_l", "side_r"][rng.integers(2)]
        return [rx.motorbike(cam, x, _z(rng, 4.0, 25), rng, view)]
    raise ValueError(f"unknown class id {cls}")


def place_distractor(cam: rr.Camera, layout: RoadLayout, rng: np.random.Generator) -> list[rr.Item]:
    """One look-alike that is not an object: a red round board, a dark box on a pole, or a crate on the verge."""
    kind = rng.integers(3)
    if kind == 0:
        z, x = _z(rng, 5, 26), _roadside(rng, layout, 0.6, 0.3, 2.0)
        size = rng.uniform(0.7, 1.6)
        centre = rng.uniform(1.8, 3.5)
        return [rr.pole(cam, x, z, centre - size / 2), rr.red_disc_board(cam, x, z, centre, size, rng)]
    if kind == 1:
        z, x = _z(rng, 7, 30), _roadside(rng, layout, 0.6, 0.3, 1.5)
        mount = rng.uniform(2.8, 5.0)
        return [rr.pole(cam, x, z, mount), rr.signal_like_box(cam, x, z, mount, rng)]
    z = _z(rng, 6, 36)
    x = _roadside(rng, layout, 0.6, 0.8, layout.sidewalk + 2.5)
    return [rr.verge_box(cam, x, z, rng)]


def _clutter(cam: rr.Camera, layout: RoadLayout, rng: np.random.Generator) -> list[rr.Item]:
    """Ordinary roadside things present in every split: lamp posts with a lamp head."""
    items = []
    for _ in range(int(rng.integers(0, 4))):
        z = _z(rng, 6, 60)
        side = 1 if rng.random() < 0.5 else -1
        x = layout.right_edge + 0.6 if side > 0 else layout.left_edge - 0.6
        post = rr.pole(cam, x, z, 7.5, colour=(95, 95, 100), arm_to=x - side * 1.5)
        u, v = cam.project(x - side * 1.5, 7.4, z)
        r = max(1.0, 0.25 * cam.scale(z))
        post.prims.append(("circle", (u, v), r, (170, 220, 240)))
        post.kind, post.lights = "lamp_post", [(u, v + r, 2.5 * r, (120, 200, 255))]
        items.append(post)
    return items


@dataclass
class Scene:
    """Everything decided about one image before drawing."""

    layout: RoadLayout
    scenery: Scenery
    camera: rr.Camera
    items: list[rr.Item]
    lighting: str
    effects: dict
    background: bool  # no objects on purpose (distractors and clutter may still be there)


def sample_scene(cfg: SceneConfig, split: str, rng: np.random.Generator) -> Scene:
    """Decide the road, objects, distractors, lighting and effects of one image of `split`."""
    cam = rr.Camera.default(cfg.width, cfg.height, horizon_share=rng.uniform(0.38, 0.46))
    if cfg.domain == "randomised":  # drawn after the default camera: dash-cam scenes stay bit-identical
        cam = random_camera(cfg.width, cfg.height, rng)
    layout, scenery = RoadLayout.sample(rng), Scenery.sample(rng)
    items = _clutter(cam, layout, rng)
    bg_share = cfg.pool_background_share if split == "pool" else cfg.background_share
    background = bool(rng.random() < bg_share)
    if not background:
        weights = cfg.class_weights(split)
        for _ in range(1 + rng.poisson(max(cfg.objects_per_image - 1, 0))):
            items += place_object(int(rng.choice(len(weights), p=weights)), cam, layout, rng)
    rate = cfg.distractor_rate if split == "train" else cfg.eval_distractor_rate
    for _ in range(rng.poisson(rate)):
        items += place_distractor(cam, layout, rng)
    lighting = LIGHTINGS[int(rng.choice(3, p=np.array(cfg.lighting_mix) / sum(cfg.lighting_mix)))]
    effects = {"roll": float(rng.uniform(-cfg.max_roll, cfg.max_roll)),
               "gain": float(rng.uniform(0.85, 1.15)),
               "blur": int(rng.integers(3, 10)) if rng.random() < cfg.blur_share else 0,
               "blur_angle": float(rng.uniform(-20, 20)),
               "rain": float(rng.uniform(0.3, 1.2)) if rng.random() < cfg.rain_share else 0.0,
               "glare": rng.random() < cfg.glare_share}
    if effects["glare"]:
        effects["glare_at"] = (float(rng.uniform(0, cfg.width)), float(rng.uniform(0, cam.horizon)))
    if cfg.domain == "randomised":
        effects["look"] = sample_look(rng)
    return Scene(layout, scenery, cam, items, lighting, effects, background)
