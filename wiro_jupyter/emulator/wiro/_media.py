"""Synthetic output media: images, audio, animations and big binary blobs.

Everything is deterministic (derived from the inputs by hashing) so tests can
compare runs, and cheap enough to render on a thread of the emulator's loop.
Pillow is imported inside the functions so that importing the emulator stays fast.
"""

from __future__ import annotations

import array
import hashlib
import io
import json
import math
import struct
import sys
import wave
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image as PILImage

SAMPLE_RATE = 24_000  # PCM16 mono 24 kHz, the realtime/TTS audio format (docs/protocol.md, Wiro §9)
BLOB_CHUNK = 256 * 1024

IMAGE_FORMATS = {"png": ("PNG", "png", "image/png"), "jpeg": ("JPEG", "jpg", "image/jpeg"),
                 "jpg": ("JPEG", "jpg", "image/jpeg"), "webp": ("WEBP", "webp", "image/webp")}


def image_format(name: str) -> tuple[str, str, str]:
    """(Pillow format, file extension, content type) for an `outputFormat` option value."""
    return IMAGE_FORMATS.get((name or "png").lower(), IMAGE_FORMATS["png"])


def _digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


def _colours(*parts: object) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    d = _digest(*parts)
    return (d[0], d[1], d[2]), (d[3], d[4], d[5])


def _gradient(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> PILImage.Image:
    from PIL import Image

    ramp = Image.linear_gradient("L").resize((width, height))
    bands = [ramp.point(lambda v, a=a, b=b: int(a + (b - a) * v / 255)) for a, b in zip(top, bottom, strict=True)]
    return Image.merge("RGB", bands)


def _wrap(text: str, width: int) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if len(candidate) > width and line:
            lines.append(line)
            line = word
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines[:12]


def _caption(image: PILImage.Image, text: str) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    chars = max(8, image.width // 8)
    y = 8
    for line in _wrap(text, chars):
        draw.text((9, y + 1), line, fill=(0, 0, 0))
        draw.text((8, y), line, fill=(255, 255, 255))
        y += 14


def _encode(image: PILImage.Image, fmt: str = "PNG", **options: Any) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and image.mode != "RGB":
        image = image.convert("RGB")
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def generated_image(prompt: str, seed: int, index: int, width: int, height: int,
                    style: str = "", output_format: str = "png") -> bytes:
    """A gradient picked from (prompt, seed, index) with the prompt written on it."""
    from PIL import Image, ImageOps

    top, bottom = _colours(prompt, seed, index)
    image = _gradient(width, height, top, bottom)
    if style == "pixel-art":
        small = image.resize((max(1, width // 16), max(1, height // 16)))
        image = small.resize((width, height), Image.Resampling.NEAREST)
    elif style == "illustration":
        image = ImageOps.posterize(image, 3)
    _caption(image, f"#{index} seed {seed}: {prompt}")
    return _encode(image, image_format(output_format)[0])


def placeholder_image(label: str, size: tuple[int, int] = (256, 256)) -> PILImage.Image:
    """What a model sees for an input it cannot read (a remote URL: the emulator has no network)."""
    top, bottom = _colours("placeholder", label)
    image = _gradient(size[0], size[1], top, bottom)
    _caption(image, label)
    return image


def open_image(data: bytes | None, label: str) -> PILImage.Image:
    from PIL import Image

    if data:
        try:
            with Image.open(io.BytesIO(data)) as opened:
                return opened.convert("RGB")
        except Exception:  # not an image: the model would fail on it, the emulator shows a placeholder
            pass
    return placeholder_image(label)


def transformed_image(data: bytes | None, label: str, effect: str, strength: float) -> bytes:
    """image-to-image: the input with an effect blended in by `strength` (0..1)."""
    from PIL import Image, ImageOps

    source = open_image(data, label)
    if effect == "grayscale":
        changed = ImageOps.grayscale(source).convert("RGB")
    elif effect == "posterize":
        changed = ImageOps.posterize(source, 2)
    else:
        changed = ImageOps.invert(source)
    return _encode(Image.blend(source, changed, max(0.0, min(1.0, strength))))


def blended_image(inputs: Sequence[tuple[bytes | None, str]], mode: str) -> bytes:
    """image-blend: inputs averaged, or tiled side by side."""
    from PIL import Image

    images = [open_image(data, label).resize((256, 256)) for data, label in inputs] or [placeholder_image("empty")]
    if mode == "tile":
        canvas = Image.new("RGB", (256 * len(images), 256))
        for i, image in enumerate(images):
            canvas.paste(image, (256 * i, 0))
        return _encode(canvas)
    result = images[0]
    for i, image in enumerate(images[1:], start=2):
        result = Image.blend(result, image, 1.0 / i)
    return _encode(result)


def small_png(text: str) -> bytes:
    image = placeholder_image(text, (128, 128))
    return _encode(image)


def cover_image(title: str) -> bytes:
    """The catalogue picture of a synthetic model (Tool/List `image`)."""
    top, bottom = _colours("cover", title)
    image = _gradient(320, 200, top, bottom)
    _caption(image, title)
    return _encode(image, "JPEG", quality=80)


def animation(prompt: str, frames: int) -> tuple[bytes, bytes]:
    """text-to-video stand-in: a ball crossing a gradient, as (GIF, animated WebP)."""
    from PIL import ImageDraw

    top, bottom = _colours("animate", prompt)
    base = _gradient(160, 120, top, bottom)
    pictures = []
    for i in range(frames):
        frame = base.copy()
        draw = ImageDraw.Draw(frame)
        x = 10 + (140 * i) // max(1, frames - 1)
        y = 60 + int(30 * math.sin(i / max(1, frames) * 2 * math.pi))
        draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=(255, 255, 255))
        draw.text((4, 4), prompt[:24], fill=(0, 0, 0))
        pictures.append(frame)
    gif = _encode(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    webp = _encode(pictures[0], "WEBP", save_all=True, append_images=pictures[1:], duration=80, loop=0)
    return gif, webp


def speech_wav(text: str, voice: str, speed: float) -> bytes:
    """text-to-speech stand-in: one short tone per character, PCM16 mono 24 kHz (docs/protocol.md, Wiro §9)."""
    speed = max(0.25, min(4.0, speed or 1.0))
    base = {"marin": 1.0, "cedar": 0.8, "robot": 1.25}.get(voice, 1.0)
    per_char = int(SAMPLE_RATE * 0.06 / speed)
    samples = array.array("h")
    for char in text[:160]:
        if char.isspace():
            samples.extend([0] * per_char)
            continue
        step = 2 * math.pi * base * (220 + (ord(char) * 37) % 660) / SAMPLE_RATE
        samples.extend(
            int(9000 * min(1.0, n / 200, (per_char - n) / 200) * math.sin(step * n)) for n in range(per_char)
        )
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()


def pcm_peak(pcm: bytes) -> int:
    """Loudest sample of a PCM16 LE chunk (for the realtime transcript text)."""
    count = len(pcm) // 2
    if not count:
        return 0
    return max(abs(v) for (v,) in struct.iter_unpack("<h", pcm[: count * 2]))


def params_json(parameters: dict[str, Any]) -> bytes:
    return json.dumps(parameters, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


def _blob_block(seed: str) -> bytes:
    # One deterministic 256 KiB pattern; each chunk of the blob is this block with
    # its chunk number stamped on the first 8 bytes, so chunks differ but memory stays constant.
    out = bytearray()
    counter = 0
    while len(out) < BLOB_CHUNK:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:BLOB_CHUNK])


def blob_byte_range(seed: str, start: int, end: int) -> AsyncIterator[bytes]:
    """Bytes [start, end) of the deterministic blob, as an async generator of chunks (constant memory)."""
    block = _blob_block(seed)

    async def chunks() -> AsyncIterator[bytes]:
        position = start
        while position < end:
            index, offset = divmod(position, BLOB_CHUNK)
            chunk = bytearray(block)
            chunk[0:8] = index.to_bytes(8, "big")
            piece = bytes(chunk[offset: offset + min(BLOB_CHUNK - offset, end - position)])
            position += len(piece)
            yield piece

    return chunks()
