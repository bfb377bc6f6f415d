"""Audio for realtime sessions: whatever the user has, as the PCM16 LE mono 24 kHz that Wiro speaks (Wiro §9).

Resampling is soxr's (a maintained, high-quality resampler), WAV reading the stdlib's `wave`.
numpy and soxr are imported on first use only, and not at all for PCM that is already 24 kHz
mono (the microphone of the widget), so importing the package stays fast.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .._exceptions import ValidationError

if TYPE_CHECKING:
    import numpy as np

RATE = 24_000
SAMPLE_BYTES = 2
FRAME_BYTES = 9_600  # 200 ms: the chunk size of the docs' microphone code (Wiro §9)

#: A WAV path, raw PCM16 LE mono bytes, or a NumPy array of int16 / float samples (frames × channels).
AudioSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, "np.ndarray[Any, Any]"]

_HINT = "Nothing was sent. Pass a 16-bit PCM WAV file, raw PCM16 bytes (with rate=), or a NumPy array (with rate=)."


def seconds(pcm: bytes) -> float:
    return len(pcm) / (RATE * SAMPLE_BYTES)


def to_pcm(source: AudioSource, rate: int | None = None) -> bytes:
    """`source` as PCM16 LE mono 24 kHz bytes.

    - a WAV path: any rate and channel count, 16-bit samples (`rate` must be absent or agree);
    - bytes: PCM16 LE mono at `rate` (default 24 000);
    - a NumPy array at `rate` (required): int16, or float in [-1, 1]; shape (frames,) or (frames, channels).
    """
    if isinstance(source, (str, os.PathLike)):
        samples, file_rate = _read_wav(Path(source))
        if rate is not None and int(rate) != file_rate:
            raise ValidationError(f"{source} is a {file_rate} Hz WAV file, but rate={rate} was given.", hint=_HINT)
        return _convert(samples, file_rate)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) % SAMPLE_BYTES:
            raise ValidationError(f"{len(data)} bytes is not whole PCM16 samples (2 bytes each).", hint=_HINT)
        if rate is None or int(rate) == RATE:
            return data  # already the wire format: no numpy needed
        import numpy as np

        return _convert(np.frombuffer(data, dtype="<i2"), int(rate))
    if type(source).__module__ == "numpy" and hasattr(source, "dtype"):
        if rate is None:
            raise ValidationError("A NumPy array carries no sample rate.", hint=f"Pass rate=, e.g. rate=16000. {_HINT}")
        return _convert(source, int(rate))
    raise ValidationError(f"Cannot send {type(source).__name__} as audio.", hint=_HINT)


def _read_wav(path: Path) -> tuple[np.ndarray[Any, Any], int]:
    import numpy as np

    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise ValidationError(f"There is no file {path}.", hint=_HINT) from None
    except (wave.Error, EOFError) as exc:
        raise ValidationError(f"{path} is not a PCM WAV file that can be read ({exc}).", hint=_HINT) from None
    if width != SAMPLE_BYTES:
        raise ValidationError(f"{path} has {8 * width}-bit samples; only 16-bit PCM is read.", hint=_HINT)
    return np.frombuffer(data, dtype="<i2").reshape(-1, channels), rate


def _convert(samples: np.ndarray[Any, Any], rate: int) -> bytes:
    """Mix down to mono and resample to 24 kHz with soxr; PCM16 LE bytes."""
    import numpy as np

    if rate <= 0:
        raise ValidationError(f"rate={rate} is not a sample rate.", hint=_HINT)
    array = np.asarray(samples)
    if array.ndim not in (1, 2):
        raise ValidationError(f"An array of shape {array.shape} is not audio (frames, or frames × channels).", hint=_HINT)
    if array.dtype == np.int16:
        mono = array.astype(np.float32)
    elif np.issubdtype(array.dtype, np.floating):
        mono = array.astype(np.float32) * 32767.0
    else:
        raise ValidationError(f"Samples of type {array.dtype} cannot be sent; use int16 or float.", hint=_HINT)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    if rate != RATE and mono.size:
        import soxr

        mono = soxr.resample(mono, rate, RATE, quality="HQ")
    return np.clip(np.rint(mono), -32768, 32767).astype("<i2").tobytes()


def frames(pcm: bytes, size: int = FRAME_BYTES) -> Iterator[bytes]:
    """`pcm` in frames of at most `size` bytes (whole samples)."""
    size -= size % SAMPLE_BYTES
    for offset in range(0, len(pcm), size):
        yield pcm[offset: offset + size]


def write_wav(path: str | os.PathLike[str], pcm: bytes) -> Path:
    """Save PCM16 LE mono 24 kHz as a WAV file."""
    target = Path(path)
    with wave.open(str(target), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_BYTES)
        wav.setframerate(RATE)
        wav.writeframes(pcm)
    return target
