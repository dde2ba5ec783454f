"""Post-training: supervised fine-tuning (and later RL, reward models, preference tuning)."""
