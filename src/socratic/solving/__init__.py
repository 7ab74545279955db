"""Stage 3, students writing answers: the one-pass and iterative (QG <-> QA) loops and their decoding
settings, opening students' engines for a method, the streaming dialogue that ask and serve share, and
attempts turned into `Prediction` records."""
