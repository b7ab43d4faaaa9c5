import os

import pytest

from mprt.shm import mksizeclasses
from mprt.shm import sizeclasses as sc
from mprt.shm.types import size_class

TSV = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "go1.9.2-sizeclasses.tsv")


def test_table_matches_go():
    assert sc.NUM_SIZE_CLASSES == 67
    assert sc.PAGE_SIZE == 8192 and sc.MAX_SMALL_SIZE == 32768
    span = lambda c: sc.class_to_allocnpages[c] * sc.PAGE_SIZE
    assert (sc.class_to_size[1], sc.class_to_nobjs[1], span(1)) == (8, 1024, 8192)
    assert (sc.class_to_size[4], sc.class_to_nobjs[4], span(4)) == (48, 170, 8192)
    assert span(4) - 48 * 170 == 32
    assert (sc.class_to_size[34], sc.class_to_nobjs[34], span(34)) == (1408, 11, 16384)
    assert (sc.class_to_size[66], sc.class_to_nobjs[66], span(66)) == (32768, 1, 32768)


@pytest.mark.skipif(not os.path.exists(TSV), reason="Go's table as data is not beside the project")
def test_generated_module_is_current():
    rows = mksizeclasses.read_table(TSV)
    mksizeclasses.check(rows)
    with open(sc.__file__) as f:
        assert f.read() == mksizeclasses.render(rows)


def test_size_to_class_is_smallest_fit():
    for size in range(1, sc.MAX_SMALL_SIZE + 1, 7):
        c = size_class(size)
        assert sc.class_to_size[c] >= size
        assert sc.class_to_size[c - 1] < size
    assert size_class(sc.MAX_SMALL_SIZE + 1) == 0
