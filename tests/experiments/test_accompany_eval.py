"""``stripes evaluate`` on an accompaniment run: settings chosen on validation, samples scored vs human."""

from __future__ import annotations

import json
import math
from pathlib import Path

from stripes.config import load_run_config


def test_evaluate_an_accompanist_run_end_to_end(tmp_path: Path) -> None:
    from stripes.experiments.accompany import SETTINGS_GRID, evaluate_accompanist, format_accompany
    from stripes.train.loop import train

    over = {"task": "accompany", "train.epochs": 1, "data.source": "synthetic", "data.bars": 2,
            "data.synthetic_windows": 16}
    run = train(load_run_config("smoke", overrides=over), tmp_path / "run", progress=False)
    res = evaluate_accompanist(run, 2, max_windows=6, val_windows=6, batch_size=6)
    saved = json.loads((run / "metrics_accompany_2.json").read_text())
    assert saved["n_windows"] == 6 and len(saved["settings_grid"]) == len(SETTINGS_GRID)
    best = max(saved["settings_grid"], key=lambda r: r["val_mean_oa"])
    chosen = saved["settings"]
    assert (chosen["temperature"], chosen["top_p"]) == (best["temperature"], best["top_p"])
    rows = res["texture"]["rows"]
    assert set(rows) == {"human", "sampled"} and 0.0 <= rows["sampled"]["mean_oa"] <= 1.0
    assert math.isfinite(res["test_nll"]) and {"cs", "ssmd", "gs", "ndd", "onset_f1"} <= set(res["metrics"])
    assert "chosen on validation" in format_accompany(res)
