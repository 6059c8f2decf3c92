"""Publishers and subscriptions whose QoS a user can override from parameters (REP-2003 defaults, ROS's overrides).

Every topic of our nodes goes through `publisher` / `subscription`: the profile in `messages` is the
default, and `qos_overrides.<topic>.<publisher|subscription>[_<id>].<policy>` (read-only, set in a params
file or with `-p`) replaces it, e.g. a reliable camera subscription:

    /**:
      ros__parameters:
        qos_overrides:
          /image: {subscription: {reliability: reliable}}

Two entities on one topic (planner_node's latched and volatile goal subscriptions) need an `entity_id`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from rclpy.qos import QoSProfile
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind

#: The policies a user may override on every entity.
POLICIES = (QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY, QoSPolicyKind.DURABILITY)


def _options(entity_id: str | None) -> QoSOverridingOptions:
    return QoSOverridingOptions(POLICIES, entity_id=entity_id)


def publisher(
    node: Any,
    msg_type: type,
    topic: str,
    profile: QoSProfile,
    entity_id: str | None = None,
    lifecycle: bool = False,
) -> Any:
    """`node.create_publisher` with `profile` as the overridable default (a copy: overrides never leak);
    `lifecycle`: a lifecycle publisher (`create_lifecycle_publisher`), which sends only while the node is active."""
    create = node.create_lifecycle_publisher if lifecycle else node.create_publisher
    return create(msg_type, topic, copy.copy(profile), qos_overriding_options=_options(entity_id))


def subscription(
    node: Any,
    msg_type: type,
    topic: str,
    callback: Callable[[Any], None],
    profile: QoSProfile,
    entity_id: str | None = None,
    **kwargs: Any,
) -> Any:
    """`node.create_subscription` with `profile` as the overridable default (a copy: overrides never leak);
    `kwargs` go to `create_subscription` (e.g. `event_callbacks`)."""
    return node.create_subscription(
        msg_type, topic, callback, copy.copy(profile), qos_overriding_options=_options(entity_id), **kwargs
    )
