"""Codec latency: Image/CompressedImage decode (and Image fill) µs p50/p99 per call.

Cases per size (64x64, 224x224, 480x640): raw rgb8 (rclpy and rosbags messages), bgr8 with
row padding (plus the numpy channel swap that OpenCV replaced, as a side-by-side ratio),
and JPEG (quality 90); fill_image for the publishing side. Prints one JSON line per case and writes them all
through `bench.record` (name `codecs`). The machine is shared, so the cases are measured in interleaved
rounds and the per-call samples pooled; compare cases within one run, not across runs.

    .venv/bin/python -m bench.micro.bench_codecs [--seconds 0.3] [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench import record
from moejepa_ros import codecs as C

SIZES = [(64, 64), (224, 224), (480, 640)]


def _image(h: int, w: int) -> np.ndarray:
    """A smooth test picture (JPEG-realistic, unlike noise)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1).astype(np.uint8)


def _samples(fn, seconds: float, out: list) -> None:
    """Append per-call µs of ``fn`` for about ``seconds`` (at least 20 calls)."""
    t_end = time.perf_counter() + seconds
    n = 0
    while n < 20 or time.perf_counter() < t_end:
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e3)
        n += 1


def _padded_bgr(cls, rgb: np.ndarray, pad: int):
    """An rclpy bgr8 Image whose rows carry ``pad`` junk bytes (as many camera drivers align rows)."""
    h, w, _ = rgb.shape
    raw = np.full((h, w * 3 + pad), 0xAB, np.uint8)
    raw[:, : w * 3] = rgb[..., ::-1].reshape(h, -1)
    msg = C.new_message(cls)
    msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step = h, w, "bgr8", 0, w * 3 + pad
    msg.data = raw.reshape(-1).copy() if C.is_rosbags(msg) else raw.tobytes()
    return msg


def build_cases():
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CompressedImage, Image

    bag_image = get_typestore(Stores.ROS2_KILTED).types["sensor_msgs/msg/Image"]
    cases = []
    for h, w in SIZES:
        rgb = _image(h, w)
        size = f"{h}x{w}"
        live = C.make_image(Image, rgb, "rgb8")
        bag = C.make_image(bag_image, rgb, "rgb8")
        pad = (-(w * 3)) % 64 or 64  # rows padded to a 64-byte multiple
        bgr = _padded_bgr(Image, rgb, pad)
        jpg = C.make_compressed(CompressedImage, rgb, "jpeg", quality=90)
        assert np.array_equal(C.image_to_rgb(bgr), rgb)
        cases += [
            dict(case="rgb8_raw", size=size, op="image_to_array", msg="rclpy", fn=lambda m=live: C.image_to_array(m)),
            dict(case="rgb8_raw", size=size, op="image_to_rgb", msg="rclpy", fn=lambda m=live: C.image_to_rgb(m)),
            dict(case="rgb8_raw", size=size, op="image_to_rgb", msg="rosbags", fn=lambda m=bag: C.image_to_rgb(m)),
            dict(
                case=f"bgr8_step_pad{pad}",
                size=size,
                op="image_to_rgb",
                msg="rclpy",
                fn=lambda m=bgr: C.image_to_rgb(m),
            ),
            dict(
                case=f"bgr8_step_pad{pad}",
                size=size,
                op="numpy_swap_variant",
                msg="rclpy",
                fn=lambda m=bgr: np.ascontiguousarray(C.image_to_array(m)[..., ::-1]),
            ),
            dict(
                case="jpeg_q90",
                size=size,
                op="image_to_rgb",
                msg="rclpy",
                bytes=len(jpg.data),
                fn=lambda m=jpg: C.image_to_rgb(m),
            ),
            dict(
                case="rgb8_raw",
                size=size,
                op="fill_image",
                msg="rclpy",
                fn=lambda m=Image(), a=rgb: C.fill_image(m, a, "rgb8"),
            ),
        ]
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=0.3, help="time per case per round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all cases")
    record.add_arguments(ap, "codecs")
    args = ap.parse_args()
    import cv2

    meta = {
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "seconds": args.seconds,
        "rounds": args.rounds,
    }
    cases = build_cases()
    samples = [[] for _ in cases]
    for _ in range(args.rounds):
        for case, acc in zip(cases, samples):
            _samples(case["fn"], args.seconds, acc)
    rows = []
    for case, acc in zip(cases, samples):
        row = {k: v for k, v in case.items() if k != "fn"}
        row.update(
            bench="codecs",
            n=len(acc),
            p50_us=round(float(np.percentile(acc, 50)), 1),
            p99_us=round(float(np.percentile(acc, 99)), 1),
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    record.write_result(args, {"meta": meta, "results": rows})


if __name__ == "__main__":
    main()
