"""How a build shares the machine: fewer garbage collections, and workers that give way."""

import gc
import os

import pytest

from svduty.assessment import workers
from svduty.runtime import THRESHOLDS, WORKER_NICENESS, fewer_collections


def test_fewer_collections_inside_and_the_thresholds_restored_after_a_failure():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
        raise RuntimeError("a build that fails")
    assert gc.get_threshold() == before


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities (Windows)")
def test_a_worker_gives_way_to_the_building_process():
    with workers.workers(1) as jobs:
        niceness = jobs.get(jobs.submit(os.nice, 0))  # os.nice(0): the worker's nice value
        thresholds = jobs.get(jobs.submit(gc.get_threshold))
        assert jobs.pool is not None  # these ran in a worker, not here
    assert niceness == min(os.nice(0) + WORKER_NICENESS, 19)
    assert thresholds == THRESHOLDS
