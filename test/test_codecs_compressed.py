"""CompressedImage codecs: JPEG/PNG round trips, image_transport formats, 16-bit PNG as its raw
message, compressedDepth, JPEG trailing bytes and EXIF orientation, and truncated/garbage/oversized
payloads raising CodecError."""

import struct
import zlib

import numpy as np
import pytest

from moejepa_ros import codecs as C
from moejepa_ros.codecs import CodecError
from testing.ros_types import TS, flavours, serialization

cv2 = pytest.importorskip("cv2")
FLAVOURS = flavours("sensor_msgs/msg/CompressedImage")
CompressedImage, BagCompressed = FLAVOURS["rclpy"], FLAVOURS["rosbags"]


def _smooth(h=48, w=64) -> np.ndarray:
    """A smooth colour image JPEG reproduces closely, with distinct R, G and B."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 60)], -1).astype(np.uint8)


def _msg(cls, data: bytes, fmt: str):
    m = C.new_message(cls)
    m.format = fmt
    m.data = np.frombuffer(data, np.uint8).copy() if cls is BagCompressed else data
    return m


@pytest.mark.parametrize("old_opencv", [False, True])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_png_round_trip_exact_and_jpeg_close(flavour, old_opencv, monkeypatch):
    if old_opencv:  # OpenCV < 4.10 has no IMREAD_COLOR_RGB: decode BGR, then convert
        monkeypatch.delattr(cv2, "IMREAD_COLOR_RGB", raising=False)
    rgb = _smooth()
    png = C.make_compressed(FLAVOURS[flavour], rgb, "png", stamp_ns=7, frame_id="cam")
    assert png.format == "rgb8; png compressed bgr8" and png.header.frame_id == "cam"
    np.testing.assert_array_equal(C.image_to_rgb(png), rgb)
    jpg = C.make_compressed(FLAVOURS[flavour], rgb, "jpeg", quality=95)
    assert jpg.format == "rgb8; jpeg compressed bgr8"
    out = C.image_to_rgb(jpg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb).mean() < 2.0  # channel order right, else error ~100


@pytest.mark.parametrize("old_opencv", [False, True])
def test_mono_and_legacy_rgb_formats(old_opencv, monkeypatch):
    if old_opencv:
        monkeypatch.delattr(cv2, "IMREAD_COLOR_RGB", raising=False)
    gray = _smooth()[..., 0]
    m = C.make_compressed(CompressedImage, gray, "png")
    assert m.format.startswith("mono8")
    np.testing.assert_array_equal(C.image_to_rgb(m), np.repeat(gray[:, :, None], 3, 2))
    # Older convention: RGB bytes compressed as-is, format says "compressed rgb8".
    rgb = _smooth()
    ok, buf = cv2.imencode(".png", rgb)  # rgb passed straight to OpenCV, no swap
    out = C.image_to_rgb(_msg(CompressedImage, buf.tobytes(), "rgb8; png compressed rgb8"))
    np.testing.assert_array_equal(out, rgb)
    # A bare "jpeg"/"png" format (common in bags) is sniffed by magic bytes.
    out = C.image_to_rgb(_msg(CompressedImage, C.compress_image(rgb, "png"), "jpeg"))
    np.testing.assert_array_equal(out, rgb)


def test_rclpy_and_rosbags_bytes_agree():
    rgb = _smooth(30, 20)
    live = C.make_compressed(CompressedImage, rgb, "jpeg")
    bag = TS.deserialize_cdr(serialization.serialize_message(live), "sensor_msgs/msg/CompressedImage")
    np.testing.assert_array_equal(C.image_to_rgb(live), C.image_to_rgb(bag))
    built = C.make_compressed(BagCompressed, rgb, "png")
    back = serialization.deserialize_message(
        bytes(TS.serialize_cdr(built, "sensor_msgs/msg/CompressedImage")), CompressedImage
    )
    np.testing.assert_array_equal(C.image_to_rgb(back), rgb)


def _compressed_depth(depth_u16: np.ndarray) -> bytes:
    ok, png = cv2.imencode(".png", depth_u16)
    return struct.pack("<iff", 0, 0.0, 0.0) + png.tobytes()


def test_compressed_depth_16uc1():
    d = np.array([[0, 1000], [2000, 4000]], np.uint16)
    m = _msg(CompressedImage, _compressed_depth(d), "16UC1; compressedDepth png")
    out = C.image_to_rgb(m, ranges=C.GreyRanges(depth=(0.0, 4.0)))  # metres; the PNG holds mm
    np.testing.assert_array_equal(out[..., 0], [[0, 64], [128, 255]])
    assert (out[..., 0] == out[..., 1]).all()


def test_compressed_depth_32fc1_inverse_quantisation():
    # compressed_depth_image_transport: v = A / depth + B, depth = A / (v - B); v = 0: no return.
    qa, qb = 100.0, 10.0
    depth = np.array([[1.0, 2.0], [4.0, np.nan]], np.float32)
    v = np.where(np.isfinite(depth), qa / np.nan_to_num(depth, nan=1.0) + qb, 0).astype(np.uint16)
    ok, png = cv2.imencode(".png", v)
    m = _msg(CompressedImage, struct.pack("<iff", 0, qa, qb) + png.tobytes(), "32FC1; compressedDepth png")
    out = C.image_to_rgb(m, ranges=C.GreyRanges(depth=(0.0, 4.0)))
    np.testing.assert_array_equal(out[..., 0], [[64, 128], [255, 0]])


@pytest.mark.parametrize(
    "enc,fmt",
    [
        ("mono16", "mono16; png compressed "),  # compressed_image_transport's format for 16-bit grey
        ("16UC1", "16UC1; png compressed "),
        ("mono16", "png"),  # no encoding named: 16-bit grey is mono16
        ("rgb16", "rgb16; png compressed bgr16"),
        ("bgr16", "bgr16; png compressed bgr16"),
    ],
)
@pytest.mark.parametrize("ranges", [C.GreyRanges(), C.GreyRanges((0.5, 3.0), (100, 40000)), C.GreyRanges([], [])])
def test_16bit_png_normalises_like_the_raw_message(enc, fmt, ranges):
    Image = flavours("sensor_msgs/msg/Image")["rclpy"]
    rng = np.random.default_rng(7)
    shape = (9, 13) if C.ENCODINGS[enc].channels == 1 else (9, 13, 3)
    arr = rng.integers(0, 65536, shape, dtype=np.uint16)
    arr.flat[:3] = (0, 65535, 1234)
    raw_rgb = C.image_to_rgb(C.make_image(Image, arr, enc), ranges=ranges)
    bgr16 = arr if arr.ndim == 2 else arr[..., ::-1] if enc == "rgb16" else arr
    ok, png = cv2.imencode(".png", np.ascontiguousarray(bgr16))
    assert ok and png[24] == 16  # a 16-bit PNG
    out = C.image_to_rgb(_msg(CompressedImage, png.tobytes(), fmt), ranges=ranges)
    np.testing.assert_array_equal(out, raw_rgb)


def _exif_app1(orientation: int) -> bytes:
    """An APP1 EXIF segment whose only tag is Orientation (0x0112, SHORT)."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    body = b"Exif\x00\x00" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


@pytest.mark.parametrize("old_opencv", [False, True])
def test_jpeg_exif_orientation_is_ignored(old_opencv, monkeypatch):
    """cv_bridge decodes the stored pixels; OpenCV's default would rotate a 'rotate 90' JPEG."""
    if old_opencv:
        monkeypatch.delattr(cv2, "IMREAD_COLOR_RGB", raising=False)
    rgb = _smooth(24, 40)
    jpg = C.compress_image(rgb, "jpeg", 95)
    plain = C.image_to_rgb(_msg(CompressedImage, jpg, "jpeg"))
    rotated = jpg[:2] + _exif_app1(6) + jpg[2:]
    assert cv2.imdecode(np.frombuffer(rotated, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (40, 24)  # the trap
    out = C.image_to_rgb(_msg(CompressedImage, rotated, "rgb8; jpeg compressed bgr8"))
    np.testing.assert_array_equal(out, plain)


@pytest.mark.parametrize("tail", [b"\x00\x01garbage", b"\xff" * 7, bytes(5000) + b"x", _exif_app1(1)])
def test_jpeg_with_bytes_after_the_end_marker_decodes(tail):
    rgb = _smooth()
    jpg = C.compress_image(rgb, "jpeg", 95)
    want = C.image_to_rgb(_msg(CompressedImage, jpg, "jpeg"))
    np.testing.assert_array_equal(C.image_to_rgb(_msg(BagCompressed, jpg + tail, "jpeg")), want)
    # a cut image followed by such bytes is still truncated
    with pytest.raises(CodecError, match="JPEG of .* bytes is truncated"):
        C.image_to_rgb(_msg(CompressedImage, jpg[: len(jpg) // 2] + tail, "jpeg"))


def test_a_cut_jpeg_whose_exif_thumbnail_ends_is_still_truncated():
    """The EXIF thumbnail's own end-of-image marker comes before the frame header: not the image's end."""
    jpg = C.compress_image(_smooth(), "jpeg", 95)
    thumb = C.compress_image(_smooth(8, 8), "jpeg")
    body = b"Exif\x00\x00" + thumb  # enough for the marker scan: an APP1 holding a whole JPEG
    app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    full = jpg[:2] + app1 + jpg[2:]
    np.testing.assert_array_equal(
        C.image_to_rgb(_msg(CompressedImage, full, "jpeg")), C.image_to_rgb(_msg(CompressedImage, jpg, "jpeg"))
    )
    with pytest.raises(CodecError, match="truncated"):
        C.image_to_rgb(_msg(CompressedImage, full[: len(full) - 300] + b"junk", "jpeg"))


# -- malformed --------------------------------------------------------------------------


def test_truncated_jpeg_and_png_raise():
    rgb = _smooth()
    for fmt in ("jpeg", "png"):
        data = C.compress_image(rgb, fmt)
        for cut in (len(data) // 2, len(data) - 1, 40):
            with pytest.raises(CodecError, match="truncated|no frame header|no IHDR|bad JPEG"):
                C.image_to_rgb(_msg(CompressedImage, data[:cut], fmt))


def test_trailing_zero_padding_is_accepted():
    rgb = _smooth()
    data = C.compress_image(rgb, "png") + b"\x00" * 3
    np.testing.assert_array_equal(C.image_to_rgb(_msg(CompressedImage, data, "png")), rgb)


@pytest.mark.parametrize(
    "data,pattern",
    [
        (b"", "CompressedImage.data is empty"),
        (b"hello world, not an image", r"neither JPEG nor PNG \(format='jpeg', first bytes=68656c6c6f20776f"),
        (b"\xff\xd8\xff\xe0\x00\x01", "bad JPEG segment length 1"),
        (b"\xff\xd8\xff\xda\x00\x08" + bytes(20) + b"\xff\xd9", "no frame header"),
        (b"\x89PNG\r\n\x1a\n" + bytes(10), "no IHDR"),
    ],
)
def test_garbage_raises(data, pattern):
    with pytest.raises(CodecError, match=pattern):
        C.image_to_rgb(_msg(CompressedImage, data, "jpeg"))


def test_corrupt_payload_with_valid_framing_raises():
    png = bytearray(C.compress_image(_smooth(), "png"))
    png[60:80] = bytes(20)  # break the IDAT data and its CRC, keep IHDR and IEND
    with pytest.raises(CodecError, match="could not decode"):
        C.image_to_rgb(_msg(CompressedImage, bytes(png), "png"))


def _png_header_claiming(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def test_decompression_bomb_rejected_before_decoding():
    with pytest.raises(CodecError, match="header says 20000x20000, outside 1..16384"):
        C.image_to_rgb(_msg(CompressedImage, _png_header_claiming(20000, 20000), "png"))
    jpg = bytearray(C.compress_image(_smooth(), "jpeg"))
    sof = jpg.index(b"\xff\xc0")
    jpg[sof + 5 : sof + 9] = struct.pack(">HH", 0, 64)  # height 0 in the frame header
    with pytest.raises(CodecError, match="header says 64x0"):
        C.image_to_rgb(_msg(CompressedImage, bytes(jpg), "jpeg"))


def test_compressed_depth_errors():
    with pytest.raises(CodecError, match="too short"):
        C.image_to_rgb(_msg(CompressedImage, b"\x00" * 12, "16UC1; compressedDepth png"))
    rgb_png = C.compress_image(_smooth(), "png")
    with pytest.raises(CodecError, match="not 16-bit mono"):
        C.image_to_rgb(_msg(CompressedImage, bytes(12) + rgb_png, "16UC1; compressedDepth png"))


@pytest.mark.parametrize(
    "args,pattern",
    [
        ((np.zeros((4, 4, 3), np.float32),), "needs uint8"),
        ((np.zeros((4, 4, 4), np.uint8),), "needs uint8"),
        ((np.zeros((4, 4, 3), np.uint8), "webp"), "fmt='webp' is not supported"),
        ((np.zeros((4, 4, 3), np.uint8), "jpeg", 0), "quality=0"),
        ((np.zeros((4, 4, 3), np.uint8), "jpeg", "high"), "quality='high' must be an integer"),
        ((np.zeros((0, 4, 3), np.uint8),), "sides must be in"),
    ],
)
def test_compress_image_errors(args, pattern):
    with pytest.raises(CodecError, match=pattern):
        C.compress_image(*args)


def test_compress_non_contiguous_input():
    rgb = _smooth()
    flipped = rgb[:, ::-1]  # negative stride view
    out = C.image_to_rgb(C.make_compressed(CompressedImage, flipped, "png"))
    np.testing.assert_array_equal(out, flipped)
