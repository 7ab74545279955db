"""Weights on disk: the pretrained models the package provides (listing, assembling, checksums), GGUF
reading and writing (pretrained GGUF -> Hugging Face folder, trained student -> GGUF), and the student
folder a training run writes (`socratic.json`, its weights, its checkpoints, its GGUF export)."""
