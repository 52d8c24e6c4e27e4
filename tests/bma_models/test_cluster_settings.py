"""research.dask settings, the --dask-scheduler flag, and dask staying an optional import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from autotrader.research.cli import parse_args
from autotrader.research.wiring import cli_overrides
from bma_models.errors import SettingsError
from bma_models.settings import DaskSettings, ResearchSettings


def test_defaults_keep_dask_off_with_a_threshold_above_the_demo_market():
    s = ResearchSettings()
    assert s.dask.scheduler is None
    assert s.dask.native_fit_min_rows > 500 * 1260


@pytest.mark.parametrize("address", ["local", "tcp://10.0.0.5:8786", "tls://h:8786",
                                     "scheduler-host:8786"])
def test_scheduler_accepts_local_and_addresses(address):
    assert ResearchSettings.from_mapping({"dask": {"scheduler": address}}).dask.scheduler \
        == address


@pytest.mark.parametrize("address", ["localhost", "http://h:8786", "tcp://h :1", ""])
def test_scheduler_rejects_what_is_no_address_and_names_the_key(address):
    with pytest.raises(SettingsError, match=r"dask\.scheduler"):
        ResearchSettings.from_mapping({"dask": {"scheduler": address}}, prefix="research")


def test_unknown_dask_key_is_an_error():
    with pytest.raises(SettingsError, match="dask.nodes"):
        ResearchSettings.from_mapping({"dask": {"nodes": 3}})


def test_flag_becomes_the_highest_precedence_override():
    ns = parse_args(["run", "--dask-scheduler", "tcp://h:8786"], {})
    assert cli_overrides(ns, "demo")["research.dask.scheduler"] == "tcp://h:8786"
    assert "research.dask.scheduler" not in cli_overrides(parse_args(["run"], {}), "demo")


def test_without_a_scheduler_the_session_is_none_and_dask_is_not_imported():
    code = textwrap.dedent("""
        import sys
        import autotrader.research.cli, autotrader.research.wiring
        import bma_models.pipeline, bma_models.cluster
        import bma_models.factors.distributed, bma_models.models.distributed
        from bma_models.cluster import dask_session
        from bma_models.settings import DaskSettings
        with dask_session(DaskSettings()) as session:
            assert session is None
        print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed'}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_dask_settings_are_validated_when_built_in_code():
    with pytest.raises(SettingsError):
        DaskSettings(workers=0)
