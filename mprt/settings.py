"""What the runtime reads from the environment, once, at boot: Go's parsing of GOMAXPROCS, GOGC,
GODEBUG (parsedebugvars) and its atoi, and mprt's own MPRT_ARENA.  A leaf: it imports nothing of
mprt, so every layer may read `config` (boot fills it; process-local, inherited by forks).
MPRT_ACCEL=0 turns the C accelerators off (read at import: the pure-Python paths are the reference).
"""
import importlib
import os

MAX_GOMAXPROCS = 1024      # Go's _MaxGomaxprocs

config = {}      # what boot read from the environment (process-local; inherited by forks)


MEMPROFRATE = 512 * 1024      # Go's default runtime.MemProfileRate

ACCEL = os.environ.get("MPRT_ACCEL", "") != "0"


def load_accel(name):
    """The C accelerator module `name` (a leaf: it imports nothing of mprt), or None where it was not
    built or MPRT_ACCEL=0 turns the accelerators off."""
    if not ACCEL:
        return None
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def atoi(s, bits=64):
    """Go's runtime atoi (atoi32 with bits=32): an optional '-' and decimal digits, nothing else (no
    space, no '+', no '_'), within the signed range; None where Go's ok is false."""
    if not s or not isinstance(s, str):
        return None
    digits = s[1:] if s[0] == "-" else s
    if not digits or not all("0" <= c <= "9" for c in digits):
        return None
    n = int(s)
    lim = 1 << (bits - 1)
    return n if -lim <= n < lim else None


def parse_gomaxprocs(val, ncpu):
    """GOMAXPROCS from the environment: a positive int32 overrides the CPU count (capped at 1024);
    anything else (empty, negative, not a number, too large for int32) is ignored, as Go's."""
    n = atoi(val, 32)
    return min(n if n is not None and n > 0 else ncpu, MAX_GOMAXPROCS)


def parse_gogc(val):
    """GOGC: "off" -> -1, an int32 -> it (a negative one turns the collector off), anything else
    (unset and empty included) -> 100, as Go's readgogc."""
    if val == "off":
        return -1
    n = atoi(val, 32)
    return 100 if n is None else n


def parse_arena(val):
    """MPRT_ARENA (mprt's own setting): the arena reservation in bytes, with an optional K, M, G or T
    suffix (powers of 1024); unset or empty: the default, 64 GiB."""
    if val is None or val == "":
        return None
    v = val.strip()
    mult = 1
    if v[-1:].upper() in "KMGT" and v[-1:]:
        mult = 1 << (10 * ("KMGT".index(v[-1].upper()) + 1))
        v = v[:-1]
    if not v.isdigit():
        raise ValueError(f"mprt: MPRT_ARENA={val!r} is not a size (bytes, or a number with K, M, G or T)")
    return int(v) * mult


def parse_godebug(val):
    """GODEBUG "k=v,k=v" as Go's parsedebugvars: each value an int32 (memprofilerate: an int); a
    field without '=' or with a value that is not a number is skipped; the last of a key wins;
    unknown keys are kept here and ignored by everyone, as Go ignores them."""
    out = {}
    for part in (val or "").split(","):
        k, eq, v = part.partition("=")
        if not eq:
            continue
        n = atoi(v, 64 if k == "memprofilerate" else 32)
        if n is not None:
            out[k] = n
    return out
