"""Property tests: malformed messages raise CodecError or decode exactly right, never anything else."""

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from moejepa_ros import codecs as C
from moejepa_ros.codecs import CodecError
from testing.ros_types import TS

Image = pytest.importorskip("sensor_msgs.msg").Image
CompressedImage = pytest.importorskip("sensor_msgs.msg").CompressedImage
Twist = pytest.importorskip("geometry_msgs.msg").Twist
BagImage = TS.types["sensor_msgs/msg/Image"]
BagCompressed = TS.types["sensor_msgs/msg/CompressedImage"]

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ENCODINGS = list(C.ENCODINGS) + ["", "RGB8", "nv21", "bgr 8", "16UC3", "64FC1"]
SIDES = st.one_of(st.integers(0, 6), st.sampled_from([16384, 16385, 2**31, 2**32 - 1]))


def _reference(data: bytes, h, w, step, enc, big):
    """Slow, obviously-correct decoder: one value at a time with int.from_bytes / struct."""
    e = C.ENCODINGS[enc]
    item = e.dtype.itemsize
    out = np.zeros((h, w, e.channels), e.dtype)
    order = "big" if big else "little"
    for r in range(h):
        for c in range(w):
            for k in range(e.channels):
                off = r * step + (c * e.channels + k) * item
                chunk = data[off : off + item]
                if e.dtype.kind == "f":
                    out[r, c, k] = np.frombuffer(chunk, np.dtype(">f4" if big else "<f4"))[0]
                else:
                    out[r, c, k] = int.from_bytes(chunk, order)
    return out[:, :, 0] if e.channels == 1 else out


def _valid(h, w, step, enc, big, n):
    if enc not in C.ENCODINGS or big not in (0, 1):
        return False
    e = C.ENCODINGS[enc]
    item = e.dtype.itemsize
    return (
        1 <= h <= C.MAX_SIDE
        and 1 <= w <= C.MAX_SIDE
        and (e.channels != 2 or w % 2 == 0)  # YUV 4:2:2: pixel pairs
        and step >= w * e.channels * item
        and step % item == 0
        and n == h * step
    )


DEFECTS = ["none", "none", "encoding", "height", "width", "is_bigendian", "step", "length", "random"]


@FUZZ
@given(st.data(), st.sampled_from(DEFECTS), st.booleans())
def test_raw_image_raises_codec_error_or_decodes_exactly(data, defect, rosbags):
    """A quarter valid messages, the rest with one broken field (or all random)."""
    d = lambda strat, label: data.draw(strat, label=label)  # noqa: E731
    rand = defect == "random"
    enc = d(st.sampled_from(ENCODINGS) if defect == "encoding" or rand else st.sampled_from(list(C.ENCODINGS)), "enc")
    h = d(SIDES if defect == "height" or rand else st.integers(1, 6), "h")
    w = d(SIDES if defect == "width" or rand else st.integers(1, 6), "w")
    big = d(st.integers(0, 255) if defect == "is_bigendian" or rand else st.integers(0, 1), "big")
    e = C.ENCODINGS.get(enc)
    item, pixel = (e.dtype.itemsize, e.dtype.itemsize * e.channels) if e else (1, 3)
    if defect == "step" or rand:
        step = d(st.one_of(st.integers(max(0, w * pixel - 3), w * pixel + 9), st.integers(0, 2**32 - 1)), "step")
    else:
        step = w * pixel + item * d(st.integers(0, 4), "pad")
    want = h * step
    if defect == "length" or rand or want > 4096:
        n = d(st.integers(max(0, want - 3), want + 3) if want <= 4096 else st.integers(0, 64), "n")
    else:
        n = want
    payload = d(st.binary(min_size=n, max_size=n), "payload")
    msg = BagImage(
        header=C.new_message(TS.types["std_msgs/msg/Header"]),
        height=h,
        width=w,
        encoding=enc,
        is_bigendian=big,
        step=step,
        data=np.frombuffer(payload, np.uint8),
    )
    if not rosbags:
        live = Image()
        live.height, live.width, live.encoding, live.is_bigendian, live.step = h, w, enc, big, step
        live.data = payload
        msg = live
    try:
        out = C.image_to_array(msg)
    except CodecError as exc:
        assert not _valid(h, w, step, enc, big, n), f"valid message rejected: {exc}"
        event("rejected")
        return
    event("decoded")
    assert _valid(h, w, step, enc, big, n)
    ref = _reference(payload, h, w, step, enc, big)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)  # NaN payloads compare equal positionally
    rgb = C.image_to_rgb(msg)
    assert rgb.dtype == np.uint8 and rgb.shape == (h, w, 3)


def _seed_images():
    y, x = np.mgrid[0:24, 0:32]
    rgb = np.stack([x * 8, y * 10, (x + y) * 4], -1).astype(np.uint8)
    return {"jpeg": C.compress_image(rgb, "jpeg"), "png": C.compress_image(rgb, "png")}


SEEDS = _seed_images()


@FUZZ
@given(st.sampled_from(["jpeg", "png"]), st.data(), st.booleans())
def test_mutated_compressed_raises_codec_error_or_decodes_to_header_size(fmt, data, rosbags):
    buf = bytearray(SEEDS[fmt])
    ops = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["cut", "flip", "insert", "zero"]),
                st.integers(0, len(buf) - 1),
                st.binary(min_size=1, max_size=8),
            ),
            min_size=1,
            max_size=3,
        ),
        label="ops",
    )
    for op, pos, blob in ops:
        pos = min(pos, max(len(buf) - 1, 0))
        if op == "cut":
            del buf[pos:]
        elif op == "flip":
            buf[pos : pos + len(blob)] = bytes(b ^ 0xFF for b in blob)
        elif op == "insert":
            buf[pos:pos] = blob
        else:
            buf[pos : pos + len(blob)] = bytes(len(blob))
    cls = BagCompressed if rosbags else CompressedImage
    msg = C.new_message(cls)
    msg.format = fmt
    msg.data = np.frombuffer(bytes(buf), np.uint8) if rosbags else bytes(buf)
    try:
        out = C.image_to_rgb(msg)
    except CodecError:
        event("rejected")
        return
    event("decoded")
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert 1 <= out.shape[0] <= C.MAX_SIDE and 1 <= out.shape[1] <= C.MAX_SIDE


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["jpeg", "png", "", "16UC1; compressedDepth png"]))
def test_random_bytes_compressed(blob, fmt):
    msg = CompressedImage()
    msg.format, msg.data = fmt, blob
    try:
        C.image_to_rgb(msg)
    except CodecError:
        pass


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)


@FUZZ
@given(
    st.lists(FLOATS, min_size=0, max_size=8),
    st.floats(-10, 10),
    st.floats(-10, 10),
    st.sampled_from(["rclpy", "rosbags"]),
)
def test_twist_actions_clamp_round_trip_or_raise(values, lo, hi, flavour):
    msg = Twist() if flavour == "rclpy" else C.new_message(TS.types["geometry_msgs/msg/Twist"])
    try:
        C.action_to_msg(values, msg, low=lo, high=hi, fields=C.TWIST_FIELDS[: len(values)])
    except CodecError:
        a = np.asarray(values, np.float64)
        assert a.size == 0 or a.size > 6 or not np.isfinite(a).all() or lo > hi
        return
    expect = np.clip(np.asarray(values, np.float64), lo, hi).astype(np.float32)
    np.testing.assert_array_equal(C.msg_to_action(msg, len(values), fields=C.TWIST_FIELDS[: len(values)]), expect)
