"""mprt.Panic: Go's panic as a Python exception.  `except mprt.Panic` is recover."""
from typing import NoReturn


class Panic(Exception):
    """A Go panic.  The panicking value is in .value; str() is what `panic: ` prints."""

    def __init__(self, value: object = None) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return str(self.value)


def panic(value: object) -> NoReturn:
    """Go's panic(value)."""
    raise Panic(value)


from . import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
