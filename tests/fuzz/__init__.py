"""Property tests for issue 18: nothing a user types or a model writes can hang, crash or corrupt a run.

    python -m pytest tests/fuzz -q -s -n 0                    # fast profile, fixed seed
    python -m pytest tests/fuzz -q -s -n 0 -m slow            # the same properties, many more cases

Each property states a contract and generates inputs against it: calculator expressions, answer
text, JSONL lines, and whole files (random bytes, random JSON, random CSV) given to the command line.
The contract: a result, or one `socratic: error:` line with exit status 2; within a time bound;
and nothing written but what the command writes. Every property runs twice: a fast profile
(derandomized, so the same cases each run) and a slow one marked `slow`. `-s` prints how many cases
each tried.

One module a surface: `test_text` (calculator, answers), `test_files` (files given to the command line,
where outputs go), `test_config` (config files, their depth, option values), `test_state` (damaged state
files), `test_serve_bodies` (request bodies sent to `serve`); `properties` holds what they share.
"""
