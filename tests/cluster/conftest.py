"""The cluster fixture: a real cluster on loopback (see :mod:`cluster_harness`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cluster_harness import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """NATS + two workers of one slot each + a gateway (tokens required); all stopped after."""
    if shutil.which("nats-server") is None and not Path("/usr/sbin/nats-server").exists():
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    c = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start({"w1": 1, "w2": 1})
        yield c
    finally:
        c.close()
