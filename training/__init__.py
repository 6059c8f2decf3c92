"""Offline side: rollouts to rosbag2, bag -> training data, trainers, evaluation, CLI."""
