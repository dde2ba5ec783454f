"""Choosing which of an experiment's stages run (`--config.stages=pretrain,report`)."""


def selected(stages_flag: str, available: tuple[str, ...]) -> tuple[str, ...]:
  """The stages to run, in the experiment's order; unknown names fail naming the valid ones."""
  if not stages_flag:
    return available
  wanted = [s.strip() for s in stages_flag.split(",") if s.strip()]
  unknown = [s for s in wanted if s not in available]
  if unknown:
    raise SystemExit(f"error: unknown stage(s) {', '.join(unknown)} in --config.stages; "
                     f"this experiment has: {', '.join(available)}")
  return tuple(s for s in available if s in wanted)
