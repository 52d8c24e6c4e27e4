"""``benchmarks.pipeline``'s per-stage figures: a stage is the sum of its laps."""

from __future__ import annotations

from benchmarks.pipeline import add_lap


def test_the_laps_of_a_stages_tasks_add_up_into_the_stage():
    # the pipeline reports each training task ("train:tasks") and then the stage ("train");
    # keeping only the last lap reported a 27 s training as 0.68 s
    stages: dict[str, dict] = {}
    laps = [("features", 3.6, 4.8, 0.0, 1244.6)] + \
        [("train:tasks", 1.1, 0.2, 2.0, 1800.0 + k) for k in range(23)] + \
        [("train", 0.7, 0.3, 0.0, 2112.8), ("report", 2.4, 2.5, 0.0, 1936.3)]
    for lap in laps:
        add_lap(stages, *lap)
    assert list(stages) == ["features", "train", "report"]
    assert stages["train"] == {"wall_s": round(23 * 1.1 + 0.7, 2),
                               "cpu_s": round(23 * 0.2 + 0.3, 2),
                               "workers_cpu_s": 46.0, "peak_mb": 2112.8}
    assert stages["features"]["wall_s"] == 3.6 and stages["report"]["cpu_s"] == 2.5
