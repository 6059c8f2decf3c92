"""ROS message ⇄ numpy codecs: camera images in, action commands out.

One set of functions for live rclpy messages and for `rosbags` messages read from a bag
(same field names; rclpy stores byte sequences as ``array.array``/``bytes``, rosbags as
numpy arrays and builds messages as dataclasses). This module never imports rclpy,
rosbags or cv_bridge; OpenCV is imported lazily (JPEG/PNG and fast channel shuffles, with a
numpy fallback for the latter).

Every malformed input raises :class:`CodecError` (a ``ValueError``) whose message names the
field and the offending values, so a node can drop the message with one ``except`` and a
useful log line — never a crash deep in numpy and never a silently wrong image.
"""
from __future__ import annotations

import array
import dataclasses
import re
import struct
import sys
from typing import Any, Sequence

import numpy as np

__all__ = [
    "CodecError",
    "ENCODINGS",
    "MAX_SIDE",
    "image_to_array",
    "image_to_rgb",
    "fill_image",
    "make_image",
    "compress_image",
    "make_compressed",
    "clamp_action",
    "action_to_msg",
    "msg_to_action",
    "TWIST_FIELDS",
    "new_message",
]

#: Largest accepted image side in pixels; anything bigger is treated as a corrupt header.
MAX_SIDE = 16384


class CodecError(ValueError):
    """A message could not be decoded/encoded; the text names the field and the values."""


# ---------------------------------------------------------------------------------------
# Encodings (names from sensor_msgs/image_encodings.hpp)
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Enc:
    dtype: np.dtype  # channel dtype (native byte order)
    channels: int
    order: str  # "rgb", "bgr", "rgba", "bgra" or "mono"


_U8, _U16, _F32 = np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)

#: Supported ``Image.encoding`` values. ``8UC1``/``8UC3``/``8UC4`` follow OpenCV's BGR
#: convention (as cv_bridge does); ``16UC1``/``32FC1`` are depth images (mm / m).
ENCODINGS: dict[str, _Enc] = {
    "rgb8": _Enc(_U8, 3, "rgb"),
    "bgr8": _Enc(_U8, 3, "bgr"),
    "rgba8": _Enc(_U8, 4, "rgba"),
    "bgra8": _Enc(_U8, 4, "bgra"),
    "mono8": _Enc(_U8, 1, "mono"),
    "8UC1": _Enc(_U8, 1, "mono"),
    "8UC3": _Enc(_U8, 3, "bgr"),
    "8UC4": _Enc(_U8, 4, "bgra"),
    "rgb16": _Enc(_U16, 3, "rgb"),
    "bgr16": _Enc(_U16, 3, "bgr"),
    "rgba16": _Enc(_U16, 4, "rgba"),
    "bgra16": _Enc(_U16, 4, "bgra"),
    "mono16": _Enc(_U16, 1, "mono"),
    "16UC1": _Enc(_U16, 1, "mono"),
    "32FC1": _Enc(_F32, 1, "mono"),
}

_NATIVE_BIG = sys.byteorder == "big"
_MAX_SEC = 2**31  # builtin_interfaces Time/Duration .sec is int32


def _enc(encoding: Any, where: str = "Image.encoding") -> _Enc:
    try:
        return ENCODINGS[encoding]
    except (KeyError, TypeError):
        raise CodecError(
            f"{where}={encoding!r} is not supported (known: {', '.join(ENCODINGS)})"
        ) from None


# ---------------------------------------------------------------------------------------
# Raw bytes access (bytes / array.array / numpy / list, all without copies where possible)
# ---------------------------------------------------------------------------------------


def _as_u8(data: Any, field: str) -> np.ndarray:
    """View a message byte sequence as a 1-D uint8 array (zero-copy for buffers)."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise CodecError(f"{field} has dtype {data.dtype}, expected uint8")
        return data.reshape(-1)
    if isinstance(data, array.array) and data.itemsize != 1:
        raise CodecError(f"{field} is array.array({data.typecode!r}), expected bytes")
    if isinstance(data, (array.array, bytes, bytearray, memoryview)):
        try:
            return np.frombuffer(data, dtype=np.uint8)
        except (ValueError, TypeError, BufferError) as exc:
            raise CodecError(f"{field} is not a readable byte buffer: {exc}") from None
    if isinstance(data, (list, tuple)):
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise CodecError(f"{field} is not a flat list of bytes: {exc}") from None
        if arr.ndim > 1 or (arr.size and (arr.dtype.kind not in "iub" or arr.min() < 0 or arr.max() > 255)):
            raise CodecError(f"{field} holds values outside 0..255")
        return arr.astype(np.uint8).reshape(-1)
    raise CodecError(f"{field} has unsupported type {type(data).__name__}")


def _get(msg: Any, name: str, kind: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise CodecError(f"{kind} message {type(msg).__name__} has no field {name!r}") from None


def _uint_field(msg: Any, name: str, kind: str = "Image") -> int:
    value = _get(msg, name, kind)
    if isinstance(value, (bool, np.bool_)) and name == "is_bigendian":
        return int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise CodecError(f"{kind}.{name}={value!r} is not an integer")
    return int(value)


# ---------------------------------------------------------------------------------------
# Image → array
# ---------------------------------------------------------------------------------------


def image_to_array(msg: Any) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` to its native array: ``[H, W]`` or ``[H, W, C]``.

    The dtype is the encoding's (uint8, uint16 or float32) in native byte order. ``step``
    (row padding) and ``is_bigendian`` are honoured. When no byte swap is needed the result
    is a zero-copy view of ``msg.data`` (strided over any row padding, so possibly
    non-contiguous and read-only); copy it before mutating.
    """
    encoding = _get(msg, "encoding", "Image")
    enc = _enc(encoding)
    height = _uint_field(msg, "height")
    width = _uint_field(msg, "width")
    step = _uint_field(msg, "step")
    big = _uint_field(msg, "is_bigendian")
    for name, side in (("height", height), ("width", width)):
        if not 1 <= side <= MAX_SIDE:
            raise CodecError(f"Image.{name}={side} is outside 1..{MAX_SIDE} (encoding={encoding!r})")
    if big not in (0, 1):
        raise CodecError(f"Image.is_bigendian={big} is not 0 or 1")
    item = enc.dtype.itemsize
    pixel = item * enc.channels
    row = width * pixel
    if step < row:
        raise CodecError(
            f"Image.step={step} < width*channels*bytes={row} "
            f"(width={width}, encoding={encoding!r})"
        )
    if step % item:
        raise CodecError(
            f"Image.step={step} is not a multiple of the {item}-byte channel size "
            f"(encoding={encoding!r})"
        )
    buf = _as_u8(_get(msg, "data", "Image"), "Image.data")
    if buf.size != height * step:
        raise CodecError(
            f"Image.data has {buf.size} bytes, expected height*step={height * step} "
            f"(height={height}, step={step}, encoding={encoding!r})"
        )
    dtype = enc.dtype.newbyteorder(">" if big else "<") if item > 1 else enc.dtype
    if enc.channels == 1:
        shape, strides = (height, width), (step, item)
    else:
        shape, strides = (height, width, enc.channels), (step, pixel, item)
    out = np.ndarray(shape, dtype=dtype, buffer=buf, strides=strides)
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


# ---------------------------------------------------------------------------------------
# Image / CompressedImage → RGB uint8 for the model
# ---------------------------------------------------------------------------------------


def _scale_to_u8(arr: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Map a 1-channel 16-bit/float image to uint8: fixed ``(lo, hi)`` or per-frame min–max.

    Non-finite values (NaN depth = no return) become 0.
    """
    a = arr.astype(np.float32, copy=False)
    finite = None
    if value_range is None:
        lo, hi = float(a.min()), float(a.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = np.isfinite(a)
            if not finite.any():
                return np.zeros(a.shape, np.uint8)
            lo, hi = float(a[finite].min()), float(a[finite].max())
    else:
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            raise CodecError(f"value_range={value_range!r} must be a pair (lo, hi)") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise CodecError(f"value_range={value_range!r} must be finite with hi > lo")
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    out = (a - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    np.clip(out, 0.0, 255.0, out=out)
    if a.dtype.kind == "f":
        out[~(finite if finite is not None else np.isfinite(a))] = 0.0
    return np.rint(out, out=out).astype(np.uint8)


# OpenCV's channel shuffles are ~30x faster than numpy's negative-stride copies (480x640
# bgr8 -> rgb: ~30 us vs ~1 ms, bench/bench_codecs.py) and accept row-padded views.
_CV_CODE = {("bgr", 3): "COLOR_BGR2RGB", ("rgba", 4): "COLOR_RGBA2RGB",
            ("bgra", 4): "COLOR_BGRA2RGB", ("mono", 1): "COLOR_GRAY2RGB"}


def _try_cv2():
    try:
        import cv2
    except ImportError:  # pragma: no cover - numpy fallback below
        return None
    return cv2


def _to_rgb(arr: np.ndarray, enc: _Enc, value_range) -> np.ndarray:
    if enc.channels == 1 and enc.dtype != _U8:
        arr = _scale_to_u8(arr, value_range)
    elif enc.dtype != _U8:  # 16-bit colour: keep the high byte
        arr = (arr >> 8).astype(np.uint8)
    if enc.order == "rgb":
        return np.ascontiguousarray(arr)
    cv2 = _try_cv2()
    if cv2 is not None:
        return cv2.cvtColor(arr, getattr(cv2, _CV_CODE[enc.order, enc.channels]))
    if enc.channels == 1:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if enc.order == "rgba":
        return np.ascontiguousarray(arr[:, :, :3])
    return np.ascontiguousarray(arr[:, :, 2::-1])


def image_to_rgb(msg: Any, *, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Any ``Image`` or ``CompressedImage`` → C-contiguous RGB uint8 ``[H, W, 3]``.

    Detected by fields (``CompressedImage`` has ``format``, ``Image`` has ``encoding``).
    Colour is reordered to RGB, alpha dropped, 8-bit mono replicated to three channels,
    16-bit colour keeps its high byte. 1-channel 16-bit / float images (mono16, 16UC1 depth
    in mm, 32FC1 depth in m) are scaled to 0..255 linearly: with ``value_range=(lo, hi)``
    a fixed range (use this for training/deployment: consistent across frames), else the
    frame's own finite min–max; NaN/inf become 0. The result may share memory with the
    message for an unpadded rgb8 image.
    """
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return _compressed_to_rgb(msg, value_range)
    encoding = _get(msg, "encoding", "Image")
    arr = image_to_array(msg)
    return _to_rgb(arr, ENCODINGS[encoding], value_range)


# -- compressed -------------------------------------------------------------------------

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def _jpeg_size(buf: bytes) -> tuple[int, int]:
    """(height, width) from the first SOF marker, checking the marker chain (JPEG, ITU T.81 B.1)."""
    i, n = 2, len(buf)
    while i + 4 <= n:
        if buf[i] != 0xFF:
            raise CodecError(f"CompressedImage.data: bad JPEG marker at byte {i}")
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        if marker == 0xDA or marker == 0xD9:
            break
        length = (buf[i + 2] << 8) | buf[i + 3]
        if marker in _JPEG_SOF:
            if i + 9 > n or length < 8:
                break
            h = (buf[i + 5] << 8) | buf[i + 6]
            w = (buf[i + 7] << 8) | buf[i + 8]
            return h, w
        if length < 2:
            raise CodecError(f"CompressedImage.data: bad JPEG segment length {length} at byte {i}")
        i += 2 + length
    raise CodecError("CompressedImage.data: JPEG has no frame header (SOF) before the scan")


def _tail(buf: memoryview) -> bytes:
    """The last 16 bytes, ignoring trailing zero padding some drivers append."""
    end = len(buf)
    while end > 0 and buf[end - 1] == 0 and len(buf) - end < 4096:
        end -= 1
    return bytes(buf[max(0, end - 16):end])


def _sniff(buf: memoryview, fmt: str) -> tuple[str, int, int]:
    """Identify JPEG/PNG by magic bytes, read (h, w) from the header, check completeness.

    Works on a memoryview so the payload is never copied; catching truncation here matters
    because libjpeg fills a cut-off image with grey instead of failing.
    """
    if bytes(buf[:3]) == b"\xff\xd8\xff":
        h, w = _jpeg_size(buf)
        if _tail(buf)[-2:] != b"\xff\xd9":
            raise CodecError(
                f"CompressedImage.data: JPEG of {len(buf)} bytes is truncated "
                f"(no end-of-image marker; format={fmt!r})"
            )
        kind = "jpeg"
    elif bytes(buf[:8]) == _PNG_SIG:
        if len(buf) < 33 or bytes(buf[12:16]) != b"IHDR":
            raise CodecError(f"CompressedImage.data: PNG of {len(buf)} bytes has no IHDR header")
        w, h = struct.unpack(">II", bytes(buf[16:24]))
        if _tail(buf)[-8:] != _PNG_END:
            raise CodecError(
                f"CompressedImage.data: PNG of {len(buf)} bytes is truncated "
                f"(no IEND chunk; format={fmt!r})"
            )
        kind = "png"
    else:
        raise CodecError(
            f"CompressedImage.data is neither JPEG nor PNG (format={fmt!r}, "
            f"first bytes={bytes(buf[:8]).hex()}, {len(buf)} bytes)"
        )
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise CodecError(
            f"CompressedImage {kind} header says {w}x{h}, outside 1..{MAX_SIDE} per side"
        )
    return kind, h, w


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv is a declared dependency
        raise CodecError(f"CompressedImage needs OpenCV (cv2), which failed to import: {exc}")
    return cv2


def _compressed_to_rgb(msg: Any, value_range) -> np.ndarray:
    fmt = str(_get(msg, "format", "CompressedImage"))
    raw = _as_u8(_get(msg, "data", "CompressedImage"), "CompressedImage.data")
    if raw.size == 0:
        raise CodecError(f"CompressedImage.data is empty (format={fmt!r})")
    lower = fmt.lower()
    if "compresseddepth" in lower:
        return _compressed_depth_to_rgb(raw, fmt, value_range)
    kind, h, w = _sniff(memoryview(raw), fmt)
    cv2 = _cv2()
    # compressed_image_transport feeds OpenCV BGR ("... compressed bgr8"), so the decoded
    # pixels are BGR; an older convention compressed RGB bytes as-is ("... compressed rgb8").
    stored_rgb = lower.rstrip().endswith("compressed rgb8")
    direct = not stored_rgb and hasattr(cv2, "IMREAD_COLOR_RGB")  # OpenCV >= 4.10: no extra pass
    try:
        img = cv2.imdecode(raw, cv2.IMREAD_COLOR_RGB if direct else cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise CodecError(
            f"CompressedImage.data: OpenCV failed on the {kind} ({raw.size} bytes, format={fmt!r}): {exc}"
        ) from None
    if img is None:
        raise CodecError(
            f"CompressedImage.data: OpenCV could not decode the {kind} ({raw.size} bytes, format={fmt!r})"
        )
    if img.shape[:2] != (h, w):
        raise CodecError(f"CompressedImage decoded to {img.shape[1]}x{img.shape[0]}, header said {w}x{h}")
    if direct or stored_rgb:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _compressed_depth_to_rgb(raw: np.ndarray, fmt: str, value_range) -> np.ndarray:
    """compressed_depth_image_transport: 12-byte header (int32 format, float32 A, B) + PNG."""
    if raw.size <= 12:
        raise CodecError(f"CompressedImage.data: compressedDepth payload of {raw.size} bytes is too short")
    _fmt, qa, qb = struct.unpack("<iff", raw[:12].tobytes())
    png = raw[12:]
    kind, h, w = _sniff(memoryview(png), fmt)
    if kind != "png":
        raise CodecError(f"CompressedImage.data: compressedDepth holds {kind}, expected png (format={fmt!r})")
    cv2 = _cv2()
    try:
        img = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise CodecError(f"CompressedImage.data: OpenCV failed on the compressedDepth PNG: {exc}") from None
    if img is None or img.ndim != 2 or img.dtype != np.uint16:
        raise CodecError(f"CompressedImage.data: compressedDepth PNG is not 16-bit mono (format={fmt!r})")
    if fmt.split(";")[0].strip() == "32FC1":
        # Inverse-depth quantisation: depth = A / (v - B); 0 means no reading.
        v = img.astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = np.where(img > 0, np.float32(qa) / (v - np.float32(qb)), np.nan).astype(np.float32)
        gray = _scale_to_u8(depth, value_range)
    else:
        gray = _scale_to_u8(img, value_range)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


# ---------------------------------------------------------------------------------------
# Array → Image / CompressedImage
# ---------------------------------------------------------------------------------------


def _is_rosbags(msg: Any) -> bool:
    """rosbags messages are dataclasses whose byte/number sequences are numpy arrays."""
    return dataclasses.is_dataclass(msg)


def fill_image(msg: Any, array_: np.ndarray, encoding: str = "rgb8") -> Any:
    """Fill an existing Image-like message (rclpy or rosbags) from an array; returns ``msg``.

    ``array_`` must have the encoding's dtype and channel count (``[H, W]`` or ``[H, W, 1]``
    for 1-channel encodings). Rows are packed (``step = width*pixel bytes``); a non-native
    byte order in ``array_.dtype`` is kept and reported through ``is_bigendian``.
    """
    enc = _enc(encoding, "encoding")
    a = np.asarray(array_)
    if a.ndim == 3 and enc.channels == 1 and a.shape[2] == 1:
        a = a[:, :, 0]
    want = 2 if enc.channels == 1 else 3
    if a.ndim != want or (want == 3 and a.shape[2] != enc.channels):
        exp = "[H, W]" if want == 2 else f"[H, W, {enc.channels}]"
        raise CodecError(f"array shape {a.shape} does not fit encoding={encoding!r} (expected {exp})")
    if a.dtype.newbyteorder("=") != enc.dtype:
        raise CodecError(f"array dtype {a.dtype} does not fit encoding={encoding!r} (expected {enc.dtype})")
    h, w = a.shape[:2]
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise CodecError(f"array shape {a.shape}: sides must be in 1..{MAX_SIDE}")
    big = enc.dtype.itemsize > 1 and (
        a.dtype.byteorder == ">" or (a.dtype.byteorder in "=|" and _NATIVE_BIG)
    )
    msg.height = h
    msg.width = w
    msg.encoding = encoding
    msg.is_bigendian = int(big)
    msg.step = w * enc.channels * enc.dtype.itemsize
    if _is_rosbags(msg):
        msg.data = np.ascontiguousarray(a).reshape(-1).view(np.uint8).copy()
    else:
        msg.data = a.tobytes()  # bytes: µs; assigning a numpy array to rclpy is ~1000x slower
    return msg


def _set_stamp(msg: Any, stamp_ns: int | None, frame_id: str | None = None) -> None:
    if stamp_ns is not None:
        stamp_ns = int(stamp_ns)
        if not 0 <= stamp_ns < _MAX_SEC * 1_000_000_000:
            raise CodecError(f"stamp_ns={stamp_ns} is outside 0..2**31 s (builtin_interfaces/Time.sec is int32)")
        msg.header.stamp.sec = stamp_ns // 1_000_000_000
        msg.header.stamp.nanosec = stamp_ns % 1_000_000_000
    if frame_id is not None:
        msg.header.frame_id = str(frame_id)


def make_image(msg_cls: type, array_: np.ndarray, encoding: str = "rgb8",
               stamp_ns: int = 0, frame_id: str = "") -> Any:
    """Build a new Image of ``msg_cls`` (rclpy's ``sensor_msgs.msg.Image`` or a rosbags class)."""
    msg = new_message(msg_cls)
    fill_image(msg, array_, encoding)
    _set_stamp(msg, stamp_ns, frame_id)
    return msg


def compress_image(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> bytes:
    """Encode RGB uint8 ``[H, W, 3]`` (or mono ``[H, W]``) as JPEG or PNG bytes.

    ``quality`` is the JPEG quality 1..100; for PNG it is ignored (lossless, level 3).
    """
    a = np.asarray(rgb)
    if a.dtype != np.uint8 or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise CodecError(f"compress_image needs uint8 [H, W, 3] or [H, W], got {a.dtype} {a.shape}")
    if not (1 <= a.shape[0] <= MAX_SIDE and 1 <= a.shape[1] <= MAX_SIDE):
        raise CodecError(f"compress_image: shape {a.shape} sides must be in 1..{MAX_SIDE}")
    kind = str(fmt).lower()
    cv2 = _cv2()
    a = np.ascontiguousarray(a)  # OpenCV rejects negative strides (e.g. a [..., ::-1] view)
    bgr = cv2.cvtColor(a, cv2.COLOR_RGB2BGR) if a.ndim == 3 else a
    if kind in ("jpeg", "jpg"):
        if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
            raise CodecError(f"quality={quality!r} must be an integer in 1..100")
        ok, out = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    elif kind == "png":
        ok, out = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        raise CodecError(f"fmt={fmt!r} is not supported (known: jpeg, png)")
    if not ok:  # pragma: no cover - OpenCV failure on valid input
        raise CodecError(f"OpenCV failed to encode a {a.shape} image as {kind}")
    return out.tobytes()


def make_compressed(msg_cls: type, rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90,
                    stamp_ns: int = 0, frame_id: str = "") -> Any:
    """Build a CompressedImage of ``msg_cls``; ``format`` follows image_transport
    ("rgb8; jpeg compressed bgr8"), which :func:`image_to_rgb` and ROS tools read back."""
    data = compress_image(rgb, fmt, quality)
    kind = "jpeg" if str(fmt).lower() in ("jpeg", "jpg") else "png"
    msg = new_message(msg_cls)
    src = "rgb8" if np.asarray(rgb).ndim == 3 else "mono8"
    msg.format = f"{src}; {kind} compressed {'bgr8' if src == 'rgb8' else 'mono8'}"
    msg.data = np.frombuffer(data, np.uint8).copy() if _is_rosbags(msg) else data
    _set_stamp(msg, stamp_ns, frame_id)
    return msg


# ---------------------------------------------------------------------------------------
# Message construction for both rclpy and rosbags classes
# ---------------------------------------------------------------------------------------

_NP_DTYPE = re.compile(r"np\.dtype\[np\.(\w+)\]")


def _resolve_type(owner: type, name: str) -> type:
    """Find a rosbags nested message class by its generated name (``pkg__msg__Name``)."""
    mod = sys.modules.get(owner.__module__)
    cls = getattr(mod, name, None) if mod is not None else None
    if cls is None:
        for modname, m in list(sys.modules.items()):
            if modname.startswith("rosbags") and m is not None and hasattr(m, name):
                cls = getattr(m, name)
                break
    if cls is None:
        raise CodecError(f"cannot resolve message type {name!r} used by {owner.__name__}")
    return cls


def _default_for(owner: type, annotation: Any) -> Any:
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    if ann == "int":
        return 0
    if ann == "float":
        return 0.0
    if ann == "str":
        return ""
    if ann == "bool":
        return False
    if ann.startswith("list["):
        return []
    if ann.startswith("np.ndarray") or ann.startswith("ndarray"):
        m = _NP_DTYPE.search(ann)
        return np.zeros(0, dtype=np.dtype(m.group(1)) if m else np.uint8)
    return new_message(_resolve_type(owner, ann))


def new_message(msg_cls: type) -> Any:
    """A default-valued instance of an rclpy or rosbags message class.

    rosbags classes are dataclasses that need every field at construction; defaults are
    built recursively from their annotations (fixed-size arrays come out empty).
    """
    if not dataclasses.is_dataclass(msg_cls):
        return msg_cls()
    kwargs = {}
    for f in dataclasses.fields(msg_cls):
        if f.name.startswith("__"):
            continue
        kwargs[f.name] = _default_for(msg_cls, f.type)
    return msg_cls(**kwargs)


def _element_type(msg: Any, field: str) -> type:
    """Class of the elements of a message's list field (e.g. JointTrajectory.points)."""
    cls = type(msg)
    if dataclasses.is_dataclass(cls):
        ann = {f.name: f.type for f in dataclasses.fields(cls)}[field]
        inner = re.fullmatch(r"list\[(\w+)\]", str(ann))
        if not inner:
            raise CodecError(f"{cls.__name__}.{field} has unexpected annotation {ann!r}")
        return _resolve_type(cls, inner.group(1))
    # rclpy: field types like 'sequence<trajectory_msgs/JointTrajectoryPoint>'
    spec = cls.get_fields_and_field_types()[field]
    inner = re.search(r"<([\w/]+)", spec)
    if not inner:
        raise CodecError(f"{cls.__name__}.{field} has unexpected type {spec!r}")
    pkg, name = inner.group(1).split("/")[0], inner.group(1).split("/")[-1]
    import importlib

    return getattr(importlib.import_module(f"{pkg}.msg"), name)


# ---------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------

#: Default Twist field order; an action of length A fills the first A of these.
TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")


def _as_action(a: Any, name: str = "action") -> np.ndarray:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{name} is not numeric: {exc}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise CodecError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise CodecError(f"{name} has non-finite values at indices {bad}: {arr.tolist()}")
    return arr


def _bound(b: Any, n: int, name: str) -> np.ndarray:
    try:
        arr = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"{name} is not numeric: {exc}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise CodecError(f"{name} has shape {arr.shape}, expected ({n},) to match the action")
    if np.isnan(arr).any():
        raise CodecError(f"{name} contains NaN: {arr.tolist()}")
    return arr


def clamp_action(a: Any, low: Any, high: Any) -> np.ndarray:
    """Clip an action vector into ``[low, high]`` (scalars or per-dimension) as float32.

    Raises CodecError on NaN/inf actions, wrong bound lengths, or ``low > high``.
    """
    return _finite32(_clip(_as_action(a), low, high), "action")


def _clip(arr: np.ndarray, low: Any, high: Any) -> np.ndarray:
    lo, hi = _bound(low, arr.size, "low"), _bound(high, arr.size, "high")
    if np.any(lo > hi):
        raise CodecError(f"low={lo.tolist()} exceeds high={hi.tolist()}")
    return np.clip(arr, lo, hi)


def _kind(msg: Any) -> str:
    """'twist_stamped', 'twist', 'multiarray' or 'joint_trajectory', by fields."""
    if hasattr(msg, "twist") and hasattr(msg, "header") and hasattr(msg.twist, "linear"):
        return "twist_stamped"
    if hasattr(msg, "linear") and hasattr(msg, "angular"):
        return "twist"
    if hasattr(msg, "points") and hasattr(msg, "joint_names"):
        return "joint_trajectory"
    if hasattr(msg, "data") and hasattr(msg, "layout"):
        return "multiarray"
    name = getattr(msg, "__msgtype__", type(msg).__name__)
    raise CodecError(
        f"{name} is not a Twist, TwistStamped, Float32MultiArray or JointTrajectory message"
        " (TwistWithCovariance and other look-alikes are not supported)"
    )


def _names(value: Any) -> list[str]:
    """A list of names; a single string is read as comma-separated (handy for ROS params)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    names = list(value)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise CodecError(f"names must be strings, got {bad!r}")
    return names


def _twist_fields(fields: Sequence[str] | str | None, n: int) -> list[str]:
    if fields is None:
        if n > len(TWIST_FIELDS):
            raise CodecError(f"action has {n} dims but a Twist holds at most 6")
        return list(TWIST_FIELDS[:n])
    fields = _names(fields)
    unknown = [f for f in fields if f not in TWIST_FIELDS]
    if unknown:
        raise CodecError(f"fields {unknown} are not Twist fields (known: {list(TWIST_FIELDS)})")
    if len(set(fields)) != len(fields):
        raise CodecError(f"fields {fields} has duplicates")
    if len(fields) != n:
        raise CodecError(f"fields {fields} has {len(fields)} names but the action has {n} dims")
    return fields


def _joint_names(msg: Any, joint_names: Sequence[str] | None, n: int) -> list[str]:
    names = _names(joint_names) if joint_names is not None else list(msg.joint_names)
    if not names:
        raise CodecError("JointTrajectory needs joint_names (argument or msg.joint_names)")
    if len(names) != n:
        raise CodecError(f"joint_names {names} has {len(names)} names but the action has {n} dims")
    if len(set(names)) != len(names):
        raise CodecError(f"joint_names {names} has duplicates")
    return names


def _finite32(values: np.ndarray, what: str) -> np.ndarray:
    """Cast to float32, refusing values that overflow to inf (e.g. 1e300 from a float64 source)."""
    with np.errstate(over="ignore"):
        out = np.asarray(values).astype(np.float32)
    if not np.isfinite(out).all():
        raise CodecError(f"{what} overflows float32: {np.asarray(values).tolist()}")
    return out


def _set_seq(msg: Any, field: str, values: np.ndarray, dtype: Any) -> None:
    """Assign a numeric sequence the fast way for each message flavour."""
    dtype = np.dtype(dtype)
    vals = _finite32(values, f"{type(msg).__name__}.{field}") if dtype == np.float32 else values.astype(dtype)
    if _is_rosbags(msg):
        setattr(msg, field, np.array(vals, dtype=dtype))
    else:
        setattr(msg, field, array.array(dtype.char, vals.tobytes()))


def _seq_dtype(seq: Any, default: Any) -> np.dtype:
    if isinstance(seq, np.ndarray):
        return seq.dtype
    if isinstance(seq, array.array):
        return np.dtype(seq.typecode)
    return np.dtype(default)


def action_to_msg(action: Any, msg: Any, *, low: Any = None, high: Any = None,
                  fields: Sequence[str] | None = None,
                  joint_names: Sequence[str] | None = None,
                  point_field: str = "positions", time_from_start_s: float = 0.0,
                  stamp_ns: int | None = None) -> Any:
    """Write an action vector into a command message instance; returns ``msg``.

    Twist/TwistStamped: the action fills ``fields`` (default: the first A of
    :data:`TWIST_FIELDS`); the other Twist components are set to 0.
    Float32MultiArray: ``data`` = the action (layout left as is: empty = flat).
    JointTrajectory: ``joint_names`` (argument or already on ``msg``) and exactly one point
    whose ``point_field`` ("positions" or "velocities") holds the action, reached at
    ``time_from_start_s``. If ``low``/``high`` are given the action is clamped first
    (:func:`clamp_action`); NaN/inf always raise CodecError. ``stamp_ns`` sets
    ``header.stamp`` on stamped types.
    """
    kind = _kind(msg)
    if (low is None) != (high is None):
        raise CodecError("give both low and high, or neither")
    a = _as_action(action)
    if low is not None:
        a = _clip(a, low, high)  # in float64, so float64 fields keep full precision
    n = a.size
    if kind in ("twist", "twist_stamped"):
        twist = msg.twist if kind == "twist_stamped" else msg
        names = _twist_fields(fields, n)
        for f in TWIST_FIELDS:
            part, axis = f.split(".")
            setattr(getattr(twist, part), axis, 0.0)
        for f, v in zip(names, a):
            part, axis = f.split(".")
            setattr(getattr(twist, part), axis, float(v))
        if kind == "twist_stamped":
            _set_stamp(msg, stamp_ns)
    elif kind == "multiarray":
        dtype = _seq_dtype(msg.data, np.float32)
        if dtype.kind != "f":
            raise CodecError(f"{type(msg).__name__}.data holds {dtype}, expected a float array")
        _set_seq(msg, "data", a, dtype)
    else:
        if point_field not in ("positions", "velocities"):
            raise CodecError(f"point_field={point_field!r} must be 'positions' or 'velocities'")
        names = _joint_names(msg, joint_names, n)
        if not (np.isfinite(time_from_start_s) and 0 <= time_from_start_s < _MAX_SEC):
            raise CodecError(f"time_from_start_s={time_from_start_s} must be in [0, 2**31) s")
        point = new_message(_element_type(msg, "points"))
        if not hasattr(point, point_field):
            raise CodecError(f"{type(point).__name__} has no field {point_field!r} (not a JointTrajectory?)")
        _set_seq(point, point_field, a, np.float64)
        ns = int(round(float(time_from_start_s) * 1e9))
        point.time_from_start.sec = ns // 1_000_000_000
        point.time_from_start.nanosec = ns % 1_000_000_000
        msg.joint_names = names
        msg.points = [point]
        _set_stamp(msg, stamp_ns)
    return msg


def msg_to_action(msg: Any, action_dim: int, fields: Sequence[str] | None = None,
                  joint_names: Sequence[str] | None = None,
                  point_field: str = "positions") -> np.ndarray:
    """Read an action vector (float32 ``[action_dim]``) back from a command message.

    The inverse of :func:`action_to_msg`; for JointTrajectory the first point is read and,
    if ``joint_names`` is given, reordered to that order. Non-finite values raise.
    """
    if isinstance(action_dim, bool) or not isinstance(action_dim, (int, np.integer)) or action_dim < 1:
        raise CodecError(f"action_dim={action_dim!r} must be a positive integer")
    n = int(action_dim)
    kind = _kind(msg)
    if kind in ("twist", "twist_stamped"):
        twist = msg.twist if kind == "twist_stamped" else msg
        names = _twist_fields(fields, n)
        vals = [getattr(getattr(twist, f.split(".")[0]), f.split(".")[1]) for f in names]
        out = np.asarray(vals, dtype=np.float64)
    elif kind == "multiarray":
        out = np.asarray(msg.data, dtype=np.float64).reshape(-1)
        if out.size != n:
            raise CodecError(f"{type(msg).__name__}.data has {out.size} values, expected action_dim={n}")
    else:
        if point_field not in ("positions", "velocities"):
            raise CodecError(f"point_field={point_field!r} must be 'positions' or 'velocities'")
        if len(msg.points) == 0:
            raise CodecError("JointTrajectory.points is empty")
        have = list(msg.joint_names)
        vals = np.asarray(getattr(msg.points[0], point_field), dtype=np.float64)
        if vals.size != len(have):
            raise CodecError(
                f"JointTrajectory.points[0].{point_field} has {vals.size} values "
                f"for {len(have)} joint_names"
            )
        if joint_names is not None:
            want = _names(joint_names)
            missing = [j for j in want if j not in have]
            if missing:
                raise CodecError(f"JointTrajectory lacks joints {missing} (has {have})")
            vals = vals[[have.index(j) for j in want]]
        if vals.size != n:
            raise CodecError(f"JointTrajectory gives {vals.size} values, expected action_dim={n}")
        out = vals
    return _finite32(_as_action(out, f"{type(msg).__name__} action"), f"{type(msg).__name__} action")
