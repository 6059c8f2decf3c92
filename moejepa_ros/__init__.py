"""moejepa_ros: action-conditioned MoE JEPA world model and latent planners for ROS 2."""

__version__ = "0.1.0"
