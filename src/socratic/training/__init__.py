"""Stage 2, distillation: `socratic train` (TRL's SFTTrainer on the formats' segments, packing, LoRA,
resume from the same recipe) and what the project adds to TRL's trainer (decision weight, progress,
loss curve)."""
