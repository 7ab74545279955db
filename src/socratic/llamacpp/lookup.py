"""Prompt-lookup drafts: guesses of a completion's next tokens, copied from its own text.

Any engine can feed the guesses and keep the prefix the model agrees with (`LlamaCppEngine` does);
the guesses never change the text, only how many calls it takes.
"""

from __future__ import annotations

from collections.abc import Sequence


class PromptLookup:
    """Draft tokens for one sequence by prompt lookup: the tokens that followed the latest earlier
    occurrence of its last `ngram` tokens (prompt and output alike).

    Students copy a lot: numbers and phrases of the question, the subquestion they answer, and,
    when they loop, whole lines of their own output. A draft costs nothing unless it is fed, and the
    model checks it (see `LlamaCppEngine`), so a wrong draft never changes the text.
    """

    def __init__(self, tokens: Sequence[int], ngram: int = 2):
        self.tokens: list[int] = []
        self.ngram = ngram
        self.follows: dict[tuple[int, ...], int] = {}  # n-gram -> position of the token after its latest occurrence
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            self.tokens.append(token)
            end = len(self.tokens) - 1
            if end >= self.ngram:
                self.follows[tuple(self.tokens[end - self.ngram : end])] = end

    def draft(self, k: int) -> list[int]:
        # The text's own last n-gram is not in `follows` yet (its next token is unknown), so this
        # finds an earlier occurrence.
        at = self.follows.get(tuple(self.tokens[-self.ngram :])) if k > 0 else None
        return self.tokens[at : at + k] if at is not None else []
