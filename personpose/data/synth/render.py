"""Rasteriser: a posed, dressed figure -> RGB image and ground-truth part label map.

The figure is drawn at ``SS`` times the output resolution (for anti-aliasing) as shaded,
textured capsules, ellipses and polygons in painter's order (far surfaces first), over a
background, then downsampled, relit, blurred, noised and passed through JPEG once.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

from personpose.data.synth.appearance import Appearance, garment_rgb, print_mask
from personpose.data.synth.background import street_background, studio_background
from personpose.data.synth.skeleton import (
    Camera,
    Figure,
    facing,
    torso_facing,
    torso_half_width,
)

SS = 2  # supersampling factor

LABEL_NAMES: tuple[str, ...] = (
    "background",
    "hair",
    "face",  # head and neck skin
    "upper_clothes",  # torso garment and sleeves
    "arms",  # bare arm skin and hands
    "lower_clothes",  # trousers, shorts, skirt
    "legs",  # bare leg skin
    "shoes",
    "print",  # the logo on the front of the upper garment
    "bag",  # backpack, handbag and straps
)
LABEL = {name: i for i, name in enumerate(LABEL_NAMES)}


@dataclass(frozen=True)
class Style:
    """Per-image lighting and camera degradations."""

    light: np.ndarray  # unit vector (x right, y up, z toward camera)
    ambient: float
    diffuse: float
    gain: float
    cast: np.ndarray  # per-channel multiplicative tint - 1
    desaturate: float
    blur: float  # Gaussian radius, px at output resolution
    noise: float  # std, [0, 1] intensity units
    jpeg: int  # JPEG quality of the round trip


def sample_style(rng: np.random.Generator, preset: str) -> Style:
    light = np.array([rng.uniform(-0.7, 0.7), rng.uniform(0.1, 0.8), rng.uniform(0.4, 1.0)])
    market = preset == "market"
    return Style(
        light=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.5, 0.72)),
        diffuse=float(rng.uniform(0.3, 0.5)),
        gain=float(rng.normal(1.0, 0.14 if market else 0.04)),
        cast=rng.normal(0, 0.03 if market else 0.012, 3),
        desaturate=float(rng.uniform(0.0, 0.35) if market else rng.uniform(0, 0.1)),
        blur=float(rng.uniform(0.3, 1.0) if market else rng.uniform(0.0, 0.45)),
        noise=float(rng.uniform(0.006, 0.025) if market else rng.uniform(0.002, 0.008)),
        jpeg=int(rng.integers(35, 86) if market else rng.integers(70, 96)),
    )


class Canvas:
    """Supersampled RGB (float32, [0, 1]) and label (uint8) buffers; coordinates in output px.

    Output pixel (r, c) has its centre at (r, c); sub-pixel centres sit at (j + 0.5) / SS - 0.5.
    """

    def __init__(self, background: np.ndarray):
        self.rgb = background.copy()
        self.label = np.zeros(background.shape[:2], dtype=np.uint8)
        self.h, self.w = background.shape[:2]

    def grid(self, r0: float, r1: float, c0: float, c1: float):
        """Sub-pixel centre coordinates (Y, X) inside the box, or None if it misses the canvas."""
        j0 = max(int(np.floor((r0 + 0.5) * SS - 0.5)), 0)
        j1 = min(int(np.ceil((r1 + 0.5) * SS - 0.5)) + 1, self.h)
        i0 = max(int(np.floor((c0 + 0.5) * SS - 0.5)), 0)
        i1 = min(int(np.ceil((c1 + 0.5) * SS - 0.5)) + 1, self.w)
        if j1 <= j0 or i1 <= i0:
            return None
        ys = ((np.arange(j0, j1, dtype=np.float32) + 0.5) / SS - 0.5)[:, None]
        xs = ((np.arange(i0, i1, dtype=np.float32) + 0.5) / SS - 0.5)[None, :]
        return (slice(j0, j1), slice(i0, i1)), ys, xs

    def paint(self, sl, mask: np.ndarray, rgb: np.ndarray, label: np.ndarray | int) -> None:
        """Write ``rgb`` (h, w, 3) and ``label`` (scalar or (h, w)) where ``mask`` (h, w) holds."""
        view, lab = self.rgb[sl], self.label[sl]
        view[mask] = rgb[mask]
        lab[mask] = label if np.isscalar(label) else np.asarray(label)[mask]


def _capsule(canvas: Canvas, p0, p1, r0: float, r1: float, grow: float = 0.0):
    """Tapered capsule p0 -> p1 (row, col px), radii r0 -> r1 px.

    ``grow`` (scalar or a function of t) widens the radius by that fraction, e.g. a loose
    garment over part of a limb. Returns (slice, mask, t in [0, 1] along, u in [-1, 1]
    across, perp (row, col)) or None when it misses the canvas.
    """
    p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
    rm = max(r0, r1) * (1 + (grow if np.isscalar(grow) else 0.5))
    g = canvas.grid(
        min(p0[0], p1[0]) - rm,
        max(p0[0], p1[0]) + rm,
        min(p0[1], p1[1]) - rm,
        max(p0[1], p1[1]) + rm,
    )
    if g is None:
        return None
    sl, ys, xs = g
    d = p1 - p0
    length = float(np.hypot(*d)) + 1e-6
    t = np.clip(((ys - p0[0]) * d[0] + (xs - p0[1]) * d[1]) / length**2, 0, 1)
    dy, dx = ys - (p0[0] + t * d[0]), xs - (p0[1] + t * d[1])
    r = (r0 + t * (r1 - r0)) * (1 + (grow if np.isscalar(grow) else grow(t)))
    mask = dy * dy + dx * dx < r * r
    perp = np.array([-d[1], d[0]]) / length
    u = np.clip((dy * perp[0] + dx * perp[1]) / np.maximum(r, 1e-3), -1, 1)
    return sl, mask, t, u, perp


def _shade(style: Style, u: np.ndarray, perp: np.ndarray) -> np.ndarray:
    """Lambert shading of a cylinder seen side-on: u in [-1, 1] across, perp its (row, col)."""
    u = u.astype(np.float32, copy=False)
    u2 = u * u
    nz = np.sqrt(np.maximum(1 - u2, 0))
    lx = float(perp[1] * style.light[0] - perp[0] * style.light[1])  # light along the image perp
    nl = u * lx + nz * float(style.light[2])
    shade = style.ambient + style.diffuse * np.clip(nl, 0, 1)
    u4 = u2 * u2
    return (shade * (1 - 0.3 * u4 * u4))[..., None]


class PersonPainter:
    """Collects the layers of one figure and paints them far-to-near."""

    def __init__(self, fig: Figure, cam: Camera, app: Appearance, style: Style):
        self.fig, self.cam, self.app, self.style = fig, cam, app, style
        self.px = {k: cam.project(v) for k, v in fig.points.items()}
        self.z = {k: float(v[2]) for k, v in fig.points.items()}
        self.s = cam.scale
        self.radii = {k: v * cam.scale for k, v in fig.body.radii.items()}
        self.layers: list[tuple[float, int, Callable[[Canvas], None]]] = []

    def add(self, depth: float, fn: Callable[[Canvas], None]) -> None:
        self.layers.append((depth, len(self.layers), fn))

    def paint(self, canvas: Canvas) -> None:
        for _, _, fn in sorted(self.layers, key=lambda x: (x[0], x[1])):
            fn(canvas)

    # -- primitives ---------------------------------------------------------------------------
    def limb(
        self,
        a: str,
        b: str,
        ra: float,
        rb: float,
        covered: float,
        garment,
        skin_label: int,
        cloth_label: int,
        loose: float = 0.0,
        ramp: float = 0.0,
    ) -> Callable[[Canvas], None]:
        """A limb segment a -> b; the part with t < ``covered`` wears ``garment``, ``loose``
        widening it by that fraction (reached at t = ``ramp``)."""
        app, style, s = self.app, self.style, self.s
        length = float(np.hypot(*(self.px[b] - self.px[a]))) / s

        def grow(t):
            return loose * (t < covered) * (np.clip(t / ramp, 0, 1) if ramp > 0 else 1.0)

        def draw(canvas: Canvas) -> None:
            c = _capsule(canvas, self.px[a], self.px[b], ra, rb, grow)
            if c is None:
                return
            sl, mask, t, u, perp = c
            cloth = t < covered
            r_t = (ra + t * (rb - ra)) / s * (1 + grow(t))
            rgb = garment_rgb(garment, np.arcsin(u) * r_t, t * length) if garment is not None else 0
            rgb = np.where(cloth[..., None], rgb, app.skin)
            label = np.where(cloth, cloth_label, skin_label)
            canvas.paint(sl, mask, rgb * _shade(style, u, perp), label)

        return draw

    def blob(self, a, b, ra: float, rb: float, colour: np.ndarray, label: int):
        """A plain shaded capsule between two image points (row, col px)."""
        style = self.style

        def draw(canvas: Canvas) -> None:
            c = _capsule(canvas, a, b, ra, rb)
            if c is None:
                return
            sl, mask, _, u, perp = c
            rgb = np.broadcast_to(colour, u.shape + (3,)) * _shade(style, u, perp)
            canvas.paint(sl, mask, rgb, label)

        return draw

    # -- body parts ---------------------------------------------------------------------------
    def torso(self, v_lo: float, v_hi: float, upper: bool) -> Callable[[Canvas], None]:
        """Torso band between axis positions v_lo..v_hi (0 neck, 1 mid-hip): the upper garment
        (with neckline and front print) or the lower garment."""
        fig, app, style, s = self.fig, self.app, self.style, self.s
        neck = self.px["neck"]
        hip = 0.5 * (self.px["rhip"] + self.px["lhip"])
        axis = hip - neck
        al = float(np.hypot(*axis)) + 1e-6
        perp = np.array([-axis[1], axis[0]]) / al
        cv, cw, cd = fig.body.torso_profile()
        hw_max = float(torso_half_width(fig, np.linspace(v_lo, v_hi, 8)).max()) * s + 1
        corners = np.array([neck + axis * v for v in (v_lo, v_hi)])

        def draw(canvas: Canvas) -> None:
            g = canvas.grid(
                corners[:, 0].min() - hw_max,
                corners[:, 0].max() + hw_max,
                corners[:, 1].min() - hw_max,
                corners[:, 1].max() + hw_max,
            )
            if g is None:
                return
            sl, ys, xs = g
            ry, rx = ys - neck[0], xs - neck[1]
            v = (ry * axis[0] + rx * axis[1]) / al**2
            lat = ry * perp[0] + rx * perp[1]
            hw = torso_half_width(fig, np.clip(v, cv[0], cv[-1])) * s
            u = lat / hw
            mask = (v >= v_lo) & (v < v_hi) & (np.abs(u) < 1)
            if not mask.any():
                return
            u = np.clip(u, -1, 1)
            # surface angle around the elliptic cross-section (0 = front centre)
            psi = torso_facing(fig, v)
            w, d = np.interp(v, cv, cw), np.interp(v, cv, cd)
            alpha = np.arcsin(u) - np.arctan2(d * np.sin(psi), w * np.cos(psi))
            alpha = (alpha + np.pi) % (2 * np.pi) - np.pi
            s_arc = alpha * 0.5 * (w + d)
            v_t = v * al / s
            if upper:
                rgb = garment_rgb(app.upper, s_arc, v_t)
                label = np.full(u.shape, LABEL["upper_clothes"], np.uint8)
                front = np.cos(alpha) > 0.15
                if app.print is not None:
                    pm = front & print_mask(app.print, s_arc, v) & (v < app.hem - 0.05)
                    rgb = np.where(pm[..., None], app.print.colour, rgb)
                    label = np.where(pm, LABEL["print"], label)
                if app.collar > 0:
                    cm = (np.cos(alpha) > 0) & (v < app.collar * (1 - (s_arc / 0.2) ** 2))
                    rgb = np.where(cm[..., None], app.skin, rgb)
                    label = np.where(cm, LABEL["face"], label)
            else:
                rgb = garment_rgb(app.lower, s_arc, v_t)
                label = LABEL["lower_clothes"]
            canvas.paint(sl, mask, rgb * _shade(style, u, perp), label)

        return draw

    def head(self) -> Callable[[Canvas], None]:
        fig, app, style, s = self.fig, self.app, self.style, self.s
        a, b, c = fig.body.head_radii
        psi = facing(fig.head)
        rx = np.sqrt((a * np.cos(psi)) ** 2 + (c * np.sin(psi)) ** 2) * s
        ry = b * s
        cy, cx = self.px["head"]
        cam_dir = np.array([0.0, 0.0, 1.0])
        eyes = [
            (self.px[k], float(((fig.points[k] - fig.points["head"]) / 0.2) @ cam_dir))
            for k in ("reye", "leye")
        ]
        mouth = self.px["mouth"], float(fig.head[:, 2] @ cam_dir)

        def draw(canvas: Canvas) -> None:
            g = canvas.grid(cy - ry, cy + ry, cx - rx, cx + rx)
            if g is None:
                return
            sl, ys, xs = g
            ex, ey = (xs - cx) / rx, -(ys - cy) / ry
            r2 = ex * ex + ey * ey
            mask = r2 < 1
            nz = np.sqrt(np.clip(1 - r2, 0, 1))
            n = np.stack(np.broadcast_arrays(ex, ey, nz), -1) @ fig.head  # (left, up, fwd)
            hair = (n[..., 1] > app.hair_top) | (
                (n[..., 2] < app.hair_side) & (n[..., 1] > app.hair_low)
            )
            rgb = np.where(
                hair[..., None],
                app.hair * (1 + 0.15 * np.sin(xs * 3.1 + ys * 0.7))[..., None],
                app.skin,
            )
            label = np.where(hair, LABEL["hair"], LABEL["face"]).astype(np.uint8)
            feat = np.zeros(mask.shape, bool)
            fr = max(0.028 * s, 0.45)
            for (py, pxx), toward in eyes:
                if toward > 0.25:
                    feat |= (ys - py) ** 2 + (xs - pxx) ** 2 < fr * fr
            if mouth[1] > 0.3:
                my, mx = mouth[0]
                feat |= ((ys - my) / (0.6 * fr)) ** 2 + ((xs - mx) / (1.6 * fr)) ** 2 < 1
            feat &= ~hair
            rgb = np.where(feat[..., None], app.skin * 0.35, rgb)
            shade = style.ambient + style.diffuse * np.clip(n @ (fig.head.T @ style.light), 0, 1)
            canvas.paint(sl, mask, rgb * shade[..., None], label)

        return draw

    def quad(self, pts: np.ndarray, colour_fn, label: int) -> Callable[[Canvas], None]:
        """A convex polygon (N, 2) (row, col px); ``colour_fn(ys, xs) -> (h, w, 3)``."""
        hull = _convex_hull(pts)

        def draw(canvas: Canvas) -> None:
            g = canvas.grid(hull[:, 0].min(), hull[:, 0].max(), hull[:, 1].min(), hull[:, 1].max())
            if g is None:
                return
            sl, ys, xs = g
            mask = np.ones(np.broadcast_shapes(ys.shape, xs.shape), bool)
            n = len(hull)
            for i in range(n):
                p, q = hull[i], hull[(i + 1) % n]
                mask &= (q[0] - p[0]) * (xs - p[1]) - (q[1] - p[1]) * (ys - p[0]) <= 0
            if mask.any():
                canvas.paint(sl, mask, colour_fn(ys, xs), label)

        return draw

    # -- assembly -----------------------------------------------------------------------------
    def build(self) -> None:
        fig, app, px, z, R, s = self.fig, self.app, self.px, self.z, self.radii, self.s
        hip_z = max(z["rhip"], z["lhip"], z["root"])
        shirt_z = max(z["neck"], hip_z) + 0.01
        # legs
        leg_cover = app.lower_len if app.lower_kind != "skirt" else 0.0
        for side in "rl":
            self.add(
                z[side + "hip"],
                self.limb(
                    side + "hip",
                    side + "kne",
                    R["thigh"],
                    R["knee"],
                    leg_cover,
                    app.lower,
                    LABEL["legs"],
                    LABEL["lower_clothes"],
                    app.loose_lower,
                ),
            )
            self.add(
                0.5 * (z[side + "kne"] + z[side + "ank"]),
                self.limb(
                    side + "kne",
                    side + "ank",
                    R["knee"],
                    R["ankle"],
                    leg_cover - 1,
                    app.lower,
                    LABEL["legs"],
                    LABEL["lower_clothes"],
                    app.loose_lower,
                ),
            )
            self.add(
                z[side + "ank"] + 0.02,
                self.blob(
                    px[side + "heel"],
                    px[side + "toe"],
                    R["shoe"],
                    R["shoe"] * 0.9,
                    app.shoes,
                    LABEL["shoes"],
                ),
            )
        # torso: pelvis (lower garment) behind, shirt in front of the thigh tops
        self.add(z["root"] - 0.005, self.torso(app.hem, 1.16, upper=False))
        self.add(shirt_z, self.torso(-0.13, app.hem, upper=True))
        if app.lower_kind == "skirt":
            self.add(shirt_z - 0.005, self.skirt())
        # arms
        for side in "rl":
            self.add(
                0.5 * (z[side + "sho"] + z[side + "elb"]) + 0.03,
                self.limb(
                    side + "sho",
                    side + "elb",
                    R["upper_arm"],
                    R["elbow"],
                    app.sleeve,
                    app.upper,
                    LABEL["arms"],
                    LABEL["upper_clothes"],
                    app.loose_upper,
                    0.35,
                ),
            )
            self.add(
                0.5 * (z[side + "elb"] + z[side + "wri"]) + 0.03,
                self.limb(
                    side + "elb",
                    side + "wri",
                    R["elbow"],
                    R["wrist"],
                    app.sleeve - 1,
                    app.upper,
                    LABEL["arms"],
                    LABEL["upper_clothes"],
                    app.loose_upper,
                ),
            )
            self.add(
                z[side + "hand"] + 0.035,
                self.blob(
                    px[side + "wri"],
                    px[side + "hand"],
                    R["wrist"],
                    R["hand"],
                    app.skin,
                    LABEL["arms"],
                ),
            )
        # neck, head, long hair
        self.add(
            shirt_z - 0.002,
            self.blob(px["neck"], px["chin"], R["neck"], R["neck"], app.skin, LABEL["face"]),
        )
        self.add(max(z["head"], shirt_z + 0.01), self.head())
        if app.hair_long > 0:
            hd = fig.head
            top = fig.points["head"] - 0.08 * hd[:, 2]
            bot = fig.points["head"] - (0.12 + app.hair_long) * hd[:, 1] - 0.12 * hd[:, 2]
            rh = fig.body.head_radii[0] * s * 1.08
            self.add(
                float(0.5 * (top[2] + bot[2])),
                self.blob(
                    self.cam.project(top),
                    self.cam.project(bot),
                    rh,
                    rh * 0.85,
                    app.hair,
                    LABEL["hair"],
                ),
            )
        if app.bag == "backpack":
            self.backpack(shirt_z)
        elif app.bag == "handbag":
            side = "rl"[app.bag_side]
            wri = fig.points[side + "wri"]
            bag_c = wri - np.array([0, 0.3, 0]) + 0.05 * fig.hips[:, 2]
            self.add(
                z[side + "wri"] + 0.02,
                self.blob(
                    px[side + "wri"],
                    self.cam.project(bag_c),
                    0.025 * s,
                    0.025 * s,
                    app.bag_colour * 0.7,
                    LABEL["bag"],
                ),
            )
            self.add(
                z[side + "wri"] + 0.025,
                self.blob(
                    self.cam.project(bag_c + [0, 0.02, 0]),
                    self.cam.project(bag_c - [0, 0.1, 0]),
                    0.15 * s,
                    0.16 * s,
                    app.bag_colour,
                    LABEL["bag"],
                ),
            )

    def skirt(self) -> Callable[[Canvas], None]:
        fig, app, px, s = self.fig, self.app, self.px, self.s
        neck, hip = px["neck"], 0.5 * (px["rhip"] + px["lhip"])
        axis = hip - neck
        perp = np.array([-axis[1], axis[0]]) / (np.hypot(*axis) + 1e-6)
        v_top = min(app.hem, 0.9)
        hw = float(torso_half_width(fig, np.array(v_top))) * s
        top = neck + axis * v_top
        f = app.lower_len / fig.body.thigh
        pts = [top - perp * hw, top + perp * hw]
        for side in "rl":
            p = px[side + "hip"] + (px[side + "kne"] - px[side + "hip"]) * f
            out = np.sign((p - hip) @ perp) or (1.0 if side == "l" else -1.0)
            pts.append(p + perp * out * self.radii["thigh"] * app.flare)
        style = self.style
        length = app.lower_len * s

        def colour(ys, xs):
            lat = (ys - top[0]) * perp[0] + (xs - top[1]) * perp[1]
            v = ((ys - top[0]) * axis[0] + (xs - top[1]) * axis[1]) / (np.hypot(*axis) + 1e-6)
            rgb = garment_rgb(app.lower, lat / s, v / s)
            shade = style.ambient + style.diffuse * style.light[2] * (
                1 - 0.2 * (v / max(length, 1))
            )
            return rgb * shade[..., None] if np.ndim(shade) else rgb * shade

        return self.quad(np.array(pts), colour, LABEL["lower_clothes"])

    def backpack(self, shirt_z: float) -> None:
        fig, app, s = self.fig, self.app, self.s
        chest = fig.chest
        neck3, hip3 = fig.points["neck"], 0.5 * (fig.points["rhip"] + fig.points["lhip"])
        centre = neck3 + 0.4 * (hip3 - neck3) - chest[:, 2] * 0.3
        top, bot = centre + 0.22 * chest[:, 1], centre - 0.22 * chest[:, 1]
        psi = facing(chest)
        hw = np.sqrt((0.24 * np.cos(psi)) ** 2 + (0.13 * np.sin(psi)) ** 2) * s
        self.add(
            float(centre[2]),
            self.blob(
                self.cam.project(top),
                self.cam.project(bot),
                hw,
                hw * 1.05,
                app.bag_colour,
                LABEL["bag"],
            ),
        )
        if np.cos(psi) > 0.25:  # straps over the chest
            for sign in (-1.0, 1.0):
                a = neck3 + sign * 0.22 * chest[:, 0] + 0.1 * chest[:, 2]
                b = neck3 + 0.55 * (hip3 - neck3) + sign * 0.26 * chest[:, 0] + 0.15 * chest[:, 2]
                self.add(
                    shirt_z + 0.004,
                    self.blob(
                        self.cam.project(a),
                        self.cam.project(b),
                        0.035 * s,
                        0.035 * s,
                        app.bag_colour * 0.8,
                        LABEL["bag"],
                    ),
                )


def _convex_hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise in (col, row) = x, y-down terms) of (N, 2) (row, col)."""
    p = sorted(map(tuple, np.asarray(pts, float)), key=lambda q: (q[1], q[0]))

    def cross(o, a, b):
        return (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1])

    lower: list = []
    for q in p:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], q) <= 0:
            lower.pop()
        lower.append(q)
    upper: list = []
    for q in reversed(p):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], q) <= 0:
            upper.pop()
        upper.append(q)
    return np.array(lower[:-1] + upper[:-1])


def _ground_shadow(canvas: Canvas, painter: PersonPainter, strength: float) -> None:
    """Darken the ground under the feet with a soft ellipse."""
    s = painter.s
    feet = np.array([painter.px[k] for k in ("rheel", "rtoe", "lheel", "ltoe")])
    cy, c0, c1 = feet[:, 0].max() + 0.03 * s, feet[:, 1].min(), feet[:, 1].max()
    cx, rx, ry = 0.5 * (c0 + c1), 0.5 * (c1 - c0) + 0.3 * s, 0.08 * s
    g = canvas.grid(cy - ry, cy + ry, cx - rx, cx + rx)
    if g is None:
        return
    sl, ys, xs = g
    e = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2
    canvas.rgb[sl] *= (1 - strength * np.clip(1 - e, 0, 1))[..., None]


def degrade(rgb: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Supersampled float image -> uint8 (H, W, 3): downsample, relight, blur, noise, JPEG."""
    h, w = rgb.shape[0] // SS, rgb.shape[1] // SS
    img = rgb.reshape(h, SS, w, SS, 3).mean(axis=(1, 3))
    img = img * style.gain * (1 + style.cast)
    grey = img.mean(-1, keepdims=True)
    img = img + style.desaturate * (grey - img)
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    pil = Image.fromarray(u8)
    if style.blur > 0.05:
        pil = pil.filter(ImageFilter.GaussianBlur(style.blur))
    arr = np.asarray(pil, dtype=np.float32)
    arr = arr + rng.normal(0, style.noise * 255, arr.shape).astype(np.float32)
    pil = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=style.jpeg)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def render(
    fig: Figure,
    cam: Camera,
    app: Appearance,
    size: tuple[int, int],
    preset: str,
    rng: np.random.Generator,
    draw_print: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one image. Returns (RGB uint8 (H, W, 3), labels uint8 (H, W), see LABEL_NAMES).

    ``draw_print=False`` leaves the front print out (for tests: a back view must not change).
    """
    style = sample_style(rng, preset)
    big = (size[0] * SS, size[1] * SS)
    bg = street_background(rng, big) if preset == "market" else studio_background(rng, big)
    canvas = Canvas(bg)
    if not draw_print and app.print is not None:
        app = replace(app, print=None)
    painter = PersonPainter(fig, cam, app, style)
    _ground_shadow(canvas, painter, float(rng.uniform(0.1, 0.45)))
    painter.build()
    painter.paint(canvas)
    image = degrade(canvas.rgb, style, rng)
    labels = canvas.label[SS // 2 :: SS, SS // 2 :: SS]
    return image, np.ascontiguousarray(labels)
