"""Per-image backgrounds: street scenes with clutter (Market-like) or studio walls (fashion).

Backgrounds are float32 (H, W, 3) RGB in [0, 1], drawn at the supersampled resolution.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from personpose.data.synth.appearance import garment_colour


def value_noise(
    rng: np.random.Generator, size: tuple[int, int], cells: tuple[int, int]
) -> np.ndarray:
    """Smooth noise (H, W) float32 in about [-1, 1]: a random grid of ``cells`` upsampled."""
    grid = rng.uniform(-1, 1, (max(cells[0], 2), max(cells[1], 2))).astype(np.float32)
    img = Image.fromarray(grid, mode="F").resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def _rgb255(c: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(x) for x in np.clip(np.asarray(c) * 255, 0, 255))  # type: ignore[return-value]


def _dull(rng: np.random.Generator) -> np.ndarray:
    """A garment-like colour washed toward grey (other people, signs, cars)."""
    c = garment_colour(rng)
    return 0.5 * c + 0.5 * c.mean()


def _muted(rng: np.random.Generator, lo: float = 0.25, hi: float = 0.75) -> np.ndarray:
    """A dull scene colour: grey with a small random tint."""
    return np.clip(rng.uniform(lo, hi) + rng.normal(0, 0.03, 3), 0, 1)


def street_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A pavement / wall / vegetation scene with bikes, poles, boxes and passers-by."""
    h, w = size
    horizon = int(h * rng.uniform(0.1, 0.6))
    img = Image.new("RGB", (w, h), _rgb255(_muted(rng, 0.3, 0.75)))
    d = ImageDraw.Draw(img)
    top = rng.choice(["wall", "green", "building"])
    green = np.array([0.2, 0.35, 0.15])
    top_c = green * rng.uniform(0.6, 1.4) if top == "green" else _muted(rng, 0.2, 0.8)
    d.rectangle([0, 0, w, horizon], fill=_rgb255(top_c))
    if top == "building":  # window grid
        wc = _rgb255(top_c * rng.uniform(0.4, 1.4))
        step_x, step_y = int(rng.integers(14, 40)), int(rng.integers(16, 44))
        for y in range(int(rng.integers(0, step_y)), horizon, step_y):
            for x in range(int(rng.integers(-step_x, 0)), w, step_x):
                d.rectangle([x + 3, y + 3, x + step_x - 4, y + step_y - 5], fill=wc)
    # paving lines converging to a vanishing point
    ground = _muted(rng, 0.35, 0.7)
    d.rectangle([0, horizon, w, h], fill=_rgb255(ground))
    line_c = _rgb255(ground * rng.uniform(0.7, 1.2))
    y, gap = float(horizon), rng.uniform(3, 8)
    while y < h:
        d.line([0, int(y), w, int(y)], fill=line_c, width=1)
        gap *= 1.25
        y += gap
    vx = rng.uniform(-w, 2 * w)
    for x in np.linspace(-2 * w, 3 * w, int(rng.integers(6, 16))):
        d.line([vx, horizon, x, h], fill=line_c, width=1)
    # clutter
    for _ in range(int(rng.integers(2, 9))):
        kind = rng.choice(["bike", "pole", "box", "blob", "person"])
        c = _rgb255(_dull(rng) if kind in ("person", "box") else _muted(rng, 0.05, 0.9))
        cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(0.2, 1.0) * h
        s = rng.uniform(0.1, 0.35) * h
        if kind == "bike":
            r = s * 0.3
            lw = int(rng.integers(1, 4))
            for off in (-r * 1.1, r * 1.1):
                d.ellipse([cx + off - r, cy - r, cx + off + r, cy + r], outline=c, width=lw)
            d.line([cx - r * 1.1, cy, cx, cy - r, cx + r * 1.1, cy], fill=c, width=lw)
        elif kind == "pole":
            pw = rng.uniform(2, 8)
            d.rectangle([cx, 0, cx + pw, cy + s], fill=c)
        elif kind == "box":
            d.rectangle(
                [cx - s * rng.uniform(0.2, 1), cy - s, cx + s * rng.uniform(0.2, 1), cy + s * 0.3],
                fill=c,
            )
        elif kind == "blob":
            d.ellipse([cx - s * 0.6, cy - s * 0.4, cx + s * 0.6, cy + s * 0.4], fill=c)
        else:  # a passer-by cut by the crop: torso and legs
            bw = s * 0.35
            cx = rng.choice([rng.uniform(-0.15, 0.1), rng.uniform(0.9, 1.15)]) * w
            d.rounded_rectangle(
                [cx - bw, cy - s * 1.2, cx + bw, cy + s * 0.2], radius=bw * 0.5, fill=c
            )
            lc = _rgb255(_dull(rng))
            d.rectangle([cx - bw * 0.9, cy + s * 0.2, cx + bw * 0.9, cy + s * 1.5], fill=lc)
    bg = np.asarray(img, dtype=np.float32) / 255.0
    # lighting gradients, colour blotches, fine texture
    bg = bg * (1 + 0.25 * value_noise(rng, size, (3, 2)))[..., None]
    blotch = value_noise(rng, size, (h // 16, w // 16))[..., None]
    bg = bg + 0.06 * blotch * (1 + 0.15 * rng.normal(0, 1, 3)).astype(np.float32)
    grain = rng.uniform(0.03, 0.08)
    bg = bg + grain * value_noise(rng, size, (h // 3, w // 3))[..., None]
    bg = bg + 0.3 * grain * rng.standard_normal((h, w, 1), dtype=np.float32)
    return np.clip(bg, 0, 1).astype(np.float32)


def studio_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A plain studio wall (mostly white or light grey) with a soft gradient and a floor."""
    h, w = size
    base = rng.uniform(0.82, 0.98) if rng.random() < 0.75 else rng.uniform(0.35, 0.7)
    tint = base + rng.normal(0, 0.02, 3)
    rows = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    bg = np.broadcast_to(tint.astype(np.float32), (h, w, 3)) * (1 - rng.uniform(0, 0.12) * rows)
    floor = int(h * rng.uniform(0.8, 1.05))
    bg = bg.copy()
    bg[floor:] *= rng.uniform(0.85, 0.97)
    bg = bg * (1 + 0.05 * value_noise(rng, size, (3, 3)))[..., None]
    bg = bg + 0.01 * rng.standard_normal((h, w, 1), dtype=np.float32)
    return np.clip(bg, 0, 1).astype(np.float32)
