"""mprt.Panic: Go's panic as a Python exception.  `except mprt.Panic` is recover."""


class Panic(Exception):
    """A Go panic.  The panicking value is in .value; str() is what `panic: ` prints."""

    def __init__(self, value=None):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return str(self.value)


def panic(value):
    """Go's panic(value)."""
    raise Panic(value)


from .shm import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
