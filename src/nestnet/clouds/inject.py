"""``--inject KIND:RATE``, as every cloud emulator takes it (one parser, each emulator its own kinds)."""

from __future__ import annotations

from ..errors import UsageError


def parse_inject(value: str, kinds: tuple[str, ...], example: str) -> tuple[str, float]:
    """``KIND:RATE`` -> (kind, rate) with kind one of ``kinds`` and 0 <= rate <= 1; else one line, exit 2."""
    kind, _, rate = value.partition(":")
    try:
        r = float(rate)
        if kind not in kinds or not 0.0 <= r <= 1.0:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"--inject {value!r}: expected KIND:RATE with KIND one of {', '.join(kinds)} and 0 <= RATE <= 1, "
            f"e.g. {example}"
        ) from None
    return kind, r
