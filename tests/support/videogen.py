"""Generate small test videos with PyAV (no ffmpeg binary needed).

Scenes are built from real photos (``skimage.data``) so that the shot detector
and the redundancy folding see realistic content, not flat colours.

    make_video(path, [(coffee(), 3.0), (chelsea(), 3.0)], fps=10)
    make_vfr_video(path, [(img, 0.0), (img, 0.1), (img, 0.9), ...])
    make_static_video(path, seconds=60)
    make_audio_only(path, seconds=2)
    truncated_copy(src, dst, keep=0.5)
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ImageLike = Image.Image | np.ndarray

# Encoder per container, in order of preference (first one PyAV has wins).
_CODECS: dict[str, tuple[str, ...]] = {
    ".mp4": ("libx264", "mpeg4"),
    ".m4v": ("libx264", "mpeg4"),
    ".mov": ("libx264", "mpeg4"),
    ".mkv": ("libx264", "mpeg4"),
    ".webm": ("libvpx-vp9", "libvpx"),
    ".avi": ("mpeg4", "mjpeg"),
}


def default_codec(path: str | Path) -> str:
    """The first encoder available for the container of ``path``."""
    for name in _CODECS.get(Path(path).suffix.lower(), ("libx264", "mpeg4")):
        if name in av.codecs_available:
            return name
    raise RuntimeError(f"no encoder available for {path}")


def fit(image: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """Resize and centre-crop ``image`` to exactly ``size`` (w, h); returns RGB uint8."""
    img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    img = img.convert("RGB")
    w, h = size
    scale = max(w / img.width, h / img.height)
    rw, rh = max(w, round(img.width * scale)), max(h, round(img.height * scale))
    img = img.resize((rw, rh), Image.Resampling.BILINEAR)
    left, top = (rw - w) // 2, (rh - h) // 2
    return np.asarray(img.crop((left, top, left + w, top + h)))


def write_frames(
    path: str | Path,
    frames: Iterable[tuple[np.ndarray, float]],
    *,
    size: tuple[int, int] = (320, 240),
    codec: str | None = None,
    rate: int = 10,
    time_base: Fraction = Fraction(1, 1000),
    rotation: int | None = None,
    faststart: bool = False,
    options: dict[str, str] | None = None,
    pix_fmt: str | None = None,
) -> Path:
    """Encode ``(rgb array, time in seconds)`` pairs with explicit pts.

    ``rotation`` is stored as a display matrix (counter-clockwise degrees, as
    PyAV's ``VideoStream.set_display_rotation`` takes them). ``faststart`` puts
    the mp4 index at the front, so that a truncated copy still opens.
    """
    path = Path(path)
    codec = codec or default_codec(path)
    mp4_like = path.suffix.lower() in (".mp4", ".m4v", ".mov")
    container_opts = {"movflags": "+faststart"} if faststart and mp4_like else {}
    with av.open(str(path), "w", options=container_opts) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "23", **(options or {})}
        elif codec == "libx265":
            quiet = {"preset": "ultrafast", "x265-params": "log-level=error"}
            stream.options = {**quiet, **(options or {})}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        last_pts = -1
        for array, t in frames:
            frame = av.VideoFrame.from_ndarray(fit(array, size), format="rgb24")
            frame = frame.reformat(format=stream.pix_fmt)
            pts = round(t / time_base)
            if pts <= last_pts:
                raise ValueError(f"timestamps must increase (at {t} s)")
            frame.pts, frame.time_base = pts, time_base
            last_pts = pts
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_video(
    path: str | Path,
    scenes: Sequence[tuple[ImageLike, float]],
    *,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    codec: str | None = None,
    rotation: int | None = None,
    motion: float = 0.0,
    faststart: bool = False,
    pix_fmt: str | None = None,
) -> Path:
    """Constant-frame-rate video: each scene is an image shown for ``seconds``.

    ``motion`` > 0 pans slowly across each image (pixels per frame, on an image
    scaled 25% larger than the frame) so that scenes are not perfectly static.
    """
    w, h = size

    def gen() -> Iterable[tuple[np.ndarray, float]]:
        n = 0
        for image, seconds in scenes:
            count = round(seconds * fps)
            still = fit(image, size)
            if motion > 0:
                big = fit(image, (round(w * 1.25), round(h * 1.25)))
                span = big.shape[1] - w
            for i in range(count):
                if motion > 0:
                    x = round(i * motion) % (2 * span) if span else 0
                    x = x if x <= span else 2 * span - x
                    y = (big.shape[0] - h) // 2
                    yield big[y : y + h, x : x + w], n / fps
                else:
                    yield still, n / fps
                n += 1

    return write_frames(
        path,
        gen(),
        size=size,
        codec=codec,
        rate=fps,
        time_base=Fraction(1, fps),
        rotation=rotation,
        faststart=faststart,
        pix_fmt=pix_fmt,
    )


def make_vfr_video(
    path: str | Path,
    frames: Sequence[tuple[ImageLike, float]],
    *,
    size: tuple[int, int] = (320, 240),
    codec: str | None = None,
) -> Path:
    """Variable-frame-rate video: one frame per ``(image, time)`` at exactly that pts."""
    return write_frames(
        path,
        ((np.asarray(img), t) for img, t in frames),
        size=size,
        codec=codec,
        time_base=Fraction(1, 1000),
    )


def make_static_video(
    path: str | Path,
    image: ImageLike,
    seconds: float,
    *,
    fps: int = 5,
    size: tuple[int, int] = (160, 120),
    noise: float = 2.0,
    seed: int = 0,
) -> Path:
    """One image for ``seconds``, with a little sensor-like noise on each frame."""
    base = fit(image, size).astype(np.float32)
    rng = np.random.default_rng(seed)

    def gen() -> Iterable[tuple[np.ndarray, float]]:
        for i in range(round(seconds * fps)):
            noisy = base + rng.normal(0, noise, base.shape) if noise else base
            yield np.clip(noisy, 0, 255).astype(np.uint8), i / fps

    return write_frames(path, gen(), size=size, rate=fps, time_base=Fraction(1, fps))


def make_audio_only(path: str | Path, seconds: float = 1.0, *, codec: str = "aac") -> Path:
    """An audio-only file (a 440 Hz tone) in the container of ``path`` (.m4a, .mp4...)."""
    path = Path(path)
    rate = 44100
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = "mono"
        chunk = 1024
        t0 = 0
        total = int(seconds * rate)
        while t0 < total:
            t = (np.arange(t0, t0 + chunk) / rate).astype(np.float32)
            samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = t0
            for packet in stream.encode(frame):
                out.mux(packet)
            t0 += chunk
        for packet in stream.encode():
            out.mux(packet)
    return path


def truncated_copy(src: str | Path, dst: str | Path, keep: float = 0.5) -> Path:
    """Copy the first ``keep`` fraction of ``src``'s bytes to ``dst`` (a cut download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)


def copy_with_garbage(
    src: str | Path, dst: str | Path, at: float = 0.5, length: int = 4096
) -> Path:
    """Copy ``src`` with ``length`` bytes of noise written over the middle (bit rot)."""
    shutil.copyfile(src, dst)
    data = bytearray(Path(dst).read_bytes())
    start = int(len(data) * at)
    noise = np.random.default_rng(1).integers(0, 256, length, dtype=np.uint8).tobytes()
    data[start : start + length] = noise[: len(data) - start]
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def photos() -> dict[str, np.ndarray]:
    """The real photos used for scenes."""
    from skimage import data

    return {
        "coffee": data.coffee(),
        "chelsea": data.chelsea(),
        "rocket": data.rocket(),
        "astronaut": data.astronaut(),
    }
