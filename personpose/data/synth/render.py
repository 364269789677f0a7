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
from scipy.spatial import ConvexHull

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

# Part labels of the label maps, in value order (0 = background).
LABEL_DESCRIPTIONS = {
    "background": "everything that is not the person",
    "hair": "hair on the head and long hair",
    "face": "head and neck skin (incl. the neckline opening)",
    "upper_clothes": "torso garment and sleeves",
    "arms": "bare arm skin and hands",
    "lower_clothes": "trousers, shorts, skirt (incl. the pelvis)",
    "legs": "bare leg skin",
    "shoes": "shoes",
    "print": "logo on the FRONT of the upper garment (never visible from behind)",
    "bag": "backpack, handbag and straps",
}
LABEL_NAMES: tuple[str, ...] = tuple(LABEL_DESCRIPTIONS)
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
    lo, hi = np.minimum(p0, p1) - rm, np.maximum(p0, p1) + rm
    g = canvas.grid(lo[0], hi[0], lo[1], hi[1])
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
    """Collects the layers of one figure (``build``) and paints them far-to-near (``paint``)."""

    def __init__(self, fig: Figure, cam: Camera, app: Appearance, style: Style):
        self.fig, self.cam, self.app, self.style = fig, cam, app, style
        self.px = {k: cam.project(v) for k, v in fig.points.items()}
        self.z = {k: float(v[2]) for k, v in fig.points.items()}
        self.s = cam.scale
        self.radii = {k: v * cam.scale for k, v in fig.body.radii.items()}
        # torso axis neck -> mid-hip (px), its length and unit normal
        self.neck, self.hip = self.px["neck"], 0.5 * (self.px["rhip"] + self.px["lhip"])
        self.axis = self.hip - self.neck
        self.al = float(np.hypot(*self.axis)) + 1e-6
        self.perp = np.array([-self.axis[1], self.axis[0]]) / self.al
        self.layers: list[tuple[float, int, Callable[[Canvas], None]]] = []
        self.build()

    def add(self, depth: float, fn: Callable[[Canvas], None]) -> None:
        self.layers.append((depth, len(self.layers), fn))

    def paint(self, canvas: Canvas, shadow: float) -> None:
        """Darken the ground under the feet by ``shadow`` (a soft ellipse), then paint the
        layers far-to-near."""
        s, feet = self.s, np.array([self.px[k] for k in ("rheel", "rtoe", "lheel", "ltoe")])
        cy, c0, c1 = feet[:, 0].max() + 0.03 * s, feet[:, 1].min(), feet[:, 1].max()
        cx, rx, ry = 0.5 * (c0 + c1), 0.5 * (c1 - c0) + 0.3 * s, 0.08 * s
        g = canvas.grid(cy - ry, cy + ry, cx - rx, cx + rx)
        if g is not None:
            sl, ys, xs = g
            e = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2
            canvas.rgb[sl] *= (1 - shadow * np.clip(1 - e, 0, 1))[..., None]
        for *_, fn in sorted(self.layers):  # by depth, then insertion order
            fn(canvas)

    # -- primitives: each adds one layer at ``depth`` -------------------------------------------
    def limb(self, depth, side, a, b, ra, rb, covered, upper, ramp=0.0) -> None:
        """Limb segment ``side + a`` -> ``side + b`` (joint names), radii ``radii[ra]`` ->
        ``radii[rb]``; the part with t < ``covered`` wears the upper (``upper``) or lower
        garment, widened by its looseness (reached at t = ``ramp``)."""
        app, style, s = self.app, self.style, self.s
        pa, pb, ra, rb = self.px[side + a], self.px[side + b], self.radii[ra], self.radii[rb]
        garment, loose = (app.upper, app.loose_upper) if upper else (app.lower, app.loose_lower)
        skin, cloth = ("arms", "upper_clothes") if upper else ("legs", "lower_clothes")
        length = float(np.hypot(*(pb - pa))) / s

        def grow(t):
            return loose * (t < covered) * (np.clip(t / ramp, 0, 1) if ramp > 0 else 1.0)

        def draw(canvas: Canvas) -> None:
            c = _capsule(canvas, pa, pb, ra, rb, grow)
            if c is None:
                return
            sl, mask, t, u, perp = c
            worn = t < covered
            r_t = (ra + t * (rb - ra)) / s * (1 + grow(t))
            rgb = garment_rgb(garment, np.arcsin(u) * r_t, t * length)
            rgb = np.where(worn[..., None], rgb, app.skin)
            label = np.where(worn, LABEL[cloth], LABEL[skin])
            canvas.paint(sl, mask, rgb * _shade(style, u, perp), label)

        self.add(depth, draw)

    def blob(self, depth: float, a, b, ra: float, rb: float, colour: np.ndarray, label: str):
        """A plain shaded capsule between two camera-space points, radii ``ra`` -> ``rb`` px."""
        style, pa, pb = self.style, self.cam.project(a), self.cam.project(b)

        def draw(canvas: Canvas) -> None:
            c = _capsule(canvas, pa, pb, ra, rb)
            if c is None:
                return
            sl, mask, _, u, perp = c
            rgb = np.broadcast_to(colour, u.shape + (3,)) * _shade(style, u, perp)
            canvas.paint(sl, mask, rgb, LABEL[label])

        self.add(depth, draw)

    # -- body parts ---------------------------------------------------------------------------
    def torso(self, depth: float, v_lo: float, v_hi: float, upper: bool) -> None:
        """Torso band between axis positions v_lo..v_hi (0 neck, 1 mid-hip): the upper garment
        (with neckline and front print) or the lower garment."""
        fig, app, style, s = self.fig, self.app, self.style, self.s
        neck, axis, al, perp = self.neck, self.axis, self.al, self.perp
        cv, cw, cd = fig.body.torso_profile()
        hw_max = float(torso_half_width(fig, np.linspace(v_lo, v_hi, 8)).max()) * s + 1
        corners = np.array([neck + axis * v for v in (v_lo, v_hi)])
        lo, hi = corners.min(0) - hw_max, corners.max(0) + hw_max

        def draw(canvas: Canvas) -> None:
            g = canvas.grid(lo[0], hi[0], lo[1], hi[1])
            if g is None:
                return
            sl, ys, xs = g
            ry, rx = ys - neck[0], xs - neck[1]
            v = (ry * axis[0] + rx * axis[1]) / al**2
            lat = ry * perp[0] + rx * perp[1]
            hw = torso_half_width(fig, np.clip(v, cv[0], cv[-1])) * s
            u = lat / hw
            mask = (v >= v_lo) & (v < v_hi) & (np.abs(u) < 1)
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

        self.add(depth, draw)

    def head(self, depth: float) -> None:
        fig, app, style, s, P = self.fig, self.app, self.style, self.s, self.fig.points
        a, b, c = fig.body.head_radii
        psi = facing(fig.head)
        rx = np.sqrt((a * np.cos(psi)) ** 2 + (c * np.sin(psi)) ** 2) * s
        ry = b * s
        cy, cx = self.px["head"]
        # eyes and mouth: image position and how far each faces the camera
        eyes = [(self.px[k], (P[k][2] - P["head"][2]) / 0.2) for k in ("reye", "leye")]
        mouth = self.px["mouth"], fig.head[2, 2]

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
            streaks = (1 + 0.15 * np.sin(xs * 3.1 + ys * 0.7))[..., None]
            rgb = np.where(hair[..., None], app.hair * streaks, app.skin)
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

        self.add(depth, draw)

    # -- assembly -----------------------------------------------------------------------------
    def build(self) -> None:
        fig, app, P, z, R, s = self.fig, self.app, self.fig.points, self.z, self.radii, self.s
        hip_z = max(z["rhip"], z["lhip"], z["root"])
        shirt_z = max(z["neck"], hip_z) + 0.01
        leg_cover = app.lower_len if app.lower_kind != "skirt" else 0.0
        for side in "rl":
            self.limb(z[side + "hip"], side, "hip", "kne", "thigh", "knee", leg_cover, False)
            shin_z = 0.5 * (z[side + "kne"] + z[side + "ank"])
            self.limb(shin_z, side, "kne", "ank", "knee", "ankle", leg_cover - 1, False)
            heel, toe, shoe = P[side + "heel"], P[side + "toe"], R["shoe"]
            self.blob(z[side + "ank"] + 0.02, heel, toe, shoe, shoe * 0.9, app.shoes, "shoes")
        # torso: pelvis (lower garment) behind, shirt in front of the thigh tops
        self.torso(z["root"] - 0.005, app.hem, 1.16, upper=False)
        self.torso(shirt_z, -0.13, app.hem, upper=True)
        if app.lower_kind == "skirt":
            self.skirt(shirt_z - 0.005)
        for side in "rl":
            arm_z = 0.5 * (z[side + "sho"] + z[side + "elb"]) + 0.03
            self.limb(arm_z, side, "sho", "elb", "upper_arm", "elbow", app.sleeve, True, 0.35)
            arm_z = 0.5 * (z[side + "elb"] + z[side + "wri"]) + 0.03
            self.limb(arm_z, side, "elb", "wri", "elbow", "wrist", app.sleeve - 1, True)
            wri, hand = P[side + "wri"], P[side + "hand"]
            self.blob(z[side + "hand"] + 0.035, wri, hand, R["wrist"], R["hand"], app.skin, "arms")
        # neck, head, long hair
        self.blob(shirt_z - 0.002, P["neck"], P["chin"], R["neck"], R["neck"], app.skin, "face")
        self.head(max(z["head"], shirt_z + 0.01))
        if app.hair_long > 0:
            hd = fig.head
            top = P["head"] - 0.08 * hd[:, 2]
            bot = P["head"] - (0.12 + app.hair_long) * hd[:, 1] - 0.12 * hd[:, 2]
            rh = fig.body.head_radii[0] * s * 1.08
            self.blob(float(0.5 * (top[2] + bot[2])), top, bot, rh, rh * 0.85, app.hair, "hair")
        if app.bag == "backpack":
            self.backpack(shirt_z)
        elif app.bag == "handbag":
            wri = "rl"[app.bag_side] + "wri"
            bag_c = P[wri] - np.array([0, 0.3, 0]) + 0.05 * fig.hips[:, 2]
            strap, colour = 0.025 * s, app.bag_colour
            self.blob(z[wri] + 0.02, P[wri], bag_c, strap, strap, colour * 0.7, "bag")
            top, bot = bag_c + [0, 0.02, 0], bag_c - [0, 0.1, 0]
            self.blob(z[wri] + 0.025, top, bot, 0.15 * s, 0.16 * s, colour, "bag")

    def skirt(self, depth: float) -> None:
        """The skirt: the convex hull of the hem's ends at the waist and at the knees."""
        fig, app, px, s, style = self.fig, self.app, self.px, self.s, self.style
        neck, hip, axis, perp = self.neck, self.hip, self.axis, self.perp
        v_top = min(app.hem, 0.9)
        hw = float(torso_half_width(fig, np.array(v_top))) * s
        top = neck + axis * v_top
        f = app.lower_len / fig.body.thigh
        pts = [top - perp * hw, top + perp * hw]
        for side in "rl":
            p = px[side + "hip"] + (px[side + "kne"] - px[side + "hip"]) * f
            out = np.sign((p - hip) @ perp) or (1.0 if side == "l" else -1.0)
            pts.append(p + perp * out * self.radii["thigh"] * app.flare)
        pts = np.array(pts)
        hull = pts[ConvexHull(pts[:, ::-1]).vertices]  # counter-clockwise in (col, row)
        length = app.lower_len * s

        def draw(canvas: Canvas) -> None:
            g = canvas.grid(hull[:, 0].min(), hull[:, 0].max(), hull[:, 1].min(), hull[:, 1].max())
            if g is None:
                return
            sl, ys, xs = g
            mask = np.ones(np.broadcast_shapes(ys.shape, xs.shape), bool)
            for p, q in zip(hull, np.roll(hull, -1, axis=0)):
                mask &= (q[0] - p[0]) * (xs - p[1]) - (q[1] - p[1]) * (ys - p[0]) <= 0
            lat = (ys - top[0]) * perp[0] + (xs - top[1]) * perp[1]
            v = ((ys - top[0]) * axis[0] + (xs - top[1]) * axis[1]) / self.al
            rgb = garment_rgb(app.lower, lat / s, v / s)
            shade = style.ambient + style.diffuse * style.light[2] * (
                1 - 0.2 * (v / max(length, 1))
            )
            canvas.paint(sl, mask, rgb * shade[..., None], LABEL["lower_clothes"])

        self.add(depth, draw)

    def backpack(self, shirt_z: float) -> None:
        fig, app, s, chest = self.fig, self.app, self.s, self.fig.chest
        neck3, hip3 = fig.points["neck"], 0.5 * (fig.points["rhip"] + fig.points["lhip"])
        centre = neck3 + 0.4 * (hip3 - neck3) - chest[:, 2] * 0.3
        top, bot = centre + 0.22 * chest[:, 1], centre - 0.22 * chest[:, 1]
        psi = facing(chest)
        hw = np.sqrt((0.24 * np.cos(psi)) ** 2 + (0.13 * np.sin(psi)) ** 2) * s
        self.blob(float(centre[2]), top, bot, hw, hw * 1.05, app.bag_colour, "bag")
        if np.cos(psi) > 0.25:  # straps over the chest
            for sign in (-1.0, 1.0):
                a = neck3 + sign * 0.22 * chest[:, 0] + 0.1 * chest[:, 2]
                b = neck3 + 0.55 * (hip3 - neck3) + sign * 0.26 * chest[:, 0] + 0.15 * chest[:, 2]
                r = 0.035 * s
                self.blob(shirt_z + 0.004, a, b, r, r, app.bag_colour * 0.8, "bag")


def degrade(rgb: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Supersampled float image -> uint8 (H, W, 3): downsample, relight, blur, noise, JPEG."""
    h, w = rgb.shape[0] // SS, rgb.shape[1] // SS
    img = rgb.reshape(h, SS, w, SS, 3).mean(axis=(1, 3))
    img = img * style.gain * (1 + style.cast)
    grey = img.mean(-1, keepdims=True)
    img = img + style.desaturate * (grey - img)
    pil = Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))
    if style.blur > 0.05:
        pil = pil.filter(ImageFilter.GaussianBlur(style.blur))
    arr = np.asarray(pil, dtype=np.float32)
    arr = arr + rng.normal(0, style.noise * 255, arr.shape).astype(np.float32)
    pil = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=style.jpeg)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


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
    PersonPainter(fig, cam, app, style).paint(canvas, shadow=float(rng.uniform(0.1, 0.45)))
    image = degrade(canvas.rgb, style, rng)
    labels = canvas.label[SS // 2 :: SS, SS // 2 :: SS]
    return image, np.ascontiguousarray(labels)
