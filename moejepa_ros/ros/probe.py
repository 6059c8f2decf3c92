"""`Probe`: an rclpy node in its own context, driving and watching our nodes from outside their process.

Tests, benchmarks and the demo driver use it: publish, collect messages (`Inbox`), wait for discovery or
for a condition (never fixed sleeps: `wait_until`), call lifecycle and parameter services.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class Inbox:
    """Messages received on one subscription, with their receipt times (time.monotonic)."""

    def __init__(self) -> None:
        self.msgs: list[Any] = []
        self.times: list[float] = []
        self._cond = threading.Condition()

    def put(self, msg: Any) -> None:
        with self._cond:
            self.msgs.append(msg)
            self.times.append(time.monotonic())
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self.msgs)

    def clear(self) -> None:
        with self._cond:
            self.msgs.clear()
            self.times.clear()

    def wait(self, n: int = 1, timeout: float = 10.0, pred: Callable[[Any], bool] | None = None) -> list[Any]:
        """Wait until `n` messages (matching `pred`, if given) are in; TimeoutError otherwise."""

        def matching() -> list[Any]:
            return [m for m in self.msgs if pred is None or pred(m)]

        with self._cond:
            ok = self._cond.wait_for(lambda: len(matching()) >= n, timeout)
            got = matching()
        if not ok:
            raise TimeoutError(f"got {len(got)} of {n} expected messages within {timeout} s")
        return got


class Probe:
    """An rclpy node in a private context, spun by a background thread."""

    def __init__(self, name: str = "probe", args: Iterable[str] | None = None):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.rclpy = rclpy
        self.ctx = rclpy.Context()
        rclpy.init(args=list(args) if args else None, context=self.ctx)
        self.node = rclpy.create_node(name, context=self.ctx)
        self.ex = SingleThreadedExecutor(context=self.ctx)
        self.ex.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=f"{name}_spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self.ctx.ok():
            try:
                self.ex.spin_once(timeout_sec=0.05)
            except Exception:
                if self._stop.is_set():
                    return
                raise

    # -- topics ------------------------------------------------------------------------
    def publisher(self, msg_type: type, topic: str, qos: Any = 10) -> Any:
        return self.node.create_publisher(msg_type, topic, qos)

    def subscribe(self, msg_type: type, topic: str, qos: Any = 10) -> Inbox:
        box = Inbox()
        self.node.create_subscription(msg_type, topic, box.put, qos)
        return box

    def wait_for_subscribers(self, pub: Any, n: int = 1, timeout: float = 15.0) -> None:
        wait_until(lambda: pub.get_subscription_count() >= n, timeout, f"{n} subscriber(s) on {pub.topic_name}")

    def wait_for_publishers(self, topic: str, n: int = 1, timeout: float = 15.0) -> None:
        wait_until(lambda: self.node.count_publishers(topic) >= n, timeout, f"{n} publisher(s) on {topic}")

    # -- services ----------------------------------------------------------------------
    def call(self, srv_type: type, name: str, request: Any, timeout: float = 15.0) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available within {timeout} s")
            fut = client.call_async(request)
            done = threading.Event()
            fut.add_done_callback(lambda _: done.set())
            if not done.wait(timeout):
                raise TimeoutError(f"service {name} did not answer within {timeout} s")
            return fut.result()
        finally:
            self.node.destroy_client(client)

    def set_parameters(self, node: str, values: Mapping[str, Any], timeout: float = 15.0) -> list[Any]:
        """SetParameters on `node` (a fully qualified name); one SetParametersResult per value."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        req = SetParameters.Request()
        req.parameters = [Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        return list(self.call(SetParameters, f"{node}/set_parameters", req, timeout).results)

    def get_parameters(self, node: str, names: Iterable[str], timeout: float = 15.0) -> dict[str, Any]:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        names = list(names)
        req = GetParameters.Request(names=names)
        res = self.call(GetParameters, f"{node}/get_parameters", req, timeout)
        return {n: parameter_value_to_python(v) for n, v in zip(names, res.values)}

    def lifecycle_state(self, node: str, timeout: float = 15.0) -> str:
        from lifecycle_msgs.srv import GetState

        return self.call(GetState, f"{node}/get_state", GetState.Request(), timeout).current_state.label

    def change_state(self, node: str, transition_id: int, timeout: float = 30.0) -> bool:
        from lifecycle_msgs.srv import ChangeState

        req = ChangeState.Request()
        req.transition.id = transition_id
        return bool(self.call(ChangeState, f"{node}/change_state", req, timeout).success)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.ex.shutdown()
            self.node.destroy_node()
        finally:
            self.rclpy.try_shutdown(context=self.ctx)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def wait_until(pred: Callable[[], bool], timeout: float, what: str, poll: float = 0.01) -> None:
    """Poll `pred` until true; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)
