"""``sensor_msgs/CompressedImage`` ⇄ RGB: JPEG / PNG (image_transport's ``compressed``, 16-bit
PNG included) and ``compressedDepth`` (PNG with a depth quantisation header).

The payload is sniffed by magic bytes and checked for truncation before OpenCV sees it
(libjpeg fills a cut-off image with grey instead of failing); bytes after a JPEG's end-of-image
marker are ignored, and so is EXIF orientation (as cv_bridge does). OpenCV is imported lazily.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from moejepa_ros.codecs.errors import CodecError
from moejepa_ros.codecs.messages import as_u8, get_field, is_rosbags, new_message, set_stamp
from moejepa_ros.codecs.pixels import MAX_SIDE, GreyRanges, grey_to_u8

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def _jpeg_size(buf: bytes) -> tuple[int, int, int]:
    """(height, width, offset of the SOF segment) from the first SOF marker, checking the marker
    chain (JPEG, ITU T.81 B.1)."""
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
            return h, w, i
        if length < 2:
            raise CodecError(f"CompressedImage.data: bad JPEG segment length {length} at byte {i}")
        i += 2 + length
    raise CodecError("CompressedImage.data: JPEG has no frame header (SOF) before the scan")


def _tail(buf: memoryview) -> bytes:
    """The last 16 bytes, ignoring trailing zero padding some drivers append."""
    end = len(buf)
    while end > 0 and buf[end - 1] == 0 and len(buf) - end < 4096:
        end -= 1
    return bytes(buf[max(0, end - 16) : end])


def _jpeg_end(buf: memoryview, sof: int) -> int:
    """The length up to and including the end-of-image marker. Usually the last bytes; else the last
    marker after the frame header (one inside an EXIF thumbnail comes before it; entropy-coded data
    never holds one), so that bytes some cameras append after the image are ignored."""
    if _tail(buf)[-2:] == b"\xff\xd9":
        return len(buf)
    end = bytes(buf[sof:]).rfind(b"\xff\xd9")
    return -1 if end < 0 else sof + end + 2


def _sniff(buf: memoryview, fmt: str) -> tuple[str, int, int, int]:
    """Identify JPEG/PNG by magic bytes, read (h, w) from the header, check completeness; returns
    (kind, h, w, length of the image in ``buf``).

    Works on a memoryview so the payload is never copied; catching truncation here matters
    because libjpeg fills a cut-off image with grey instead of failing.
    """
    size = len(buf)
    if bytes(buf[:3]) == b"\xff\xd8\xff":
        h, w, sof = _jpeg_size(buf)
        size = _jpeg_end(buf, sof)
        if size < 0:
            raise CodecError(
                f"CompressedImage.data: JPEG of {len(buf)} bytes is truncated (no end-of-image marker; format={fmt!r})"
            )
        kind = "jpeg"
    elif bytes(buf[:8]) == _PNG_SIG:
        if len(buf) < 33 or bytes(buf[12:16]) != b"IHDR":
            raise CodecError(f"CompressedImage.data: PNG of {len(buf)} bytes has no IHDR header")
        w, h = struct.unpack(">II", bytes(buf[16:24]))
        if _tail(buf)[-8:] != _PNG_END:
            raise CodecError(
                f"CompressedImage.data: PNG of {len(buf)} bytes is truncated (no IEND chunk; format={fmt!r})"
            )
        kind = "png"
    else:
        raise CodecError(
            f"CompressedImage.data is neither JPEG nor PNG (format={fmt!r}, "
            f"first bytes={bytes(buf[:8]).hex()}, {len(buf)} bytes)"
        )
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise CodecError(f"CompressedImage {kind} header says {w}x{h}, outside 1..{MAX_SIDE} per side")
    return kind, h, w, size


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv is a declared dependency
        raise CodecError(f"CompressedImage needs OpenCV (cv2), which failed to import: {exc}")
    return cv2


def compressed_to_rgb(msg: Any, ranges: GreyRanges = GreyRanges()) -> np.ndarray:
    """A ``CompressedImage`` (jpeg, png or compressedDepth) → RGB uint8 ``[H, W, 3]``; a 16-bit PNG
    becomes what its raw message (the encoding named first in ``format``) would."""
    fmt = str(get_field(msg, "format", "CompressedImage"))
    raw = as_u8(get_field(msg, "data", "CompressedImage"), "CompressedImage.data")
    if raw.size == 0:
        raise CodecError(f"CompressedImage.data is empty (format={fmt!r})")
    lower = fmt.lower()
    if "compresseddepth" in lower:
        return _compressed_depth_to_rgb(raw, fmt, ranges)
    kind, h, w, size = _sniff(memoryview(raw), fmt)
    raw = raw[:size]
    cv2 = _cv2()
    if kind == "png" and raw[24] == 16:  # IHDR bit depth
        return _png16_to_rgb(raw, fmt, ranges, h, w)
    # compressed_image_transport feeds OpenCV BGR ("... compressed bgr8"), so the decoded
    # pixels are BGR; an older convention compressed RGB bytes as-is ("... compressed rgb8").
    stored_rgb = lower.rstrip().endswith("compressed rgb8")
    direct = not stored_rgb and hasattr(cv2, "IMREAD_COLOR_RGB")  # OpenCV >= 4.10: no extra pass
    try:
        img = cv2.imdecode(raw, (cv2.IMREAD_COLOR_RGB if direct else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        raise CodecError(
            f"CompressedImage.data: OpenCV failed on the {kind} ({raw.size} bytes, format={fmt!r}): {exc}"
        ) from None
    if img is None:
        raise CodecError(f"CompressedImage.data: OpenCV could not decode the {kind} ({raw.size} bytes, format={fmt!r})")
    if img.shape[:2] != (h, w):
        raise CodecError(f"CompressedImage decoded to {img.shape[1]}x{img.shape[0]}, header said {w}x{h}")
    if direct or stored_rgb:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _png16_to_rgb(raw: np.ndarray, fmt: str, ranges: GreyRanges, h: int, w: int) -> np.ndarray:
    """A 16-bit PNG: grey is scaled like its raw encoding (16UC1: depth in mm; else mono16), colour
    keeps its high byte, as the raw rgb16/bgr16 would."""
    cv2 = _cv2()
    try:
        img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        raise CodecError(f"CompressedImage.data: OpenCV failed on the 16-bit png (format={fmt!r}): {exc}") from None
    if img is None or img.shape[:2] != (h, w) or img.dtype != np.uint16 or img.ndim == 3 and img.shape[2] not in (3, 4):
        raise CodecError(
            f"CompressedImage.data: OpenCV could not decode the 16-bit png ({raw.size} bytes, format={fmt!r})"
        )
    if img.ndim == 2:
        kind = "depth_mm" if fmt.split(";")[0].strip() == "16UC1" else "mono16"
        return cv2.cvtColor(grey_to_u8(img, kind, ranges), cv2.COLOR_GRAY2RGB)
    img = (img >> 8).astype(np.uint8)  # compressed_image_transport stores 16-bit colour as bgr16
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _compressed_depth_to_rgb(raw: np.ndarray, fmt: str, ranges: GreyRanges) -> np.ndarray:
    """compressed_depth_image_transport: 12-byte header (int32 format, float32 A, B) + PNG."""
    if raw.size <= 12:
        raise CodecError(f"CompressedImage.data: compressedDepth payload of {raw.size} bytes is too short")
    _fmt, qa, qb = struct.unpack("<iff", raw[:12].tobytes())
    png = raw[12:]
    kind, h, w, _ = _sniff(memoryview(png), fmt)
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
        gray = grey_to_u8(depth, "depth_m", ranges)
    else:
        gray = grey_to_u8(img, "depth_mm", ranges)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


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


def make_compressed(
    msg_cls: type, rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90, stamp_ns: int = 0, frame_id: str = ""
) -> Any:
    """Build a CompressedImage of ``msg_cls``; ``format`` follows image_transport
    ("rgb8; jpeg compressed bgr8"), which :func:`image_to_rgb` and ROS tools read back."""
    data = compress_image(rgb, fmt, quality)
    kind = "jpeg" if str(fmt).lower() in ("jpeg", "jpg") else "png"
    msg = new_message(msg_cls)
    src = "rgb8" if np.asarray(rgb).ndim == 3 else "mono8"
    msg.format = f"{src}; {kind} compressed {'bgr8' if src == 'rgb8' else 'mono8'}"
    msg.data = np.frombuffer(data, np.uint8).copy() if is_rosbags(msg) else data
    set_stamp(msg, stamp_ns, frame_id)
    return msg
