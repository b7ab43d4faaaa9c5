"""Go's package time, the part the runtime does: timers and tickers (the runtime's own timers,
sched/timers.py), usable from every goroutine on every M.

Durations are seconds (floats), the values sent on a timer's channel `time.time()` floats (Go
sends a time.Time).  As in Go: a Timer's or Ticker's channel has a buffer of 1 and the runtime
never blocks sending on it (a receiver that falls behind misses ticks); Stop does not close the
channel; Stop and Reset say whether the timer was armed; a Timer made by AfterFunc has no channel
(C is None) and starts its function in its own goroutine when it fires.
"""
from collections.abc import Callable

from .sched import proc, timers
from .sched.chan import Chan
from .sched.mstate import current_m

__all__ = ["After", "AfterFunc", "NewTicker", "NewTimer", "Sleep", "Tick", "Ticker", "Timer"]


def _duration(d, who):
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        raise TypeError(f"time.{who}: duration {d!r} is not a number of seconds")
    return float(d)


class Timer:
    """Go's time.Timer: C (a channel, None for AfterFunc's), Stop(), Reset(d)."""

    __slots__ = ("_t", "C")

    def __init__(self, t):
        self._t = t
        self.C = Chan(t.c) if t.c is not None else None

    def __reduce__(self):
        return (Timer, (self._t,))

    def Stop(self) -> bool:
        """Stop the timer: True if this call stopped it, False if it had fired or been stopped."""
        return timers.disarm(current_m(), self._t)

    def Reset(self, d: float) -> bool:
        """Fire d seconds from now instead: True if the timer had been armed."""
        return timers.arm(current_m(), self._t, _duration(d, "Timer.Reset"))


class Ticker:
    """Go's time.Ticker: C, Stop(), Reset(d)."""

    __slots__ = ("_t", "C")

    def __init__(self, t):
        self._t = t
        self.C = Chan(t.c)

    def __reduce__(self):
        return (Ticker, (self._t,))

    def Stop(self) -> None:
        timers.disarm(current_m(), self._t)

    def Reset(self, d: float) -> None:
        d = _duration(d, "Ticker.Reset")
        if d <= 0:
            timers.nonpositive("Ticker.Reset")
        timers.arm(current_m(), self._t, d, int(d * 1e9))


def NewTimer(d: float) -> Timer:
    """A Timer that sends the time on its channel C after d seconds."""
    return Timer(timers.new_timer(_duration(d, "NewTimer")))


def After(d: float) -> Chan:
    """NewTimer(d).C."""
    return NewTimer(d).C


def AfterFunc(d: float, f: Callable[[], object]) -> Timer:
    """A Timer that starts f() in its own goroutine after d seconds (its C is None)."""
    if not callable(f):
        raise TypeError(f"time.AfterFunc: {f!r} is not callable")
    return Timer(timers.new_timer(_duration(d, "AfterFunc"), f=f, send=False))


def NewTicker(d: float) -> Ticker:
    """A Ticker that sends the time on its channel C every d seconds."""
    d = _duration(d, "NewTicker")
    if d <= 0:
        timers.nonpositive("NewTicker")
    return Ticker(timers.new_timer(d, period=int(d * 1e9)))


def Tick(d: float) -> "Chan | None":
    """NewTicker(d).C, or None (a nil channel) if d <= 0."""
    d = _duration(d, "Tick")
    if d <= 0:
        return None
    return NewTicker(d).C


def Sleep(d: float) -> None:
    """Pause the calling goroutine for d seconds (mprt.sleep)."""
    proc.sleep(d)


from . import codeclass as _codeclass  # noqa: E402  (last: marks every function above)

_codeclass.mark(__name__, _codeclass.RUNTIME)
