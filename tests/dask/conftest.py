"""A LocalCluster of 2 worker processes shared by the Dask tests.

Package scope: started once (~3 s) and closed before the other test packages run.
"""

from __future__ import annotations

import pytest

from bma_models.cluster import open_session
from bma_models.settings import DaskSettings


@pytest.fixture(scope="package")
def dask_local():
    """A :class:`~bma_models.cluster.DaskSession` on 2 single-threaded worker processes."""
    session = open_session(DaskSettings(scheduler="local", workers=2, threads_per_worker=1,
                                        memory_limit="0"))
    yield session
    session.close()
