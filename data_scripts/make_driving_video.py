"""A synthetic dash-camera video of moving traffic with ground-truth tracks in MOTChallenge format.

    python -m data_scripts.make_driving_video --out data/video --frames 300 --seed 0

Writes `OUT/video.mp4` (OpenCV mp4v, default 640x384 at 15 fps) and `OUT/gt.txt`, one row per visible object
per frame:

    frame,id,x,y,w,h,conf,class,visibility       e.g.  17,4,312.0,180.0,41.0,33.0,1,0,0.82

- `frame` counts from 1; `id` is the object's track id (never reused); x, y, w, h are the pixel box (top-left
  corner and size) of the object's VISIBLE part, clipped to the frame, the same convention as the labels of
  `make_driving_scenes`.
- `conf` is always 1 (every row is a real object to be tracked).
- `class` is the class id of the data sets' data.yaml (0 car, 1 truck, 2 pedestrian, 3 cyclist, 4 traffic_light,
  5 stop_sign), NOT the MOT17 class codes (where 1 means pedestrian).
- `visibility` is the share of the object's in-frame silhouette not hidden by nearer things (0..1).
- An object is left out of a frame when less than `min_visibility` of it shows or its visible box is smaller than
  `min_box` px on a side; its id comes back when it reappears (as in MOT ground truth).

The camera drives forward along the road: vehicles in its direction are overtaken or overtake it, oncoming
vehicles pass on the left, cars and cyclists cross at a junction ahead, pedestrians walk along the sidewalk or
cross, and signs, signals and look-alike distractors stand still in the world and slide out of view as the
camera passes them. Objects enter at the horizon, from the sides or from the bottom edge, and hide each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from data_scripts import road_effects as fx
from data_scripts import road_render as rr
from data_scripts.road_backdrop import RoadLayout, Scenery, draw_backdrop
from shared.cli_common import SeedOpt, friendly_errors

Z_MIN = 2.5  # objects nearer than this are beside the camera, out of view
# Mean new actors per second of each kind (times VideoConfig.traffic).
SPAWN_RATES = {"same_direction": 0.35, "oncoming": 0.35, "crossing_car": 0.12, "crossing_cyclist": 0.08,
               "pedestrian": 0.35, "crossing_pedestrian": 0.12, "traffic_light": 0.08, "stop_sign": 0.06,
               "distractor": 0.1, "lamp_post": 0.15}


@dataclass
class VideoConfig:
    """What to generate: size, length, frame rate, lighting, traffic density (objects spawned per second)."""

    frames: int = 300
    width: int = 640
    height: int = 384
    fps: float = 15.0
    seed: int = 0
    lighting: str = "day"  # day | dusk | night
    rain: float = 0.0  # rain streak density (0 = dry; ~0.5 light, 1.2 heavy)
    ego_speed: float = 9.0  # m/s
    traffic: float = 1.0  # scales every spawn rate
    min_visibility: float = 0.2
    min_box: int = 4  # px at 640 wide; scaled with the width
    sway: float = 0.8  # degrees of slow camera roll
    rates: dict = field(default_factory=lambda: dict(SPAWN_RATES))

    def __post_init__(self):
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise ValueError(f"video size {self.width}x{self.height} must be even and at least 64x64 "
                             "(mp4 encoders need even sizes)")
        if not 1 <= self.fps <= 120:
            raise ValueError(f"fps must be in 1..120, got {self.fps}")
        if self.lighting not in fx.LIGHTING:
            raise ValueError(f"lighting must be one of {', '.join(fx.LIGHTING)}, got {self.lighting!r}")
        if self.traffic < 0 or self.rain < 0 or self.ego_speed < 0:
            raise ValueError("traffic, rain and ego_speed must be 0 or more")
        unknown = set(self.rates) - set(SPAWN_RATES)
        if unknown:
            raise ValueError(f"unknown spawn rate(s) {sorted(unknown)}; known: {sorted(SPAWN_RATES)}")


@dataclass
class Actor:
    """A thing in the world: position (x lateral, zw along the road, metres) and velocity (m/s)."""

    tid: int
    kind: str
    x: float
    zw: float
    vx: float = 0.0
    vz: float = 0.0
    look: int = 0  # seed of its appearance, fixed for its life
    params: dict = field(default_factory=dict)


class Traffic:
    """Spawns, moves and retires actors; `items(t)` draws them as seen from the camera at time t."""

    def __init__(self, cfg: VideoConfig, layout: RoadLayout, cam: rr.Camera, rng: np.random.Generator):
        self.cfg, self.layout, self.cam, self.rng = cfg, layout, cam, rng
        self.actors: list[Actor] = []
        self.next_id = 1
        self.travelled = 0.0
        self.speed = cfg.ego_speed  # the camera car's current speed: it brakes for crossing traffic
        self.junction = float(rng.uniform(25, 45))  # where crossing traffic crosses, ahead of the start

    def _add(self, kind: str, x: float, zw: float, vx: float = 0.0, vz: float = 0.0, **params) -> Actor:
        a = Actor(self.next_id, kind, x, zw, vx, vz, int(self.rng.integers(2**31)), params)
        self.next_id += 1
        self.actors.append(a)
        return a

    def spawn(self, kind: str, ahead: float | None = None) -> None:
        """Add one actor of `kind`; `ahead` (m from the camera) places it in view instead of at the horizon."""
        r, lay, ego = self.rng, self.layout, self.speed
        far = self.travelled + (ahead if ahead is not None else r.uniform(55, 75))
        if kind in ("same_direction", "oncoming"):
            lanes = [(k, onc) for k, onc in lay.lanes() if onc == (kind == "oncoming")]
            if not lanes:
                return
            k, _ = lanes[r.integers(len(lanes))]
            cls = rr.TRUCK if r.random() < 0.25 else rr.CAR
            if kind == "oncoming":
                self._add("vehicle", lay.lane_centre(k), far, vz=-r.uniform(7, 12), cls=cls, view="front")
                return
            speed = ego + r.uniform(-3.5, 3.5)
            zw = far if speed < ego or ahead is not None else self.travelled - r.uniform(4, 10)  # overtakers
            if k == 0:  # the camera's own lane: never drive into the car ahead
                speed = max(speed, ego + 0.5) if zw > self.travelled else ego + r.uniform(0.5, 2)
                if zw < self.travelled:
                    return
            self._add("vehicle", lay.lane_centre(k) + r.uniform(-0.3, 0.3), zw, vz=speed, cls=cls, view="rear")
        elif kind in ("crossing_car", "crossing_cyclist", "crossing_pedestrian"):
            zw = self.travelled + (ahead or r.uniform(18, 40))
            if kind == "crossing_pedestrian" and lay.crosswalk_z is not None and lay.crosswalk_z > self.travelled + 6:
                zw = lay.crosswalk_z + r.uniform(0.5, 2.5)
            left_to_right = r.random() < 0.5
            speed = {"crossing_car": r.uniform(6, 10), "crossing_cyclist": r.uniform(3, 5),
                     "crossing_pedestrian": r.uniform(1.1, 1.6)}[kind]
            start = (lay.left_edge - 6 if left_to_right else lay.right_edge + 6)
            if kind == "crossing_pedestrian":
                start = lay.left_edge - 1 if left_to_right else lay.right_edge + 1
            vx = speed if left_to_right else -speed
            heading = "right" if left_to_right else "left"
            if kind == "crossing_car":
                self._add("vehicle", start, zw, vx=vx, cls=rr.CAR if r.random() < 0.8 else rr.TRUCK,
                          view="side_r" if left_to_right else "side_l")
            elif kind == "crossing_cyclist":
                self._add("cyclist", start, zw, vx=vx, heading=heading)
            else:
                self._add("pedestrian", start, zw, vx=vx)
        elif kind == "pedestrian":
            right = r.random() < 0.6
            x = (lay.right_edge + r.uniform(0.4, lay.sidewalk - 0.3)) if right else \
                (lay.left_edge - r.uniform(0.4, lay.sidewalk - 0.3))
            self._add("pedestrian", x, far if ahead is None else self.travelled + ahead,
                      vz=r.uniform(-1.5, 1.5))
        elif kind == "traffic_light":
            side = 1 if r.random() < 0.65 else -1
            xp = lay.right_edge + r.uniform(0.3, 1.0) if side > 0 else lay.left_edge - r.uniform(0.3, 1.0)
            overhead = r.random() < 0.4
            self._add("traffic_light", xp, far, state=int(r.integers(3)), overhead=overhead,
                      x_head=lay.lane_centre(int(r.integers(-lay.lanes_left, lay.lanes_right + 1))) if overhead else xp,
                      mount=4.7 if overhead else float(r.uniform(2.8, 3.8)))
        elif kind == "stop_sign":
            x = lay.right_edge + r.uniform(0.3, 1.0)
            self._add("stop_sign", x, far, centre=float(r.uniform(2.0, 2.5)), size=float(r.uniform(0.75, 0.95)))
        elif kind == "distractor":
            side = 1 if r.random() < 0.6 else -1
            x = lay.right_edge + r.uniform(0.5, 2.5) if side > 0 else lay.left_edge - r.uniform(0.5, 2.5)
            self._add("distractor", x, far, style=int(r.integers(3)), centre=float(r.uniform(1.8, 3.5)),
                      size=float(r.uniform(0.7, 1.6)), mount=float(r.uniform(2.8, 5.0)))
        elif kind == "lamp_post":
            side = 1 if r.random() < 0.5 else -1
            self._add("lamp_post", lay.right_edge + 0.6 if side > 0 else lay.left_edge - 0.6, far, side=side)
        else:
            raise ValueError(f"unknown actor kind {kind!r}")

    def step(self, dt: float) -> None:
        """Advance the world by `dt` seconds: spawn (Poisson), move, keep lane order, retire what left view."""
        for kind, rate in self.cfg.rates.items():
            for _ in range(self.rng.poisson(rate * self.cfg.traffic * dt)):
                self.spawn(kind)
        self.speed = self._ego_speed(dt)
        self.travelled += self.speed * dt
        for a in self.actors:
            a.x += a.vx * dt
            a.zw += a.vz * dt
        self._follow()
        lay = self.layout
        self.actors = [a for a in self.actors
                       if -15 < a.zw - self.travelled < 90 and lay.left_edge - 12 < a.x < lay.right_edge + 12]

    def _ego_speed(self, dt: float) -> float:
        """Brake (4 m/s^2) while something crosses the road less than 22 m ahead, else speed back up (2 m/s^2)."""
        lay = self.layout
        blocked = any(a.vx != 0 and lay.left_edge - 1 < a.x < lay.right_edge + 1
                      and Z_MIN < a.zw - self.travelled < 22 for a in self.actors)
        if blocked:
            return max(0.0, self.speed - 4.0 * dt)
        return min(self.cfg.ego_speed, self.speed + 2.0 * dt)

    def _follow(self) -> None:
        """Vehicles wait for crossing traffic and keep 8 m apart in a lane instead of driving through things."""
        lay = self.layout
        crossing = [a.zw for a in self.actors if a.vx != 0 and lay.left_edge - 1 < a.x < lay.right_edge + 1]
        lanes: dict[int, list[Actor]] = {}
        for a in self.actors:
            if a.kind == "vehicle" and a.vx == 0:
                cruise = a.params.setdefault("cruise", a.vz)
                ahead = [c - a.zw for c in crossing] if cruise > 0 else [a.zw - c for c in crossing]
                a.vz = 0.0 if any(0 < d < 12 for d in ahead) else cruise
                lanes.setdefault(int(round((a.x + self.layout.ego_offset) / rr.LANE_WIDTH)), []).append(a)
        for group in lanes.values():
            group.sort(key=lambda a: a.zw)
            for back, front in zip(group, group[1:], strict=False):
                if back.vz > 0 and front.zw - back.zw < 8:
                    back.zw, back.vz = front.zw - 8, min(back.vz, front.vz)
                elif back.vz < 0 and front.zw - back.zw < 8:  # oncoming: the nearer one leads
                    front.zw, front.vz = back.zw + 8, max(front.vz, back.vz)

    def items(self, t: float) -> list[rr.Item]:
        """Every actor in front of the camera as drawable items; labelled ones carry their track id."""
        out = []
        cam = self.cam
        for a in self.actors:
            z = a.zw - self.travelled
            if z < Z_MIN:
                continue
            look = np.random.default_rng(a.look)  # the same draws every frame: the look never changes
            p = a.params
            if a.kind == "vehicle":
                colours = rr.CAR_COLOURS if p["cls"] == rr.CAR else rr.TRUCK_COLOURS
                new = [rr.vehicle(cam, a.x, z, p["cls"], colours[look.integers(len(colours))], p["view"], look)]
            elif a.kind == "pedestrian":
                dist = abs(a.vx) * t + abs(a.vz) * t
                new = [rr.pedestrian(cam, a.x, z, look, stride=abs(np.sin(dist * 2.2)))]
            elif a.kind == "cyclist":
                new = [rr.cyclist(cam, a.x, z, look, p["heading"], pedal=abs(a.vx) * t * 2.5)]
            elif a.kind == "traffic_light":
                pole = rr.pole(cam, a.x, z, 5.9 if p["overhead"] else p["mount"],
                               arm_to=p["x_head"] if p["overhead"] else None)
                new = [pole, rr.traffic_light(cam, p["x_head"], z, p["mount"], p["state"])]
            elif a.kind == "stop_sign":
                new = [rr.pole(cam, a.x, z, p["centre"]), rr.stop_sign(cam, a.x, z, p["centre"], p["size"])]
            elif a.kind == "distractor":
                if p["style"] == 0:
                    new = [rr.pole(cam, a.x, z, p["centre"] - p["size"] / 2),
                           rr.red_disc_board(cam, a.x, z, p["centre"], p["size"], look)]
                elif p["style"] == 1:
                    new = [rr.pole(cam, a.x, z, p["mount"]), rr.signal_like_box(cam, a.x, z, p["mount"], look)]
                else:
                    new = [rr.verge_box(cam, a.x, z, look)]
            else:  # lamp post
                post = rr.pole(cam, a.x, z, 7.5, colour=(95, 95, 100), arm_to=a.x - p["side"] * 1.5)
                u, v = cam.project(a.x - p["side"] * 1.5, 7.4, z)
                r = max(1.0, 0.25 * cam.scale(z))
                post.prims.append(("circle", (u, v), r, (170, 220, 240)))
                post.lights = [(u, v + r, 2.5 * r, (120, 200, 255))]
                new = [post]
            for it in new:
                if it.cls >= 0:
                    it.track_id = a.tid
            out += new
        return out


def generate(cfg: VideoConfig, out_dir: str | Path, progress: bool = True) -> tuple[Path, Path]:
    """Render the video and its ground truth into `out_dir`; return (video.mp4 path, gt.txt path)."""
    import cv2
    from tqdm import tqdm

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([cfg.seed, 7])
    cam = rr.Camera.default(cfg.width, cfg.height, horizon_share=0.42)
    layout = RoadLayout(lanes_left=int(rng.integers(1, 3)), lanes_right=int(rng.integers(0, 2)), oncoming=1,
                        ego_offset=float(rng.uniform(-0.3, 0.3)), sidewalk=float(rng.uniform(2.5, 3.5)),
                        crosswalk_z=float(rng.uniform(30, 60)))
    scenery = Scenery.sample(rng)
    traffic = Traffic(cfg, layout, cam, rng)
    # start with traffic already on the road, not an empty street
    for kind, ahead in (("same_direction", 22.0), ("same_direction", 40.0), ("oncoming", 35.0),
                        ("pedestrian", 12.0), ("pedestrian", 20.0), ("traffic_light", 30.0),
                        ("distractor", 18.0), ("lamp_post", 15.0), ("crossing_cyclist", 28.0)):
        traffic.spawn(kind, ahead=ahead)
    light = fx.LIGHTING[cfg.lighting]
    video = out / "video.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), cfg.fps, (cfg.width, cfg.height))
    if not writer.isOpened():
        raise OSError(f"OpenCV could not open {video} for writing with the mp4v codec; check the folder is "
                      "writable and OpenCV was built with an MPEG-4 encoder")
    rows = []
    min_box = max(2, round(cfg.min_box * cfg.width / 640))
    dt = 1.0 / cfg.fps
    try:
        for f in tqdm(range(cfg.frames), desc="video", unit="frame", leave=False, disable=None if progress else True):
            t = f * dt
            items = traffic.items(t)
            img = draw_backdrop(cam, layout, scenery, traffic.travelled)
            ids = rr.render_items(img, items)
            img = fx.apply_lighting(img, light, [lamp for it in items for lamp in it.lights])
            img, ids = fx.roll(img, ids, cfg.sway * np.sin(2 * np.pi * t / 6.0))
            if cfg.rain:
                img = fx.rain(img, rng, cfg.rain)
            img = fx.sensor_noise(img, light.noise, rng)
            writer.write(img)
            shape = (cfg.height, cfg.width)
            labelled = [it for it in items if it.cls >= 0]
            for k, it in enumerate(labelled, 1):
                region = rr.visible_region(ids, k)
                if region is None:
                    continue
                (x1, y1, x2, y2), _, count = region
                vis = min(1.0, count / max(rr.silhouette_area(it, shape), 1))
                if vis < cfg.min_visibility or x2 - x1 < min_box or y2 - y1 < min_box:
                    continue
                rows.append((f + 1, it.track_id, x1, y1, x2 - x1, y2 - y1, it.cls, vis))
            traffic.step(dt)
    finally:
        writer.release()
    rows.sort(key=lambda r: (r[0], r[1]))
    gt = out / "gt.txt"
    gt.write_text("".join(f"{f},{i},{x},{y},{w},{h},1,{c},{v:.3f}\n" for f, i, x, y, w, h, c, v in rows))
    import json

    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    return video, gt


@friendly_errors(ValueError, OSError)
def main(
    out: Annotated[Path, typer.Option("--out", help="Folder for video.mp4, gt.txt and config.json (created).")],
    frames: Annotated[int, typer.Option("--frames", help="Number of frames.")] = 300,
    width: Annotated[int, typer.Option("--width", help="Frame width in pixels (even).")] = 640,
    height: Annotated[int, typer.Option("--height", help="Frame height in pixels (even).")] = 384,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 15.0,
    lighting: Annotated[str, typer.Option("--lighting", help="day, dusk or night.")] = "day",
    rain: Annotated[float, typer.Option("--rain", help="Rain streak density (0 dry, 0.5 light, 1.2 heavy).")] = 0.0,
    traffic: Annotated[float, typer.Option("--traffic", help="Traffic density multiplier (1 = default).")] = 1.0,
    seed: SeedOpt = 0,
) -> None:
    """Render a dash-camera video of moving traffic and its MOTChallenge ground truth."""
    cfg = VideoConfig(frames=frames, width=width, height=height, fps=fps, seed=seed, lighting=lighting,
                      rain=rain, traffic=traffic)
    video, gt = generate(cfg, out)
    typer.echo(f"wrote {video} and {gt}")


if __name__ == "__main__":
    typer.run(main)
