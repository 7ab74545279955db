"""The lowest layer, owed nothing by anyone: errors that end in one line, the records passed between
stages, strict JSON/JSONL files and crash-safe appends, option dataclasses and their checking, resuming
only with the settings that made the state, run manifests, console quieting, the cores and memory a
process may use, a stage run in a process of its own, and the version."""
