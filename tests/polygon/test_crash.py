"""A writer killed (SIGKILL) between writing the temp file and renaming it leaves a good cache."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.polygon.conftest import API_KEY

START = "2024-01-02"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL semantics")
def test_writer_killed_mid_write_leaves_the_previous_cache_readable(
    server, make_store, tmp_path: Path, repo_root: Path
) -> None:
    cache = tmp_path / "cache"
    store = make_store(cache)
    server.last_session = pd.Timestamp("2024-06-21")
    store.refresh(["SYNA"], START, "2024-06-28")
    before = store.read_bars()
    server.last_session = pd.Timestamp("2024-06-28")
    marker = tmp_path / "temp-written"
    writer = textwrap.dedent(f"""
        import pathlib, time
        from bma_models.data import calendar
        from polygon import BarStore, PolygonClient

        def hook(path, temp):
            pathlib.Path({str(marker)!r}).write_text(str(temp))
            time.sleep(120)

        client = PolygonClient(base_url={server.base_url!r}, api_key={API_KEY!r})
        BarStore(client, {str(cache)!r}, calendar=calendar, write_hook=hook).refresh(
            ["SYNA"], {START!r}, "2024-06-28")
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], cwd=repo_root)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the writer never reached the rename"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    temp = Path(marker.read_text())
    assert temp.exists() and temp.stat().st_size > 0  # the new data never got renamed in
    after = make_store(cache)
    pd.testing.assert_frame_equal(after.read_bars(), before)
    assert after.coverage("SYNA") == (pd.Timestamp(START), pd.Timestamp("2024-06-21"))
    after.refresh(["SYNA"], START, "2024-06-28")  # a later run cleans up and completes
    assert not temp.exists()
    assert after.read_bars()["date"].max() == pd.Timestamp("2024-06-28")
