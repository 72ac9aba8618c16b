"""Encoding speech: WAV and FLAC in pure Python/numpy; AAC (M4A) and Opus (Ogg) through PyAV.

The TTS image carries no FFmpeg, so the two lossless formats are written here: WAV by the
standard library, FLAC by a small encoder (fixed linear predictors, one Rice partition) that
is about 2x smaller than WAV on speech and decodes with any FLAC reader. The lossy formats
need PyAV (``vo-core[media]``); without it they fail with FAILED_PRECONDITION, not a crash.
"""

from __future__ import annotations

import hashlib
import io
import wave
from typing import Any

import numpy as np
from vo_core.errors import FailedPrecondition, InvalidInput

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "aac": "audio/mp4", "opus": "audio/ogg"}
"""MIME type of each format's container."""
SUFFIXES = {"wav": ".wav", "flac": ".flac", "aac": ".m4a", "opus": ".ogg"}
"""File name suffix of each format's container."""


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> tuple[bytes, str]:
    """Mono int16 ``samples`` encoded as ``fmt``; returns (bytes, media type)."""
    if fmt == "wav":
        data = encode_wav(samples, sample_rate)
    elif fmt == "flac":
        data = encode_flac(samples, sample_rate)
    elif fmt in ("aac", "opus"):
        data = encode_with_av(samples, sample_rate, fmt)
    else:
        raise InvalidInput(f"audio format {fmt!r} is unknown; use wav, flac, aac or opus")
    return data, MEDIA_TYPES[fmt]


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono RIFF WAVE."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def resample(samples: np.ndarray, src_rate: int, dst_rate: int, taps: int = 32) -> np.ndarray:
    """Band-limited resampling of int16 audio (windowed sinc, Kaiser window).

    Each output sample is a ``taps``-long dot product with a sinc centred on its exact input
    position and cut off below the lower Nyquist frequency, so downsampling does not alias.
    Work is done in blocks to keep memory flat on long audio.
    """
    if src_rate == dst_rate or len(samples) == 0:
        return samples
    x = samples.astype(np.float32)
    ratio = dst_rate / src_rate
    cutoff = min(1.0, ratio) * 0.95
    n_out = round(len(x) * ratio)
    half = taps // 2
    padded = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half + 1, np.float32)])
    offsets = np.arange(-half + 1, half + 1)
    window_beta = 8.0
    out = np.empty(n_out, np.float32)
    block = 1 << 16
    for lo in range(0, n_out, block):
        pos = np.arange(lo, min(n_out, lo + block)) / ratio  # exact input positions
        base = np.floor(pos).astype(np.int64)
        idx = base[:, None] + offsets[None, :]  # input sample indices for each output
        t = (idx - pos[:, None]).astype(np.float32)  # distance in input samples
        window = np.i0(window_beta * np.sqrt(np.clip(1.0 - (t / half) ** 2, 0.0, 1.0)))
        kernel = cutoff * np.sinc(cutoff * t) * window / np.i0(window_beta)
        out[lo : lo + len(pos)] = np.sum(padded[idx + half] * kernel, axis=1)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------------------------------
# FLAC (https://xiph.org/flac/format.html)

_BLOCK = 4096


def _crc8_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
        table.append(c)
    return table


def _crc16_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
        table.append(c)
    return table


_CRC8 = _crc8_table()
_CRC16 = _crc16_table()


def _crc16_pair_table() -> list[int]:
    # Two bytes at a time: after 16 bits the old state has been shifted out entirely, so
    # the new state depends only on (state XOR next two bytes). Halves the Python loop.
    t = np.array(_CRC16, np.uint32)
    v = np.arange(1 << 16, dtype=np.uint32)
    first = t[v >> 8]
    second = ((first << 8) & 0xFFFF) ^ t[(first >> 8) ^ (v & 0xFF)]
    return [int(c) for c in second]


_CRC16_PAIRS = _crc16_pair_table()


def _crc8(data: bytes) -> int:
    c = 0
    for b in data:
        c = _CRC8[c ^ b]
    return c


def _crc16_many(messages: list[bytes]) -> list[int]:
    """FLAC's CRC-16 of each message, all computed together.

    With a zero initial state, leading zero bytes do not change a CRC, so the messages are
    right-aligned in one zero-padded matrix and the table lookups run down its columns for
    every message at once: a few thousand numpy steps instead of a Python step per byte.
    """
    if not messages:
        return []
    width = max(len(m) for m in messages)
    width += width & 1
    matrix = np.zeros((len(messages), width), np.uint8)
    for i, m in enumerate(messages):
        matrix[i, width - len(m) :] = np.frombuffer(m, np.uint8)
    words = (matrix[:, 0::2].astype(np.uint32) << 8) | matrix[:, 1::2]
    table = np.array(_CRC16_PAIRS, np.uint32)
    c = np.zeros(len(messages), np.uint32)
    for column in words.T:
        c = table[c ^ column]
    return [int(v) for v in c]


def _utf8_number(n: int) -> bytes:
    """FLAC's frame number coding: UTF-8's scheme, extended to 36 bits."""
    if n < 0x80:
        return bytes([n])
    out = []
    lead_bits = 6  # payload bits left in the lead byte, shrinking as continuation bytes are added
    while n >= (1 << lead_bits):
        out.append(0x80 | (n & 0x3F))
        n >>= 6
        lead_bits -= 1
    count = len(out) + 1
    lead = ((0xFF << (8 - count)) & 0xFF) | n
    return bytes([lead, *reversed(out)])


def _bits(values: np.ndarray, widths: np.ndarray, significant: int | None = None) -> np.ndarray:
    """Concatenate each value's low ``width`` bits, most significant first, as a 0/1 array.

    ``significant`` bounds the bits that can be set (the rest are leading zeros), which keeps
    Rice codes cheap: their unary part is all zeros, however long it is.
    """
    total = int(widths.sum())
    out = np.zeros(total, np.uint8)
    ends = np.cumsum(widths)
    top = int(widths.max(initial=0)) if significant is None else significant
    for bit in range(top):
        has = widths > bit
        pos = ends[has] - 1 - bit
        out[pos] = (values[has] >> bit) & 1
    return out


def _rice_parameter(residual: np.ndarray) -> tuple[int, int]:
    """The best Rice parameter for one partition and the bits it costs."""
    u = np.abs(residual) * 2  # within one bit of the zigzag fold, plenty for choosing k
    n = len(u)
    mean = float(u.mean()) if n else 0.0
    guess = max(0, min(14, int(np.log2(mean + 1))))
    best_k, best_bits = 0, -1
    for k in range(max(0, guess - 1), min(14, guess + 1) + 1):  # 15 is the escape code
        size = int((u >> k).sum()) + n * (k + 1)
        if best_bits < 0 or size < best_bits:
            best_k, best_bits = k, size
    return best_k, best_bits


def _rice(residual: np.ndarray, k: int) -> np.ndarray:
    """The residual section (method 0, partition order 0, parameter ``k``) as bits."""
    u = np.where(residual >= 0, residual * 2, -residual * 2 - 1).astype(np.int64)
    q = u >> k
    header = np.array([0, 0, 0, 0, 0, 0, (k >> 3) & 1, (k >> 2) & 1, (k >> 1) & 1, k & 1], np.uint8)
    # Each residual is q zeros, a one, then the low k bits: one value of width q+1+k whose
    # value is (1 << k) | low bits reproduces exactly that pattern.
    body = _bits((1 << k) | (u & ((1 << k) - 1)), q + 1 + k, significant=k + 1)
    return np.concatenate([header, body])


def _subframe(block: np.ndarray) -> np.ndarray:
    """The smallest of a constant, a fixed-predictor (orders 0-4) or a verbatim subframe."""
    x = block.astype(np.int64)
    if np.all(x == x[0]):
        return np.concatenate([np.zeros(8, np.uint8), _bits(x[:1] & 0xFFFF, np.array([16]))])
    # Estimate every order's size first; encode only the winner.
    best_order, best_k, best_bits = -1, 0, 8 + 16 * len(x)  # verbatim
    residual = x
    residuals = []
    for order in range(min(5, len(x))):
        if order:
            residual = np.diff(residual)  # order-k fixed prediction error is the k-th difference
        residuals.append(residual)
        k, size = _rice_parameter(residual)
        size += 8 + 16 * order + 10
        if size < best_bits:
            best_order, best_k, best_bits = order, k, size
    if best_order < 0:
        header = np.array([0, 0, 0, 0, 0, 0, 1, 0], np.uint8)
        return np.concatenate([header, _bits(x & 0xFFFF, np.full(len(x), 16))])
    order = best_order
    header = np.array([0, 0, 0, 1, (order >> 2) & 1, (order >> 1) & 1, order & 1, 0], np.uint8)
    warmup = _bits(x[:order] & 0xFFFF, np.full(order, 16))
    return np.concatenate([header, warmup, _rice(residuals[order], best_k)])


def encode_flac(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit mono FLAC with a STREAMINFO carrying the MD5 of the samples."""
    pcm = samples.astype("<i2")
    n = len(pcm)
    bodies = []
    for number, lo in enumerate(range(0, n, _BLOCK)):
        block = pcm[lo : lo + _BLOCK]
        size = len(block)
        header = bytearray(b"\xff\xf8")  # sync code, fixed-blocksize stream
        size_code = 0b1100 if size == _BLOCK else 0b0111  # 4096, or "16-bit size at end"
        header.append(size_code << 4)  # sample rate: from STREAMINFO
        header.append(0b0000_100_0)  # mono, 16 bits per sample
        header += _utf8_number(number)
        if size_code == 0b0111:
            header += (size - 1).to_bytes(2, "big")
        header.append(_crc8(bytes(header)))
        body = np.packbits(_subframe(block)).tobytes()  # zero-pads the last byte, as required
        bodies.append(bytes(header) + body)
    frames = [f + c.to_bytes(2, "big") for f, c in zip(bodies, _crc16_many(bodies), strict=True)]
    min_frame = min((len(f) for f in frames), default=0)
    max_frame = max((len(f) for f in frames), default=0)
    info = bytearray()
    info += _BLOCK.to_bytes(2, "big") * 2  # min and max block size (the last may be shorter)
    info += min_frame.to_bytes(3, "big") + max_frame.to_bytes(3, "big")
    packed = (sample_rate << 44) | (0 << 41) | (15 << 36) | n  # rate, channels-1, bps-1, samples
    info += packed.to_bytes(8, "big")
    info += hashlib.md5(pcm.tobytes()).digest()
    block_header = bytes([0x80]) + len(info).to_bytes(3, "big")  # last metadata block, STREAMINFO
    return b"fLaC" + block_header + bytes(info) + b"".join(frames)


# ---------------------------------------------------------------------------------------------
# Lossy formats through PyAV


def require_av(fmt: str) -> Any:
    """The ``av`` module, or FailedPrecondition saying how to get it."""
    try:
        import av
    except ImportError:
        raise FailedPrecondition(
            f"{fmt} output needs PyAV, which this TTS server lacks; install vo-core[media] "
            "or ask for wav or flac"
        ) from None
    return av


def encode_with_av(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """AAC in M4A, or Opus in Ogg (resampled to 48 kHz, the only rate Opus codes natively)."""
    av = require_av(fmt)
    if fmt == "opus" and sample_rate != 48000:
        samples, sample_rate = resample(samples, sample_rate, 48000), 48000
    buf = io.BytesIO()
    container_format, codec = ("ipod", "aac") if fmt == "aac" else ("ogg", "libopus")
    with av.open(buf, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.layout = "mono"
        frame_size = 1024 if fmt == "aac" else 960
        pcm = samples.astype(np.int16)
        for lo in range(0, len(pcm), frame_size):
            chunk = pcm[lo : lo + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = lo
            for packet in stream.encode(frame):
                container.mux(packet)
        # Flush the encoder exactly once, or the last frames and the trailer are lost.
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()
