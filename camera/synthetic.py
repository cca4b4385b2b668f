"""Rendered close-ups of machined metal parts with injected defects, and a source that yields them.

Every frame is a pure function of ``(seed, index)``: its random numbers come from
``np.random.SeedSequence([seed, index])``, so frame 7 is the same whether it is rendered first,
last or alone. The part, the defects and the camera noise draw from separate child streams, so
the same ``(seed, index)`` at ``defect_rate`` 0 and 1 shows the same part without and with a
defect. The ground truth (defect kind and boxes) travels with the image as :class:`FrameTruth`,
which makes the generator usable for training, tests and demos alike.

The surface is one of three finishes (brushed, cast/blasted, turned), lit by a gradient, a
vignette and a specular band; some parts show an edge against the fixture or a machined hole.
A defective frame carries one kind of defect, 1-3 instances of it:

* ``scratch`` -- thin smooth line or arc, mostly bright with a dark groove shadow, tapered ends;
* ``spot`` -- a stain, a pit (dark core, bright rim) or a bright residue, irregular outline;
* ``crack`` -- a dark jagged random-walk polyline with branches.

Sizes scale with ``min(width, height) / 256`` so that defects stay visible after the frame is
resized to 128 x 128 (the demo model's input) at the default 256 x 256.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Final, Self

import cv2
import numpy as np
import numpy.typing as npt

from camera._pacing import Pacer
from camera.config import SyntheticSourceConfig
from camera.frame import ClosedOnExit, Frame, Image

__all__ = ["LABELS", "DefectGenerator", "DefectTruth", "FrameTruth", "SyntheticSource"]

LABELS: Final = ("ok", "scratch", "spot", "crack")
"""Class names, in the order the demo model's logits use."""

_DEFECT_KINDS: Final = LABELS[1:]
_FINISHES: Final = ("brushed", "cast", "turned")
_FINISH_P: Final = (0.45, 0.3, 0.25)

F32 = npt.NDArray[np.float32]
Points = npt.NDArray[np.float64]  # (N, 2) x, y


@dataclass(frozen=True, slots=True)
class DefectTruth:
    """One defect instance: its kind and its box ``(x0, y0, x1, y1)``, ``x0 <= x < x1``, in pixels."""

    label: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class FrameTruth:
    """What a rendered frame shows: ``label`` is the defect kind or ``"ok"``."""

    label: str
    defects: tuple[DefectTruth, ...] = ()

    @property
    def defective(self) -> bool:
        """True when the frame carries a defect."""
        return self.label != "ok"


def _blur(image: F32, sigma: float) -> F32:
    """Gaussian blur of a float32 image, ``sigma`` in pixels."""
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.float32)


def _smooth_noise_1d(rng: np.random.Generator, n: int, sigma: float) -> F32:
    """``n`` samples of unit-variance noise low-passed with a Gaussian of ``sigma`` samples."""
    noise = rng.standard_normal((1, n)).astype(np.float32)
    if sigma > 0.3:
        noise = np.asarray(cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma, sigmaY=0.01), dtype=np.float32)
        std = float(noise.std())
        if std > 0:
            noise /= std
    row: F32 = noise[0]
    return row


def _low_freq(rng: np.random.Generator, h: int, w: int, cell: float) -> F32:
    """Smooth unit-ish noise with features about ``cell`` pixels across."""
    gh, gw = max(2, math.ceil(h / cell) + 2), max(2, math.ceil(w / cell) + 2)
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    big = cv2.resize(grid, (w + 2 * int(cell), h + 2 * int(cell)), interpolation=cv2.INTER_CUBIC)
    c = int(cell)
    return np.ascontiguousarray(big[c : c + h, c : c + w], dtype=np.float32)


def _box(points: Points, pad: float, w: int, h: int) -> tuple[int, int, int, int]:
    """Bounding box of ``points`` grown by ``pad``, clipped to the frame, never empty."""
    x0 = int(max(0, math.floor(points[:, 0].min() - pad)))
    y0 = int(max(0, math.floor(points[:, 1].min() - pad)))
    x1 = int(min(w, math.ceil(points[:, 0].max() + pad) + 1))
    y1 = int(min(h, math.ceil(points[:, 1].max() + pad) + 1))
    x0, y0 = min(x0, w - 1), min(y0, h - 1)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


class DefectGenerator:
    """Renders frame ``index`` of the stream named by ``seed``: an H x W x 3 uint8 BGR image and its truth."""

    def __init__(self, seed: int, width: int, height: int, defect_rate: float) -> None:
        # Programming errors: the config's own bounds (SyntheticSourceConfig) keep users from these.
        if width < 16 or height < 16:
            msg = f"frame size must be at least 16x16, got {width}x{height}"
            raise ValueError(msg)
        if not 0.0 <= defect_rate <= 1.0:
            msg = f"defect_rate must be within [0, 1], got {defect_rate}"
            raise ValueError(msg)
        self.seed = seed
        self.width = width
        self.height = height
        self.defect_rate = defect_rate
        self._scale = min(width, height) / 256.0
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self._xx: F32 = xx
        self._yy: F32 = yy

    def _streams(self, index: int) -> tuple[np.random.Generator, ...]:
        """Independent random streams of frame ``index``: decision, part, defects, camera.

        Separate streams make the part and the camera noise the same whether or not the frame
        is defective, so two generators that differ only in ``defect_rate`` render the same part.
        """
        if index < 0:
            msg = f"frame index must be >= 0, got {index}"  # a programming error
            raise ValueError(msg)
        root = np.random.SeedSequence([self.seed % 2**64, index])
        return tuple(np.random.default_rng(child) for child in root.spawn(4))

    def label(self, index: int) -> str:
        """The defect kind on frame ``index`` ("ok" for none), without rendering the frame."""
        return self._kind(self._streams(index)[0])

    def _kind(self, decide: np.random.Generator) -> str:
        defective = bool(decide.random() < self.defect_rate)
        return str(decide.choice(_DEFECT_KINDS)) if defective else "ok"

    def render(self, index: int) -> tuple[Image, FrameTruth]:
        """Frame ``index``: the image and what is on it."""
        decide, part_rng, defect_rng, camera_rng = self._streams(index)
        kind = self._kind(decide)
        defective = kind != "ok"
        surface, part = self._surface(part_rng)
        defects: tuple[DefectTruth, ...] = ()
        if defective:
            delta = np.zeros_like(surface)
            count = int(defect_rng.choice((1, 2, 3), p=(0.55, 0.3, 0.15)))
            boxes = [self._draw_defect(defect_rng, kind, delta, part) for _ in range(count)]
            surface += delta
            defects = tuple(DefectTruth(kind, box) for box in boxes)
        image = self._finish(camera_rng, surface)
        return image, FrameTruth(kind, defects)

    # --- the part -------------------------------------------------------------------------

    def _surface(self, rng: np.random.Generator) -> tuple[F32, npt.NDArray[np.bool_]]:
        """Grey-level surface (about 0-255) and the mask of where the part's face is."""
        h, w, s = self.height, self.width, self._scale
        xx, yy = self._xx, self._yy
        finish = str(rng.choice(_FINISHES, p=_FINISH_P))
        base = float(rng.uniform(105.0, 165.0))
        if finish == "brushed":
            tex = self._brushed(rng)
        elif finish == "cast":
            tex = self._cast(rng)
        else:
            tex = self._turned(rng)
        surf = base + tex

        # Lighting: a gradient, a broad specular band, a vignette.
        phi = rng.uniform(0, 2 * math.pi)
        ramp = (xx - w / 2) * math.cos(phi) + (yy - h / 2) * math.sin(phi)
        surf += float(rng.uniform(10.0, 35.0)) * ramp / max(w, h)
        if rng.random() < 0.7:
            psi = rng.uniform(0, math.pi)
            across = -(xx - w / 2) * math.sin(psi) + (yy - h / 2) * math.cos(psi)
            offset = rng.uniform(-0.5, 0.5) * min(w, h)
            width_px = rng.uniform(25.0, 80.0) * s
            surf += float(rng.uniform(8.0, 40.0)) * np.exp(-(((across - offset) / width_px) ** 2))
        r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (0.5 * (w * w + h * h))
        surf -= float(rng.uniform(5.0, 30.0)) * r2

        part = np.ones((h, w), dtype=bool)
        if rng.random() < 0.25:
            surf, part = self._edge(rng, surf, part)
        if rng.random() < 0.25:
            surf, part = self._hole(rng, surf, part)
        return surf.astype(np.float32), part

    def _brushed(self, rng: np.random.Generator) -> F32:
        """Straight directional grain: fine streaks, coarse bands, broken up along their length."""
        s = self._scale
        theta = rng.uniform(0, math.pi)
        across = -self._xx * math.sin(theta) + self._yy * math.cos(theta)
        lo = float(across.min())
        n = int(float(across.max()) - lo) + 4
        fine = _smooth_noise_1d(rng, n, 0.6 * s)
        coarse = _smooth_noise_1d(rng, n, 6.0 * s)
        pos = np.arange(n, dtype=np.float32)
        idx = (across - lo).ravel()
        profile = float(rng.uniform(3.0, 7.0)) * fine + float(rng.uniform(2.0, 6.0)) * coarse
        grain = np.interp(idx, pos, profile).reshape(across.shape).astype(np.float32)
        modulation = 1.0 + 0.35 * _low_freq(rng, self.height, self.width, 24.0 * s)
        speckle = rng.standard_normal(grain.shape).astype(np.float32)
        speckle = _blur(speckle, 0.7 * s)
        broad = _low_freq(rng, self.height, self.width, 60 * s)
        out: F32 = grain * modulation + 2.0 * speckle + 5.0 * broad
        return out

    def _cast(self, rng: np.random.Generator) -> F32:
        """Isotropic blasted/cast grain with blotches and sparse tiny pores."""
        h, w, s = self.height, self.width, self._scale
        grain = rng.standard_normal((h, w)).astype(np.float32)
        grain = _blur(grain, float(rng.uniform(0.7, 1.4)) * s)
        grain *= float(rng.uniform(10.0, 18.0)) / max(float(grain.std()), 1e-6)
        tex = grain + float(rng.uniform(4.0, 10.0)) * _low_freq(rng, h, w, 14.0 * s)
        pores = np.zeros((h, w), dtype=np.float32)
        for _ in range(int(rng.integers(0, 12))):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            radius = max(1, round(rng.uniform(0.5, 1.2) * s))
            cv2.circle(pores, (int(cx), int(cy)), radius, float(rng.uniform(10, 25)), -1, cv2.LINE_AA)
        return tex - pores

    def _turned(self, rng: np.random.Generator) -> F32:
        """Concentric lathe marks around a centre well outside the frame."""
        h, w, s = self.height, self.width, self._scale
        dist = rng.uniform(1.2, 4.0) * max(w, h)
        ang = rng.uniform(0, 2 * math.pi)
        cx, cy = w / 2 + dist * math.cos(ang), h / 2 + dist * math.sin(ang)
        r = np.sqrt((self._xx - cx) ** 2 + (self._yy - cy) ** 2)
        lo = float(r.min())
        n = int(float(r.max()) - lo) + 4
        fine = _smooth_noise_1d(rng, n, 0.5 * s)
        pos = np.arange(n, dtype=np.float32)
        period = rng.uniform(3.0, 7.0) * s
        groove = np.sin(2 * math.pi * pos / period + rng.uniform(0, 2 * math.pi)).astype(np.float32)
        profile = float(rng.uniform(3.0, 6.0)) * fine + float(rng.uniform(1.5, 4.0)) * groove
        tex = np.interp((r - lo).ravel(), pos, profile).reshape(r.shape).astype(np.float32)
        out: F32 = tex + 4.0 * _low_freq(rng, h, w, 30 * s)
        return out

    def _edge(
        self, rng: np.random.Generator, surf: F32, part: npt.NDArray[np.bool_]
    ) -> tuple[F32, npt.NDArray[np.bool_]]:
        """The part's edge near one border: dark fixture beyond, a bright chamfer along it."""
        h, w, s = self.height, self.width, self._scale
        side = int(rng.integers(0, 4))
        tilt = rng.uniform(-0.15, 0.15)
        depth = rng.uniform(0.04, 0.15)
        if side in (0, 1):  # left / right: distance from a near-vertical line
            x_line = depth * w + tilt * (self._yy - h / 2)
            d = (self._xx - x_line) if side == 0 else ((w - 1 - self._xx) - x_line)
        else:
            y_line = depth * h + tilt * (self._xx - w / 2)
            d = (self._yy - y_line) if side == 2 else ((h - 1 - self._yy) - y_line)
        chamfer = rng.uniform(2.5, 5.0) * s
        fixture = float(rng.uniform(15.0, 45.0)) + 4.0 * rng.standard_normal(surf.shape).astype(np.float32)
        bright = float(rng.uniform(30.0, 70.0))
        alpha = np.clip(d / 1.2, 0.0, 1.0)  # 0 beyond the edge, 1 on the face
        band = np.clip(1.0 - np.abs(d - chamfer / 2) / (chamfer / 2), 0.0, 1.0)
        out = alpha * surf + (1 - alpha) * fixture + bright * band
        return out.astype(np.float32), part & (d > chamfer + 4 * s)

    def _hole(
        self, rng: np.random.Generator, surf: F32, part: npt.NDArray[np.bool_]
    ) -> tuple[F32, npt.NDArray[np.bool_]]:
        """A machined hole: dark bore with a shaded inside and a bright rim."""
        h, w, s = self.height, self.width, self._scale
        radius = rng.uniform(14.0, 30.0) * s
        cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        d = np.sqrt((self._xx - cx) ** 2 + (self._yy - cy) ** 2) - radius
        inside = np.clip(-d / 1.2 + 0.5, 0.0, 1.0)
        shade = float(rng.uniform(20.0, 55.0)) + 25.0 * (self._xx - cx) / radius
        rim_w = rng.uniform(1.5, 3.0) * s
        rim = np.clip(1.0 - np.abs(d - rim_w / 2) / rim_w, 0.0, 1.0)
        out = (1 - inside) * surf + inside * shade + float(rng.uniform(25.0, 60.0)) * rim
        return out.astype(np.float32), part & (d > rim_w + 6 * s)

    # --- defects --------------------------------------------------------------------------

    def _anchor(self, rng: np.random.Generator, part: npt.NDArray[np.bool_]) -> tuple[float, float]:
        """A defect centre on the part's face, away from the frame border."""
        w, h = self.width, self.height
        x, y = w / 2, h / 2
        for _ in range(50):
            x, y = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
            if part[int(y), int(x)]:
                break
        return x, y

    def _draw_defect(
        self, rng: np.random.Generator, kind: str, delta: F32, part: npt.NDArray[np.bool_]
    ) -> tuple[int, int, int, int]:
        cx, cy = self._anchor(rng, part)
        if kind == "scratch":
            return self._scratch(rng, cx, cy, delta)
        if kind == "spot":
            return self._spot(rng, cx, cy, delta)
        return self._crack(rng, cx, cy, delta)

    def _stroke(self, pts: Points, weights: npt.NDArray[np.float64], thickness: float) -> F32:
        """Anti-aliased polyline mask (0-1) of the given thickness, intensity per segment."""
        h, w = self.height, self.width
        shift = 4  # sub-pixel precision for cv2 drawing
        mask = np.zeros((h, w), dtype=np.float32)
        ipts = np.round(pts * (1 << shift)).astype(np.int32)
        t = max(1, round(thickness))
        for i in range(len(ipts) - 1):
            p0 = (int(ipts[i, 0]), int(ipts[i, 1]))
            p1 = (int(ipts[i + 1, 0]), int(ipts[i + 1, 1]))
            cv2.line(mask, p0, p1, float(weights[i]), t, cv2.LINE_AA, shift)
        if thickness < t:  # thin it optically: soften and lower the peak
            mask *= thickness / t
        return mask

    def _scratch(self, rng: np.random.Generator, cx: float, cy: float, delta: F32) -> tuple[int, int, int, int]:
        s = self._scale
        length = rng.uniform(35.0, 110.0) * s
        ang = rng.uniform(0, math.pi)
        n = max(8, int(length / (2 * s)))
        t = np.linspace(-0.5, 0.5, n)
        if rng.random() < 0.4:  # an arc: bend the segment around a far centre
            bend = rng.uniform(-1.0, 1.0) / (rng.uniform(1.5, 4.0) * length)
            along = t * length
            perp = 0.5 * bend * along**2
        else:
            along, perp = t * length, np.zeros_like(t)
        ca, sa = math.cos(ang), math.sin(ang)
        pts = np.stack([cx + along * ca - perp * sa, cy + along * sa + perp * ca], axis=1)
        taper = np.sin(np.pi * np.clip((t[:-1] + 0.5) * 1.0, 0.0, 1.0)) ** 0.4
        thickness = rng.uniform(1.8, 2.8) * s
        mask = self._stroke(pts, taper, thickness)
        mask = _blur(mask, 0.4 * s)
        # A groove catches the light on one flank and shades the other: a bright line with a dark
        # companion beside it (or the reverse), never a plain dark line like a crack.
        contrast = float(rng.uniform(50.0, 90.0))
        sign = 1.0 if rng.random() < 0.75 else -1.0
        off = max(1.0, 1.5 * s)
        dx, dy = round(-sa * off), round(ca * off)
        if rng.random() < 0.5:
            dx, dy = -dx, -dy
        shadow = np.clip(np.roll(mask, (int(dy), int(dx)), axis=(0, 1)) - mask, 0.0, 1.0)
        delta += sign * contrast * mask - sign * 0.5 * contrast * shadow
        return _box(pts, thickness + 1.5 * s, self.width, self.height)

    def _spot(self, rng: np.random.Generator, cx: float, cy: float, delta: F32) -> tuple[int, int, int, int]:
        s = self._scale
        radius = rng.uniform(4.5, 11.0) * s
        style = str(rng.choice(("stain", "pit", "residue"), p=(0.45, 0.35, 0.2)))
        ax = rng.uniform(0.7, 1.3)
        rot = rng.uniform(0, math.pi)
        xs, ys = self._xx - cx, self._yy - cy
        u = (xs * math.cos(rot) + ys * math.sin(rot)) / ax
        v = (-xs * math.sin(rot) + ys * math.cos(rot)) * ax
        rho = np.sqrt(u * u + v * v)
        phi = np.arctan2(v, u)
        wobble = np.ones_like(rho)
        for k in (2, 3, 5):
            wobble += float(rng.uniform(0.0, 0.18)) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
        d = rho / (radius * wobble)  # < 1 inside the outline
        if style == "stain":
            edge = rng.uniform(0.25, 0.5)
            m = np.clip((1.0 - d) / edge, 0.0, 1.0) ** 0.8
            delta -= float(rng.uniform(40.0, 80.0)) * m
        elif style == "pit":
            core = np.clip((0.8 - d) / 0.2, 0.0, 1.0)
            ring = np.clip(1.0 - np.abs(d - 0.95) / 0.18, 0.0, 1.0)
            delta += -float(rng.uniform(60.0, 100.0)) * core + float(rng.uniform(25.0, 50.0)) * ring
        else:
            m = np.clip((1.0 - d) / 0.35, 0.0, 1.0)
            delta += float(rng.uniform(40.0, 75.0)) * m
        reach = radius * 1.25 * max(ax, 1 / ax)
        pts = np.array([[cx - reach, cy - reach], [cx + reach, cy + reach]])
        return _box(pts, 1.0, self.width, self.height)

    def _walk(self, rng: np.random.Generator, x: float, y: float, ang: float, length: float) -> Points:
        """A jagged path: each step veers independently around a slowly drifting heading."""
        s = self._scale
        step = 2.0 * s
        n = max(3, int(length / step))
        pts = np.empty((n + 1, 2))
        pts[0] = x, y
        heading = ang
        for i in range(n):
            heading += rng.normal(0.0, 0.15)
            a = heading + rng.normal(0.0, 0.6)
            x += step * math.cos(a)
            y += step * math.sin(a)
            pts[i + 1] = x, y
        return pts

    def _crack(self, rng: np.random.Generator, cx: float, cy: float, delta: F32) -> tuple[int, int, int, int]:
        s = self._scale
        length = rng.uniform(35.0, 90.0) * s
        ang = rng.uniform(0, 2 * math.pi)
        half = self._walk(rng, cx, cy, ang, length / 2)
        other = self._walk(rng, cx, cy, ang + math.pi, length / 2)
        trunk = np.concatenate([other[::-1], half[1:]])
        branches = [trunk]
        for _ in range(int(rng.integers(0, 3))):
            start = trunk[int(rng.integers(1, len(trunk) - 1))]
            seg = trunk[-1] - trunk[0]
            base = math.atan2(seg[1], seg[0]) + rng.choice((-1.0, 1.0)) * rng.uniform(0.4, 1.1)
            branches.append(self._walk(rng, float(start[0]), float(start[1]), base, rng.uniform(0.25, 0.5) * length))
        contrast = float(rng.uniform(55.0, 95.0))
        mask = np.zeros_like(delta)
        for i, pts in enumerate(branches):
            weights = np.full(len(pts) - 1, 1.0 if i == 0 else 0.8)
            thickness = rng.uniform(1.5, 2.4) * s if i == 0 else rng.uniform(1.0, 1.6) * s
            np.maximum(mask, self._stroke(pts, weights, thickness), out=mask)
        mask = _blur(mask, 0.35 * s)
        delta -= contrast * mask
        return _box(np.concatenate(branches), 2.5 * s, self.width, self.height)

    # --- camera ---------------------------------------------------------------------------

    def _finish(self, rng: np.random.Generator, surf: F32) -> Image:
        """Exposure jitter, optics blur, sensor noise, metal tint; to uint8 BGR."""
        h, w, s = self.height, self.width, self._scale
        surf = surf * float(rng.uniform(0.85, 1.15)) + float(rng.uniform(-12.0, 12.0))
        sigma = rng.uniform(0.0, 0.7) * s
        if sigma > 0.25:
            surf = _blur(surf, sigma)
        tint = np.array([1.0, 1.0, 1.0]) + rng.normal(0.0, 0.03, 3)
        tint += np.array([1.0, 0.0, -1.0]) * rng.uniform(-0.04, 0.04)  # cool ... warm
        img = surf[:, :, None] * tint.astype(np.float32)[None, None, :]
        img += rng.normal(0.0, rng.uniform(1.5, 4.0), (h, w, 3)).astype(np.float32)
        out: Image = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        return out


class SyntheticSource(ClosedOnExit):
    """A :class:`camera.frame.FrameSource` that renders frames with :class:`DefectGenerator`.

    ``Frame.source_ref`` is ``"synthetic:<seed>:<index>"``; ``Frame.extra["truth"]`` is the
    frame's :class:`FrameTruth`.
    """

    def __init__(self, config: SyntheticSourceConfig) -> None:
        self.config = config
        self._gen = DefectGenerator(config.seed, config.width, config.height, config.defect_rate)
        self._pacer = Pacer(config.fps)
        self._index = 0

    @property
    def description(self) -> str:
        """Human-readable name (nothing secret in it)."""
        c = self.config
        return f"synthetic(seed={c.seed}, {c.width}x{c.height}, defect_rate={c.defect_rate})"

    def __enter__(self) -> Self:
        self._index = 0
        self._pacer.reset()
        return self

    def close(self) -> None:
        """Nothing to release: frames are rendered on demand."""

    def read(self) -> Frame | None:
        """The next frame, paced to ``fps``; ``None`` after ``count`` frames (0: never ends)."""
        if self.config.count and self._index >= self.config.count:
            return None
        self._pacer.wait()
        index = self._index
        image, truth = self._gen.render(index)
        self._index += 1
        return Frame(
            image=image,
            index=index,
            timestamp=time.time(),
            monotonic=time.monotonic(),
            source_ref=f"synthetic:{self.config.seed}:{index}",
            extra={"truth": truth},
        )
