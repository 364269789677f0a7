"""What a synthetic person looks like: skin, hair, garments, textures, a front print, a bag.

One ``Appearance`` per identity (the same clothes in every image of that person). Colours
are RGB floats in [0, 1]; texture periods and sizes are in torso units T.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

PATTERNS = ("solid", "hstripes", "vstripes", "checks", "dots")
PRINT_SHAPES = ("circle", "square", "triangle", "star", "ring", "bars", "cross")
LOWER_LEN = {"pants": (1.8, 2.0), "shorts": (0.35, 1.05), "skirt": (0.45, 1.3)}  # lower_len range

_SKIN = np.array(
    [
        [0.96, 0.80, 0.69],
        [0.91, 0.72, 0.58],
        [0.84, 0.64, 0.50],
        [0.76, 0.56, 0.42],
        [0.62, 0.44, 0.32],
        [0.48, 0.33, 0.24],
        [0.34, 0.23, 0.17],
    ]
)
_HAIR = np.array(
    [
        [0.06, 0.05, 0.05],
        [0.10, 0.08, 0.07],
        [0.22, 0.15, 0.10],
        [0.38, 0.26, 0.16],
        [0.70, 0.56, 0.34],
        [0.55, 0.55, 0.55],
        [0.50, 0.20, 0.12],
    ]
)
_HAIR_P = np.array([0.32, 0.25, 0.18, 0.1, 0.07, 0.05, 0.03])


@dataclass(frozen=True)
class Garment:
    """A textured garment: ``pattern`` mixes ``colour`` and ``colour2`` by a 2-D motif."""

    colour: np.ndarray
    colour2: np.ndarray
    pattern: str
    period: float  # T
    duty: float  # fraction of a period in colour2
    angle: float  # motif rotation (rad)
    folds: float  # amplitude of fold shading


@dataclass(frozen=True)
class Print:
    """A logo on the front of the upper garment (never on the back)."""

    shape: str
    colour: np.ndarray
    size: float  # half-size, T
    v: float  # centre on the torso axis (0 neck .. 1 hips)
    s: float  # lateral offset along the chest surface, T


@dataclass(frozen=True)
class Appearance:
    """Per-identity look. Lengths in T; ``sleeve`` / ``shorts`` are covered limb fractions."""

    skin: np.ndarray
    hair: np.ndarray
    hair_top: float  # hair where the head normal's up component exceeds this
    hair_side: float  # ... or where its forward component is below this (back and sides)
    hair_low: float  # lowest up component covered at the back
    hair_long: float  # length of hair falling below the head (T, 0 = short)
    upper: Garment
    sleeve: float  # 0 sleeveless .. 1 (upper arm) .. 2 (to the wrist)
    hem: float  # torso axis position where the upper garment ends (1 = hips)
    collar: float  # depth of the neckline opening (T)
    print: Print | None
    lower: Garment
    lower_kind: str  # pants, shorts, skirt
    lower_len: float  # pants/shorts: covered leg fraction (0..2, 1 = thigh); skirt: T below hips
    flare: float  # skirt width factor
    shoes: np.ndarray
    bag: str  # none, backpack, handbag
    bag_colour: np.ndarray
    bag_side: int  # 0 right hand, 1 left hand (handbag)
    loose_upper: float  # sleeves wider than the arm by this fraction
    loose_lower: float  # trouser legs wider than the leg by this fraction


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))))


def garment_colour(rng: np.random.Generator) -> np.ndarray:
    """A clothing-like colour: many neutrals (black, white, grey, navy, denim), some vivid."""
    u = rng.random()
    if u < 0.16:
        return _hsv(rng.random(), rng.uniform(0, 0.15), rng.uniform(0.06, 0.2))  # black
    if u < 0.32:
        return _hsv(rng.random(), rng.uniform(0, 0.08), rng.uniform(0.82, 0.97))  # white
    if u < 0.44:
        return _hsv(rng.random(), rng.uniform(0, 0.1), rng.uniform(0.35, 0.7))  # grey
    if u < 0.56:
        return _hsv(rng.uniform(0.58, 0.66), rng.uniform(0.35, 0.8), rng.uniform(0.25, 0.7))
    if u < 0.64:
        return _hsv(rng.uniform(0.07, 0.12), rng.uniform(0.2, 0.55), rng.uniform(0.45, 0.85))
    return _hsv(rng.random(), rng.uniform(0.45, 0.95), rng.uniform(0.4, 0.95))  # vivid


def _contrast(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """A second colour that stands out from ``base`` (for motifs and prints)."""
    for _ in range(8):
        c = garment_colour(rng)
        if np.abs(c - base).sum() > 0.6:
            return c
    return 1.0 - base


def sample_garment(rng: np.random.Generator, patterns_p: tuple[float, ...]) -> Garment:
    colour = garment_colour(rng)
    pattern = str(rng.choice(PATTERNS, p=patterns_p))
    return Garment(
        colour=colour,
        colour2=_contrast(rng, colour),
        pattern=pattern,
        period=float(rng.uniform(0.09, 0.24)),
        duty=float(rng.uniform(0.3, 0.55)),
        angle=float(rng.choice([0.0, 0.0, np.pi / 4, rng.uniform(-0.4, 0.4)])),
        folds=float(rng.uniform(0.0, 0.08)),
    )


def sample_appearance(rng: np.random.Generator, curvy: float) -> Appearance:
    """Draw one identity's look; ``curvy`` > 0 makes long hair and skirts more likely."""
    fem = curvy > 0
    skin = _SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.93, 1.05, 3)
    hair = _HAIR[rng.choice(len(_HAIR), p=_HAIR_P)] * rng.uniform(0.85, 1.15)
    long_p = 0.7 if fem else 0.06
    hair_long = float(rng.uniform(0.3, 0.95)) if rng.random() < long_p else 0.0
    bald = (not fem) and rng.random() < 0.05
    upper = sample_garment(rng, (0.5, 0.2, 0.08, 0.12, 0.1))
    lower_kind = str(
        rng.choice(["pants", "shorts", "skirt"], p=[0.45, 0.3, 0.25] if fem else [0.75, 0.25, 0.0])
    )
    lower = sample_garment(rng, (0.82, 0.04, 0.06, 0.05, 0.03))
    if rng.random() < 0.3 and lower_kind == "pants":  # denim
        denim = _hsv(rng.uniform(0.57, 0.63), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.65))
        lower = replace(lower, colour=denim, pattern="solid", folds=lower.folds + 0.04)
    lower_len = float(rng.uniform(*LOWER_LEN[lower_kind]))
    pr = None
    if rng.random() < 0.7:
        pr = Print(
            shape=str(rng.choice(PRINT_SHAPES)),
            colour=_contrast(rng, upper.colour),
            size=float(rng.uniform(0.08, 0.16)),
            v=float(rng.uniform(0.3, 0.45)),
            s=float(rng.choice([0.0, 0.0, rng.uniform(-0.12, 0.12)])),
        )
    sleeve = float(rng.choice([0.0, 0.45, 0.7, 1.6, 2.05], p=[0.12, 0.38, 0.1, 0.1, 0.3]))
    bag = str(rng.choice(["none", "backpack", "handbag"], p=[0.62, 0.25, 0.13]))
    shoes = garment_colour(rng) * (0.6 if rng.random() < 0.6 else 1.0)
    return Appearance(
        skin=np.clip(skin, 0, 1),
        hair=np.clip(hair, 0, 1),
        hair_top=0.95 if bald else float(rng.uniform(0.2, 0.45)),
        hair_side=-1.0 if bald else float(rng.uniform(-0.25, 0.15) + (0.25 if hair_long else 0.0)),
        hair_low=float(rng.uniform(-0.6, -0.2) - (0.4 if hair_long else 0.0)),
        hair_long=0.0 if bald else hair_long,
        upper=upper,
        sleeve=sleeve,
        hem=float(rng.uniform(0.82, 1.1)),
        collar=float(rng.choice([0.0, 0.06, 0.1, 0.18])),
        print=pr,
        lower=lower,
        lower_kind=lower_kind,
        lower_len=lower_len,
        flare=float(rng.uniform(1.0, 1.6)),
        shoes=np.clip(shoes, 0, 1),
        bag=bag,
        bag_colour=garment_colour(rng),
        bag_side=int(rng.integers(2)),
        loose_upper=float(rng.uniform(0.03, 0.25)),
        loose_lower=float(rng.uniform(0.0, 0.3)),
    )


def pattern_weight(g: Garment, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Weight in [0, 1] of ``colour2`` at surface coordinates (s across, v along; T)."""
    if g.pattern == "solid":
        return np.zeros_like(s)
    c, sn = np.cos(g.angle), np.sin(g.angle)
    a, b = (c * s - sn * v) / g.period, (sn * s + c * v) / g.period
    if g.pattern == "hstripes":
        return ((b % 1.0) < g.duty).astype(np.float32)
    if g.pattern == "vstripes":
        return ((a % 1.0) < g.duty).astype(np.float32)
    if g.pattern == "checks":
        return ((np.floor(a) + np.floor(b)) % 2).astype(np.float32) * 0.8
    # dots
    da, db = (a % 1.0) - 0.5, (b % 1.0) - 0.5
    return (da * da + db * db < (0.55 * g.duty) ** 2).astype(np.float32)


def garment_rgb(g: Garment, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(..., 3) float RGB of garment ``g`` at surface coordinates (s, v) in T."""
    w = pattern_weight(g, s, v)[..., None]
    rgb = g.colour * (1 - w) + g.colour2 * w
    if g.folds > 0:
        rgb = rgb * (1 + g.folds * np.sin(v * 23.0 + 3.0 * np.sin(s * 9.0)))[..., None]
    return rgb


def print_mask(p: Print, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bool mask of the print at chest coordinates (s across from the centre line, v along; T)."""
    x, y = (s - p.s) / p.size, (v - p.v) / p.size
    if p.shape == "circle":
        return x * x + y * y < 1
    if p.shape == "ring":
        r2 = x * x + y * y
        return (r2 < 1) & (r2 > 0.4)
    if p.shape == "square":
        return (np.abs(x) < 0.85) & (np.abs(y) < 0.85)
    if p.shape == "triangle":
        return (y < 0.8) & (y > -0.9 + 2 * np.abs(x) * 0.95)
    if p.shape == "bars":
        return (np.abs(x) < 1.1) & (np.abs(y) < 0.9) & ((np.floor((y + 0.9) * 2.2) % 2) == 0)
    if p.shape == "cross":
        return ((np.abs(x) < 0.3) & (np.abs(y) < 1)) | ((np.abs(y) < 0.3) & (np.abs(x) < 1))
    # star: radius modulated by angle
    r = np.sqrt(x * x + y * y)
    ang = np.arctan2(y, x)
    return r < 0.55 + 0.45 * np.cos(5 * ang) ** 2
