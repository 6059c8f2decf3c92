"""The one Mode-2 control step, without rclpy: frame stack, preprocess, encode → plan → clamp → safe zero.

planner_node, MBRL collection, distillation, evaluation and the benches all run it: `LatentController` is the
step, `FrameStack` its input, `preprocess` the resize shared with the training cache, and
`PlannerPolicy` the adapter for gymnasium-style episode loops.
"""
from .controller import ERROR, OK, WARN, Decision, LatentController
from .frame_stack import FrameStack, Snapshot
from .policy import PlannerPolicy
from .preprocess import preprocess

__all__ = ["ERROR", "OK", "WARN", "Decision", "LatentController", "FrameStack", "Snapshot", "PlannerPolicy",
           "preprocess"]
