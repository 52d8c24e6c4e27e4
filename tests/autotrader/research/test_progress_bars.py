"""The CLI's tqdm bars: the running stage is named and training shows its fold x model tasks."""

from __future__ import annotations

from autotrader.research.wiring import _tqdm_progress


def test_tqdm_names_the_running_stage_and_counts_training_tasks(capsys):
    progress = _tqdm_progress()
    progress("features", 1, 6)
    for done in range(1, 5):
        progress("train:tasks", done, 4)
    progress("train", 2, 6)
    for stage, done in (("fusion", 3), ("evaluate", 4), ("risk", 5), ("optimize", 6)):
        progress(stage, done, 6)
    err = capsys.readouterr().err
    assert "running train" in err  # after features: the stage that runs now, not the last one
    assert "train (fold x model)" in err and "/4 " in err
    assert "6/6" in err and "done" in err
