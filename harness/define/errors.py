"""The error every define-stage check raises, and the one spelling suggestion they share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ScenarioError(Exception):
    """Every problem found in one or more scenario files (or command-line settings), one line each."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def did_you_mean(word: str, valid: Iterable[str]) -> str:
    """"did you mean 'gogc'? " for a near miss, "" otherwise; written to precede a (valid: ...) list."""
    close = difflib.get_close_matches(word, list(valid), n=1)
    return f"did you mean {close[0]!r}? " if close else ""
