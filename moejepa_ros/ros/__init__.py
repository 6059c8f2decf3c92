"""The only package that imports rclpy: planner_node, sim_node, bringup, parameters."""
