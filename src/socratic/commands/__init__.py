"""The commands a user runs, one module each, built on the layers below: solve, ask, serve, export,
run (the whole pipeline, its status and its dry-run plan)."""
