"""Raw sensor_msgs/Image codecs: every encoding, row padding, both endiannesses, rclpy and rosbags;
YUV 4:2:2 and Bayer against ground truth built here from known colours; the fixed depth / mono16 ranges."""

import numpy as np
import pytest

from moejepa_ros import codecs as C
from moejepa_ros.codecs import CodecError
from moejepa_ros.codecs import image as image_codec
from testing.camera_encodings import BAYER_PATTERNS, mosaic, patch_error, patches, uyvy
from testing.ros_types import TS, flavours, serialization

FLAVOURS = flavours("sensor_msgs/msg/Image")
Image, BagImage = FLAVOURS["rclpy"], FLAVOURS["rosbags"]


def _random(enc: str, h: int, w: int, rng) -> np.ndarray:
    e = C.ENCODINGS[enc]
    w += w % 2 if e.channels == 2 else 0  # YUV 4:2:2: pixels come in pairs
    shape = (h, w) if e.channels == 1 else (h, w, e.channels)
    if e.dtype.kind == "f":
        return rng.normal(0, 3, shape).astype(e.dtype)
    return rng.integers(0, np.iinfo(e.dtype).max, shape, endpoint=True).astype(e.dtype)


def _hand_made(cls, arr: np.ndarray, enc: str, pad: int, big: bool, rng):
    """Build an Image by hand (not via fill_image): explicit byte order and junk row padding."""
    order = ">" if big else "<"
    rows = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder(order)))
    h = arr.shape[0]
    row_bytes = rows[0].nbytes
    raw = np.empty((h, row_bytes + pad), np.uint8)
    raw[:, :row_bytes] = rows.reshape(h, -1).view(np.uint8)
    raw[:, row_bytes:] = rng.integers(0, 256, (h, pad))  # padding must be ignored
    msg = C.new_message(cls)
    msg.height, msg.width, msg.encoding = h, arr.shape[1], enc
    msg.is_bigendian, msg.step = int(big), row_bytes + pad
    msg.data = raw.reshape(-1).copy() if cls is BagImage else raw.tobytes()
    return msg


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("pad_items", [0, 3])
@pytest.mark.parametrize("enc", list(C.ENCODINGS))
def test_decode_every_encoding_padding_endianness(enc, pad_items, big, flavour):
    rng = np.random.default_rng(hash((enc, pad_items, big)) % 2**32)
    arr = _random(enc, 5, 7, rng)
    msg = _hand_made(FLAVOURS[flavour], arr, enc, pad_items * arr.dtype.itemsize, big, rng)
    out = C.image_to_array(msg)
    assert out.dtype == arr.dtype and out.dtype.isnative
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    rgb = C.image_to_rgb(msg)
    assert rgb.dtype == np.uint8 and rgb.shape == (*arr.shape[:2], 3)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("enc", list(C.ENCODINGS))
def test_fill_image_round_trip(enc, byteorder, flavour):
    rng = np.random.default_rng(1)
    arr = _random(enc, 6, 4, rng)
    src = arr.astype(arr.dtype.newbyteorder(byteorder))
    msg = C.make_image(FLAVOURS[flavour], src, enc, stamp_ns=3_000_000_007, frame_id="cam")
    assert (msg.height, msg.width, msg.encoding) == (6, 4, enc)
    assert msg.step == 4 * arr.itemsize * (arr.shape[2] if arr.ndim == 3 else 1)
    assert msg.is_bigendian == int(byteorder == ">" and arr.itemsize > 1)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (3, 7, "cam")
    np.testing.assert_array_equal(C.image_to_array(msg), arr)


def test_fill_image_uses_fast_data_types():
    arr = np.zeros((4, 4, 3), np.uint8)
    m = C.fill_image(Image(), arr)
    assert len(m.data) == 48  # rclpy stores the bytes we gave it as array('B')
    b = C.make_image(BagImage, arr)
    assert isinstance(b.data, np.ndarray) and b.data.dtype == np.uint8 and b.data.shape == (48,)


def test_fill_image_accepts_hw1_and_noncontiguous():
    rng = np.random.default_rng(2)
    arr = _random("rgb8", 8, 10, rng)
    view = arr[:, ::2]  # non-contiguous input
    msg = C.make_image(Image, view, "rgb8")
    np.testing.assert_array_equal(C.image_to_array(msg), view)
    mono = _random("mono16", 3, 3, rng)[:, :, None]
    np.testing.assert_array_equal(C.image_to_array(C.make_image(Image, mono, "mono16")), mono[:, :, 0])


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_zero_copy_when_layout_allows(flavour):
    rng = np.random.default_rng(3)
    arr = _random("rgb8", 4, 5, rng)
    msg = _hand_made(FLAVOURS[flavour], arr, "rgb8", 4, False, rng)  # padded: strided view
    out = C.image_to_array(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert out.strides == (msg.step, 3, 1)
    depth = _hand_made(FLAVOURS[flavour], _random("32FC1", 4, 5, rng), "32FC1", 0, False, rng)
    assert np.shares_memory(C.image_to_array(depth), np.frombuffer(depth.data, np.uint8))


@pytest.mark.parametrize("use_cv2", [True, False])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_image_to_rgb_colour_orders(flavour, use_cv2, monkeypatch):
    if not use_cv2:  # the numpy fallback must give identical results
        monkeypatch.setattr(image_codec, "_try_cv2", lambda: None)
    rng = np.random.default_rng(4)
    rgb = _random("rgb8", 5, 6, rng)
    alpha = rng.integers(0, 256, (5, 6, 1), dtype=np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "8UC3": rgb[..., ::-1],
        "rgba8": np.concatenate([rgb, alpha], 2),
        "bgra8": np.concatenate([rgb[..., ::-1], alpha], 2),
        "8UC4": np.concatenate([rgb[..., ::-1], alpha], 2),
        "rgb16": rgb.astype(np.uint16) * 257,
        "bgr16": rgb[..., ::-1].astype(np.uint16) * 257,
        "rgba16": np.concatenate([rgb, alpha], 2).astype(np.uint16) * 257,
        "bgra16": np.concatenate([rgb[..., ::-1], alpha], 2).astype(np.uint16) * 257,
    }
    for enc, arr in cases.items():
        msg = _hand_made(FLAVOURS[flavour], arr, enc, 2 * arr.itemsize, True, rng)
        out = C.image_to_rgb(msg)
        assert out.dtype == np.uint8 and out.shape == (5, 6, 3) and out.flags.c_contiguous, enc
        np.testing.assert_array_equal(out, rgb, err_msg=enc)


@pytest.mark.parametrize("use_cv2", [True, False])
def test_image_to_rgb_mono_and_depth_scaling(use_cv2, monkeypatch):
    if not use_cv2:
        monkeypatch.setattr(image_codec, "_try_cv2", lambda: None)
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    for enc in ("mono8", "8UC1"):
        out = C.image_to_rgb(C.make_image(Image, gray, enc))
        np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, 2))
    # Depth: a fixed range in metres by default (0..10 m), so 16UC1 (mm) and 32FC1 (m) agree.
    mm = np.array([[1000, 2000], [3000, 12000]], np.uint16)
    out = C.image_to_rgb(C.make_image(Image, mm, "16UC1"))
    np.testing.assert_array_equal(out[..., 0], [[26, 51], [76, 255]])
    assert (out[..., 0] == out[..., 2]).all()
    metres = C.image_to_rgb(C.make_image(Image, mm.astype(np.float32) / 1000, "32FC1"))
    np.testing.assert_array_equal(metres, out)
    four_m = C.GreyRanges(depth=(0.0, 4.0))
    out = C.image_to_rgb(C.make_image(Image, mm, "16UC1"), ranges=four_m)
    np.testing.assert_array_equal(out[..., 1], [[64, 128], [191, 255]])
    # mono16: raw counts, full scale by default; its own range, untouched by the depth range.
    out = C.image_to_rgb(C.make_image(Image, mm, "mono16"), ranges=four_m)
    np.testing.assert_array_equal(out[..., 1], np.rint(mm / 65535 * 255))
    out = C.image_to_rgb(C.make_image(Image, mm, "mono16"), ranges=C.GreyRanges(mono16=[0, 4000]))
    np.testing.assert_array_equal(out[..., 1], [[64, 128], [191, 255]])
    # float depth: NaN/inf (no return) -> 0, range clipped.
    d = np.array([[0.5, np.nan], [np.inf, 2.5]], np.float32)
    out = C.image_to_rgb(C.make_image(Image, d, "32FC1"), ranges=C.GreyRanges(depth=(0.0, 1.0)))
    np.testing.assert_array_equal(out[..., 0], [[128, 0], [0, 255]])
    # Per-frame min-max stays available: [] (or None).
    per_frame = C.GreyRanges(depth=[], mono16=None)
    assert per_frame.depth is None and per_frame.to_dict() == {"depth_range": None, "mono16_range": None}
    out = C.image_to_rgb(C.make_image(Image, d, "32FC1"), ranges=per_frame)
    np.testing.assert_array_equal(out[..., 0], [[0, 0], [0, 255]])
    out = C.image_to_rgb(C.make_image(Image, mm[:1], "16UC1"), ranges=per_frame)
    np.testing.assert_array_equal(out[..., 0], [[0, 255]])
    const = np.full((2, 2), 7, np.uint16)
    assert (C.image_to_rgb(C.make_image(Image, const, "16UC1"), ranges=per_frame) == 0).all()
    allnan = np.full((2, 2), np.nan, np.float32)
    assert (C.image_to_rgb(C.make_image(Image, allnan, "32FC1"), ranges=per_frame) == 0).all()


@pytest.mark.parametrize(
    "kw,pattern",
    [
        (dict(depth=(5, 5)), r"depth_range=\[5, 5\] must be \[lo, hi\], finite with hi > lo"),
        (dict(depth=(0.0, float("inf"))), r"depth_range=\[0.0, inf\]"),
        (dict(mono16=[1, 2, 3]), r"mono16_range=\[1, 2, 3\]"),
        (dict(depth=3), r"depth_range=3 must be \[lo, hi\] or \[\]"),
        (dict(mono16=["a", "b"]), r"mono16_range=\['a', 'b'\] must be"),
    ],
)
def test_bad_ranges_name_the_value(kw, pattern):
    with pytest.raises(CodecError, match=pattern):
        C.GreyRanges(**kw)


def test_ranges_round_trip_through_meta_and_overrides_warn():
    trained = C.GreyRanges.from_dict({"depth_range": [0.3, 5.0], "mono16_range": None, "frame_stack": 3})
    assert trained == C.GreyRanges((0.3, 5.0), None)
    assert C.GreyRanges.from_dict(trained.to_dict()) == trained
    assert C.GreyRanges.from_dict({}) == C.GreyRanges() == C.GreyRanges(C.DEPTH_RANGE, C.MONO16_RANGE)
    same, warnings = trained.overridden(None, None)
    assert same == trained and warnings == []
    same, warnings = trained.overridden([0.3, 5.0])
    assert same == trained and warnings == []
    new, warnings = trained.overridden([0.0, 8.0], [0, 1000])
    assert new == C.GreyRanges((0.0, 8.0), (0.0, 1000.0))
    assert warnings == [
        "depth_range=[0.0, 8.0] differs from the checkpoint's [0.3, 5.0]: "
        "the model sees other pixel values than it was trained on",
        "mono16_range=[0.0, 1000.0] differs from the checkpoint's per-frame min-max: "
        "the model sees other pixel values than it was trained on",
    ]


# -- YUV 4:2:2 and Bayer, against ground truth built from known colours -------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("enc", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_decodes_known_colours(enc, flavour):
    """sensor_msgs: yuv422 (and uyvy) is U Y0 V Y1; yuv422_yuy2 (and yuyv, usb_cam's default) is Y0 U Y1 V."""
    rgb = patches(8, 16)
    packed = uyvy(rgb)
    if enc in ("yuv422_yuy2", "yuyv"):
        packed = packed[..., ::-1]  # U Y0 V Y1 -> Y0 U Y1 V
    msg = _hand_made(FLAVOURS[flavour], packed, enc, 6, False, np.random.default_rng(0))
    out = C.image_to_rgb(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert patch_error(out, margin=0) <= 2  # patches are whole pixel pairs: no chroma mixing
    # the other byte order decodes to another picture
    msg.encoding = "yuv422_yuy2" if enc in ("yuv422", "uyvy") else "yuv422"
    assert patch_error(C.image_to_rgb(msg), margin=0) > 50


def test_yuv422_odd_width_is_rejected():
    m = C.make_image(Image, np.zeros((2, 4, 2), np.uint8), "yuv422")
    m.width, m.step, m.data = 3, 6, bytes(12)
    with pytest.raises(CodecError, match=r"Image.width=3 must be even for encoding='yuv422'"):
        C.image_to_rgb(m)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_bayer_decodes_known_colours(pattern, bits, big):
    rgb = patches(16, 20)
    raw = mosaic(rgb, pattern)
    if bits == 16:
        raw = raw.astype(np.uint16) * 257
    msg = _hand_made(BagImage, raw, f"bayer_{pattern}{bits}", 2 * raw.itemsize, big, np.random.default_rng(1))
    out = C.image_to_rgb(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert patch_error(out) == 0  # bilinear demosaicing is exact inside a flat patch
    # every other pattern name gives other colours: the names are not shifted
    for other in set(BAYER_PATTERNS) - {pattern}:
        msg.encoding = f"bayer_{other}{bits}"
        assert patch_error(C.image_to_rgb(msg)) > 50, other


def test_yuv_and_bayer_without_opencv_say_so(monkeypatch):
    monkeypatch.setattr(image_codec, "_try_cv2", lambda: None)
    with pytest.raises(CodecError, match="decoding bayer_rggb images needs OpenCV"):
        C.image_to_rgb(C.make_image(Image, np.zeros((2, 2), np.uint8), "bayer_rggb8"))


@pytest.mark.parametrize(
    "enc,pad,big", [("rgb8", 0, 0), ("bgr8", 5, 0), ("mono16", 4, 1), ("32FC1", 8, 1), ("16UC1", 2, 0), ("rgba8", 3, 0)]
)
def test_rclpy_bytes_decode_identically_in_rosbags(enc, pad, big):
    rng = np.random.default_rng(5)
    arr = _random(enc, 9, 11, rng)
    live = _hand_made(Image, arr, enc, pad * arr.itemsize, bool(big), rng)
    live.header.frame_id = "camera"
    raw = serialization.serialize_message(live)
    bag = TS.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    a, b = C.image_to_array(live), C.image_to_array(bag)
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(b, arr)
    np.testing.assert_array_equal(C.image_to_rgb(live), C.image_to_rgb(bag))


@pytest.mark.parametrize("enc,pad,big", [("rgb8", 0, 0), ("bgr8", 6, 0), ("mono16", 2, 1), ("32FC1", 4, 0)])
def test_rosbags_bytes_decode_identically_in_rclpy(enc, pad, big):
    rng = np.random.default_rng(6)
    arr = _random(enc, 7, 3, rng)
    bag = _hand_made(BagImage, arr, enc, pad * arr.itemsize, bool(big), rng)
    raw = TS.serialize_cdr(bag, "sensor_msgs/msg/Image")
    live = serialization.deserialize_message(bytes(raw), Image)
    np.testing.assert_array_equal(C.image_to_array(live), C.image_to_array(bag))
    np.testing.assert_array_equal(C.image_to_array(live), arr)
    # and a make_image-built rosbags message serialises and comes back the same in rclpy
    built = C.make_image(BagImage, arr, enc, stamp_ns=42, frame_id="f")
    back = serialization.deserialize_message(bytes(TS.serialize_cdr(built, "sensor_msgs/msg/Image")), Image)
    np.testing.assert_array_equal(C.image_to_array(back), arr)
    assert back.header.stamp.nanosec == 42 and back.header.frame_id == "f"


# -- malformed --------------------------------------------------------------------------


def _msg(**kw):
    m = C.make_image(Image, np.zeros((4, 64, 3), np.uint8))
    for k, v in kw.items():
        setattr(m, k, v)
    return m


def test_error_step_too_small_names_field_and_values():
    with pytest.raises(CodecError) as e:
        C.image_to_array(_msg(step=100))
    assert str(e.value) == "Image.step=100 < width*channels*bytes=192 (width=64, encoding='rgb8')"


@pytest.mark.parametrize(
    "kw,pattern",
    [
        (dict(encoding="nv21"), r"Image.encoding='nv21' is not supported \(known: rgb8"),
        (dict(encoding=""), "Image.encoding=''"),
        (dict(height=0), r"Image.height=0 is outside 1..16384"),
        (dict(width=0, step=0), r"Image.width=0 is outside"),
        (dict(height=20000), r"Image.height=20000 is outside"),
        (dict(is_bigendian=2), r"Image.is_bigendian=2 is not 0 or 1"),
        (dict(step=193), r"Image.data has 768 bytes, expected height\*step=772"),
        (dict(height=3), r"Image.data has 768 bytes, expected height\*step=576"),
        (dict(data=b"\x00" * 767), r"Image.data has 767 bytes"),
    ],
)
def test_malformed_raise_codec_error(kw, pattern):
    with pytest.raises(CodecError, match=pattern):
        C.image_to_array(_msg(**kw))
    with pytest.raises(CodecError, match=pattern):
        C.image_to_rgb(_msg(**kw))


def test_step_must_be_multiple_of_channel_size():
    m = C.make_image(Image, np.zeros((2, 3), np.uint16), "mono16")
    m.step, m.data = 7, bytes(14)
    with pytest.raises(CodecError, match=r"Image.step=7 is not a multiple of the 2-byte"):
        C.image_to_array(m)


def test_bad_data_types_in_rosbags_message():
    m = C.make_image(BagImage, np.zeros((2, 2, 3), np.uint8))
    m.data = np.zeros(12, np.int64)
    with pytest.raises(CodecError, match="Image.data has dtype int64"):
        C.image_to_array(m)
    m.data = [300] * 12
    with pytest.raises(CodecError, match="outside 0..255"):
        C.image_to_array(m)
    m.data = list(range(12))
    assert C.image_to_array(m).shape == (2, 2, 3)
    m.data = [[1, 2], [3]]
    with pytest.raises(CodecError, match="Image.data is not a flat list"):
        C.image_to_array(m)
    m.data = None
    with pytest.raises(CodecError, match="unsupported type NoneType"):
        C.image_to_array(m)
    m.data = np.zeros(12, np.uint8)
    m.height = 2.0
    with pytest.raises(CodecError, match="Image.height=2.0 is not an integer"):
        C.image_to_array(m)


@pytest.mark.parametrize(
    "arr,enc,pattern",
    [
        (np.zeros((2, 2, 3), np.float32), "rgb8", "dtype float32 does not fit encoding='rgb8'"),
        (np.zeros((2, 2), np.uint8), "rgb8", r"shape \(2, 2\) does not fit encoding='rgb8'"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", r"shape \(2, 2, 3\) does not fit"),
        (np.zeros((2, 2), np.float64), "32FC1", "dtype float64 does not fit"),
        (np.zeros((0, 2, 3), np.uint8), "rgb8", "sides must be in 1..16384"),
        (np.zeros((2, 2, 3), np.uint8), "jpeg", "encoding='jpeg' is not supported"),
    ],
)
def test_fill_image_rejects_mismatch(arr, enc, pattern):
    with pytest.raises(CodecError, match=pattern):
        C.fill_image(Image(), arr, enc)


def test_bool_is_bigendian_accepted():
    m = C.make_image(BagImage, np.arange(4, dtype=">u2").reshape(2, 2), "mono16")
    m.is_bigendian = True
    np.testing.assert_array_equal(C.image_to_array(m), [[0, 1], [2, 3]])


def test_module_imports_no_rclpy_rosbags_or_cv2():
    """codecs must load where no ROS is installed (training cluster); OpenCV only on demand."""
    import subprocess
    import sys

    code = (
        "import sys, moejepa_ros.codecs; "
        "bad = [m for m in ('rclpy', 'rosbags', 'cv2', 'sensor_msgs', 'cv_bridge') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
