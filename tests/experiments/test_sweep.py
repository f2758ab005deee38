"""Sweep grid expansion, naming, resumability, failure recording, parallel workers (fake train/evaluate)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import stripes.experiments.sweep as sw
from stripes.errors import ConfigError

HERE = Path(__file__).resolve().parent


def _write(tmp_path: Path, cfg: dict) -> Path:
    p = tmp_path / "sweep.json"
    p.write_text(json.dumps(cfg))
    return p


GRID = {
    "name": "t", "table": "p1-table2", "profile": "smoke", "bars": [16, 64],
    "seeds": {"smoke": [0, 1], "paper": [0, 1, 2, 3, 4]}, "lrs": [None, 0.0005],
    "contexts": ["time", "bin"],
    "methods": [
        {"label": "RoPE(A)", "pe": "rope", "pe_options": {"variant": "A"}},
        {"label": "RoPEPool", "pe": "ropepool", "contexts": ["bin"]},
        {"label": "F-StrIPE:C", "pe": "fstripe", "context": "chord"},
    ],
}


def test_expand_grid_size_names_and_overrides(tmp_path: Path) -> None:
    specs = sw.expand(sw.load_sweep(_write(tmp_path, GRID)))
    # RoPE(A): 2 contexts, RoPEPool: 1, F-StrIPE:C: fixed 1 -> 4 combos x 2 seeds x 2 lrs
    assert len(specs) == 4 * 2 * 2
    names = [s.name for s in specs]
    assert len(set(names)) == len(names)
    # readable axes, then the hash of the full resolved config
    by_prefix = {n.rsplit("_", 1)[0]: n for n in names}
    assert all(len(n.rsplit("_", 1)[1]) == 8 for n in names)
    assert "smoke_rope-variant=A_bin_s1_lr5e-4" in by_prefix
    assert "smoke_rope-variant=A_time_s0_lr1e-3" in by_prefix  # null lr -> the smoke profile's 1e-3
    assert "smoke_fstripe_chord_s0_lr5e-4" in by_prefix
    assert not any("ropepool_time" in n for n in names)
    spec = next(s for s in specs if s.name == by_prefix["smoke_rope-variant=A_bin_s1_lr5e-4"])
    assert spec.name.endswith(sw.config_hash(spec.resolve_config()))
    cfg = spec.resolve_config()
    assert (cfg.pe, cfg.context, cfg.seed, cfg.train.lr) == ("rope", "bin", 1, 0.0005)
    assert cfg.model.pe_options == {"variant": "A"}
    assert cfg.profile == "smoke"


def test_run_names_are_exact_and_distinct() -> None:
    names = {sw.run_name("rope", {}, "bin", 0, lr, "quick") for lr in (2e-4, 2.5e-4, 1e-3, 0.001000001, 1.0)}
    assert len(names) == 5
    assert sw.run_name("fstripe", {"n_f": 32}, ["melody", "chord"], 3, 2.5e-4, "paper") == (
        "paper_fstripe-n_f=32_melody+chord_s3_lr2.5e-4")
    with pytest.raises(ConfigError, match="unsafe"):
        sw.run_name("rope", {"variant": "A/B"}, "bin", 0, 1e-3, "quick")


def test_different_configs_never_share_a_folder(tmp_path: Path) -> None:
    cfg = sw.load_sweep(_write(tmp_path, GRID))
    base = {s.name for s in sw.expand(cfg)}
    # an override that is not one of the named axes still changes the run's identity
    longer = {s.name for s in sw.expand(cfg, extra_overrides={"train.max_len": None})}
    assert not base & longer
    soft = dict(GRID, methods=[{"label": "r", "pe": "ropepool", "attention": "softmax", "contexts": ["bin"]}])
    lin = dict(GRID, methods=[{"label": "r", "pe": "ropepool", "contexts": ["bin"]}])
    assert not ({s.name for s in sw.expand(sw.load_sweep(_write(tmp_path, soft)))}
                & {s.name for s in sw.expand(sw.load_sweep(_write(tmp_path, lin)))})


def test_finished_run_with_another_config_is_refused(tmp_path: Path, fake_runner) -> None:
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "rope"}])
    assert sw.run_sweep(specs, out, log=lambda s: None)["done"]
    run = out / specs[0].name
    saved = json.loads((run / "config.json").read_text())
    saved["train"]["max_len"] = 999  # the folder now holds a run of another config
    (run / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=r"train.max_len: 999 -> 64"):
        sw.run_sweep(specs, out, log=lambda s: None)
    # the same config is reused, not retrained
    saved["train"]["max_len"] = 64
    (run / "config.json").write_text(json.dumps(saved))
    n = len(fake_runner.calls(out))
    assert sw.run_sweep(specs, out, log=lambda s: None)["skipped"] == [specs[0].name]
    assert len(fake_runner.calls(out)) == n


def test_filter_contexts(tmp_path: Path) -> None:
    specs = sw.expand(sw.load_sweep(_write(tmp_path, GRID)))
    kept = sw.filter_contexts(specs, "bin")
    assert kept and all(s.context == "bin" for s in kept)
    assert sw.filter_contexts(specs, None) == specs
    with pytest.raises(ConfigError, match="unknown context"):
        sw.filter_contexts(specs, "bin,nowhere")
    fc = sw.expand(sw.load_sweep(_write(tmp_path, GRID)))
    chord = [s.name for s in fc if s.context == "chord"]
    assert chord and [s.name for s in sw.filter_contexts(fc, "c")] == chord  # an alias selects the same runs


def test_expand_profile_seeds_and_dedup(tmp_path: Path) -> None:
    cfg = sw.load_sweep(_write(tmp_path, GRID))
    assert {s.seed for s in sw.expand(cfg, "paper", validate=False)} == {0, 1, 2, 3, 4}
    assert {s.seed for s in sw.expand(cfg, n_seeds=1)} == {0}
    assert sorted({s.seed for s in sw.expand(cfg, n_seeds=5)}) == [0, 1, 2, 3, 4]  # listed + next integers
    dup = dict(GRID, methods=GRID["methods"] + [{"label": "again", "pe": "ropepool", "contexts": ["bin"]}])
    assert len(sw.expand(sw.load_sweep(_write(tmp_path, dup)))) == 16  # the same config runs once
    extra = sw.expand(cfg, extra_overrides={"train.epochs": 1})
    assert all(s.resolve_config().train.epochs == 1 for s in extra[:2])


@pytest.mark.parametrize(
    "bad",
    [
        {"methods": []},
        {"methods": [{"label": "x"}]},
        {"methods": [{"pe": "rope", "colour": 1}]},
        {"methods": [{"pe": "no_such_pe"}]},
        {"methods": [{"pe": "rope", "context": "nowhere"}]},
        {"seeds": {"paper": [0]}},
        {"grid": 1},
    ],
)
def test_bad_sweep_configs_raise_config_error(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(ConfigError):
        sw.expand(sw.load_sweep(_write(tmp_path, {**GRID, **bad})))


def test_unknown_bundled_sweep_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown sweep"):
        sw.load_sweep("no-such-table")
    p = tmp_path / "x.json"
    p.write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        sw.load_sweep(p)


def _specs(tmp_path: Path, methods: list[dict], seeds: list[int] | None = None) -> list[sw.RunSpec]:
    cfg = {**GRID, "lrs": [None], "seeds": seeds or [0], "contexts": ["time"], "methods": methods}
    return sw.expand(sw.load_sweep(_write(tmp_path, cfg)))


def test_sweep_runs_everything_then_never_reruns_done(tmp_path: Path, fake_runner) -> None:
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "rope"}, {"pe": "ropepool"}], seeds=[0, 1])
    summary = sw.run_sweep(specs, out, log=lambda s: None)
    assert len(summary["done"]) == 4 and not summary["failed"]
    for s in specs:
        run = out / s.name
        assert (run / sw.DONE).is_file()
        assert (run / "metrics_16.json").is_file() and (run / "metrics_64.json").is_file()
        assert json.loads((run / "config.json").read_text())["pe"] == s.pe
        assert sw.read_status(run)["state"] == "done"
    n_calls = len(fake_runner.calls(out))
    assert n_calls == 4 * 3  # one train + two evaluations each
    again = sw.run_sweep(specs, out, log=lambda s: None)
    assert sorted(again["skipped"]) == sorted(s.name for s in specs) and not again["done"]
    assert len(fake_runner.calls(out)) == n_calls
    status = json.loads((out / "sweep_status.json").read_text())
    assert set(status["runs"].values()) == {"done"}


def test_crash_in_training_is_recorded_then_resumed(tmp_path: Path, fake_runner) -> None:
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "spe"}, {"pe": "rope"}])
    first = sw.run_sweep(specs, out, log=lambda s: None)
    spe = next(s.name for s in specs if s.pe == "spe")
    assert first["failed"] == [spe] and len(first["done"]) == 1  # the sweep went on after the failure
    st = sw.read_status(out / spe)
    assert st["state"] == "failed" and st["failed_during"] == "training"
    assert "simulated crash" in st["error"] and st["attempts"] == 1
    assert not (out / spe / sw.DONE).exists()
    second = sw.run_sweep(specs, out, log=lambda s: None)
    assert second["done"] == [spe] and len(second["skipped"]) == 1
    trains = [c for c in fake_runner.calls(out) if c["run"] == spe and c["what"] == "train"]
    assert [c["resume"] for c in trains] == [False, True]
    assert sw.read_status(out / spe)["attempts"] == 2


def test_killed_run_is_resumed_and_finished_evaluations_kept(tmp_path: Path, fake_runner) -> None:
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "nope"}])
    name = specs[0].name
    first = sw.run_sweep(specs, out, log=lambda s: None)  # 64-bar evaluation crashes once
    assert first["failed"] == [name]
    st = sw.read_status(out / name)
    assert st["failed_during"] == "evaluating" and st["trained"] and st["evaluated"] == [16]
    sw.run_sweep(specs, out, log=lambda s: None)
    calls = [(c["what"], c.get("bars")) for c in fake_runner.calls(out)]
    # trained once, 16 bars evaluated once, 64 bars retried
    assert calls == [("train", None), ("evaluate", 16), ("evaluate", 64), ("evaluate", 64)]
    assert (out / name / sw.DONE).exists()

    # a hard kill (no exception handler ran): status says "training", a checkpoint exists, no DONE
    specs2 = _specs(tmp_path, [{"pe": "rope"}])
    run = sw.prepare_run(specs2[0], out)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_text("partial")
    import stripes.experiments.run as run_mod

    run_mod._set_status(run, state="training", attempts=1)
    sw.run_sweep(specs2, out, log=lambda s: None)
    trains = [c for c in fake_runner.calls(out) if c["run"] == run.name]
    assert trains[0] == {"run": run.name, "what": "train", "resume": True}
    assert (run / sw.DONE).exists()


def test_permanent_failure_is_recorded_each_time(tmp_path: Path, fake_runner) -> None:
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "fstripe_sff"}, {"pe": "ropepool"}])
    for attempt in (1, 2):
        summary = sw.run_sweep(specs, out, log=lambda s: None)
        bad = next(s.name for s in specs if s.pe == "fstripe_sff")
        assert summary["failed"] == [bad]
        st = sw.read_status(out / bad)
        assert st["error"] == "ValueError: SFF exploded" and st["attempts"] == attempt
        assert "Traceback" in st["traceback"]
    status = json.loads((out / "sweep_status.json").read_text())
    assert status["runs"][bad] == "failed"


def test_parallel_jobs_run_in_subprocesses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "worker.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import _fakes, stripes.experiments.run as sw\n"
        "sw._train, sw._evaluate = _fakes.fake_train, _fakes.fake_evaluate\n"
        "sys.exit(sw.main(sys.argv[1:]))\n"
    )
    import stripes.experiments.run as run_mod

    monkeypatch.setattr(run_mod, "worker_command", lambda run, d, c: [sys.executable, str(script), str(run)])
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "rope"}, {"pe": "ropepool"}, {"pe": "fstripe_sff"}])
    summary = sw.run_sweep(specs, out, jobs=3, log=lambda s: None)
    assert len(summary["done"]) == 2 and len(summary["failed"]) == 1
    for s in specs:
        assert (out / s.name / sw.DONE).exists() == (s.pe != "fstripe_sff")
    assert "SFF exploded" in sw.read_status(out / summary["failed"][0])["error"]


def test_worker_that_dies_is_marked_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    die = [sys.executable, "-c", "import os; os._exit(9)"]
    import stripes.experiments.run as run_mod

    monkeypatch.setattr(run_mod, "worker_command", lambda run, d, c: die)
    out = tmp_path / "runs"
    specs = _specs(tmp_path, [{"pe": "rope"}, {"pe": "ropepool"}])
    summary = sw.run_sweep(specs, out, jobs=2, log=lambda s: None)
    assert sorted(summary["failed"]) == sorted(s.name for s in specs)
    assert "exited with code 9" in sw.read_status(out / specs[0].name)["error"]


def test_worker_command_passes_data_options(tmp_path: Path) -> None:
    cmd = sw.worker_command(tmp_path / "r", "/data", None)
    assert cmd[1:4] == ["-m", "stripes.experiments.run", str(tmp_path / "r")]
    assert cmd[-2:] == ["--data-root", "/data"] and "--cache-dir" not in cmd


def test_execute_run_with_broken_spec_records_failure(tmp_path: Path, fake_runner) -> None:
    run = tmp_path / "broken"
    run.mkdir()
    (run / sw.SPEC).write_text(json.dumps({"name": "broken", "unexpected": 1}))
    assert sw.execute_run(run) == "failed"
    st = sw.read_status(run)
    assert st["state"] == "failed" and "not a sweep run spec" in st["error"]
    assert fake_runner.calls(tmp_path) == []  # nothing was trained


def test_filter_methods_and_seed_major_order(tmp_path: Path) -> None:
    specs = sw.expand(sw.load_sweep(_write(tmp_path, GRID)))
    assert [s.seed for s in specs] == sorted(s.seed for s in specs)  # whole seeds first
    kept = sw.filter_methods(specs, "RoPE(A),ropepool")
    assert kept and {s.pe for s in kept} == {"rope", "ropepool"}
    with pytest.raises(ConfigError, match="no run of method"):
        sw.filter_methods(specs, "NoSuch")
