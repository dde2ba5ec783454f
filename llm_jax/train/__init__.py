"""Training: the pure train step, optimizer and schedules, checkpoints, metrics, the loop."""
