"""`stripes harmonize-eval chords`: the runner's tables on made-up records, and on real POP909 songs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from stripes.apps.harmonize import chord_eval as ce

pytest.importorskip("mir_eval")


def test_state_labels() -> None:
    assert ce.state_label(0) == "C:maj"
    assert ce.state_label(1) == "C:min"
    assert ce.state_label(2 * 9 + 1) == "A:min"
    assert ce.state_label(2 * 3) == "Eb:maj"


def _record(sid: int, human: float, control: float) -> dict:
    rows = {}
    for name in ce.ROWS:
        v = control if name == "human +1 semitone" else human
        rows[name] = {"CHE": 1.0, "CC": 4.0, "CTD": 0.5, "CTnCTR": v, "PCS": v, "MCTD": 2 - v}
    return {"sid": sid, "rows": rows, "half_bars": 8,
            "melody": [True, True, False, False], "ref": ["C:maj", "A:min7", "G:maj", "N"],
            "est": ["C:maj", "C:maj", "C:maj", "C:maj"], "ref_state": [0, 19, 14, -1],
            "est_state": [0, 0, 0, 0]}


def test_summary_accuracy_control_and_table_on_made_up_records() -> None:
    songs = [_record(1, 0.8, 0.1), _record(2, 0.6, 0.3)]
    s = ce.summarize(songs)
    assert s["human"]["CTnCTR"]["mean"] == pytest.approx(0.7)
    assert s["human"]["CTnCTR"]["sd"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert s["human +1 semitone"]["MCTD"]["mean"] == pytest.approx(1.8) and s["human"]["CC"]["n"] == 2
    assert ce.control_check(s) == {"CTnCTR": True, "PCS": True, "MCTD": True}
    flipped = ce.summarize([_record(1, 0.1, 0.8)])
    assert ce.control_check(flipped) == {"CTnCTR": False, "PCS": False, "MCTD": False}

    acc = ce.accuracy(songs)
    # beats with melody: C:maj right, A:min7 wrong; without: G wrong, N left out
    assert acc["with_melody"]["root"] == 0.5 and acc["with_melody"]["majmin"] == 0.5
    assert acc["without_melody"]["root"] == 0.0 and acc["without_melody"]["root_n"] == 2
    assert acc["all"]["beat_majmin"] == pytest.approx(1 / 3) and acc["all"]["beat_n"] == 6
    assert acc["all"]["beats"] == 8

    result = {"split": "test", "songs": 2, "command": "stripes harmonize-eval chords", "summary": s,
              "accuracy": acc, "control_below_human": ce.control_check(s)}
    md = ce.markdown(result)
    assert "| human +1 semitone | 1.000 ± 0.000 | 4.0 ± 0.0 |" in md
    assert "| beats with a melody note | 4 | 50.0 % (4) | 50.0 % (4) | 50.0 % |" in md
    assert "CTnCTR yes, PCS yes, MCTD yes" in md


@pytest.fixture(scope="module")
def real_result(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("chord_eval")
    return ce.run(shared_data, out, split="test", limit=2, progress=False), out


def test_runner_on_two_test_songs(real_result, shared_data) -> None:
    from stripes.apps.harmonize import chordfit
    from stripes.apps.harmonize import estimate as est

    result, out = real_result
    on_disk = json.loads((out / "chord_eval.json").read_text())
    assert on_disk["songs"] == 2 and on_disk["summary"] == json.loads(json.dumps(result["summary"]))
    assert (out / "chord_eval.md").read_text() == ce.markdown(result)
    s = result["summary"]
    # the control: the same progression a semitone off. Chord-only metrics cannot tell, the melody ones must
    for m in ("CHE", "CC", "CTD"):
        assert s["human"][m]["mean"] == pytest.approx(s["human +1 semitone"][m]["mean"])
    assert result["control_below_human"] == {"CTnCTR": True, "PCS": True, "MCTD": True}
    assert s["human"]["CTnCTR"]["mean"] > s["human +1 semitone"]["CTnCTR"]["mean"] + 0.3
    for row in ce.ROWS:
        for m, v in s[row].items():
            assert math.isfinite(v["mean"]) and v["n"] == 2, (row, m)
        assert 0 <= s[row]["CTnCTR"]["mean"] <= 1 and -1 <= s[row]["PCS"]["mean"] <= 1
    assert s["estimated"]["CC"]["mean"] <= 24  # the estimator knows 24 triads

    # the accuracy agrees with chordfit's own scoring of the same songs and model
    songs = chordfit.load_songs(shared_data, splits=("test",), limit=2)["test"]
    ref = chordfit.accuracy(songs, est.default_params())
    a = result["accuracy"]
    assert a["all"]["beat_majmin"] == pytest.approx(ref["majmin"]) and a["all"]["beat_n"] == ref["beats"]
    assert a["all"]["majmin"] == pytest.approx(ref["majmin"])  # mir_eval's majmin = chordfit's rule
    assert a["with_melody"]["beats"] + a["without_melody"]["beats"] == a["all"]["beats"]
    assert a["with_melody"]["beats"] > 0 and a["without_melody"]["beats"] > 0


def test_beat_labels_match_chordfit_reference(shared_data) -> None:
    from stripes.apps.harmonize import chordfit

    sid = chordfit.split_ids(shared_data)["test"][0]
    song = chordfit.load_song(shared_data, sid)
    labels = ce.beat_labels(shared_data, sid)
    assert len(labels) == len(song["ref"])
    assert [chordfit.label_state(lab) for lab in labels] == song["ref"].tolist()


def test_cli_writes_the_table(shared_data, tmp_path, capsys) -> None:
    from stripes.cli import main

    out = tmp_path / "eval"
    rc = main(["harmonize-eval", "chords", "--data-root", str(shared_data), "--limit", "1", "--out", str(out),
               "--quiet"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "| estimated |" in printed.out and printed.err == ""
    assert json.loads((out / "chord_eval.json").read_text())["command"] == (
        "stripes harmonize-eval chords --limit 1")
    assert "| human, per beat |" in (out / "chord_eval.md").read_text()


def test_cli_names_a_missing_split(tmp_path, capsys) -> None:
    from stripes.cli import main

    assert main(["harmonize-eval", "chords", "--data-root", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "split.npz: not found" in capsys.readouterr().err


def test_cli_refuses_a_limit_below_one(tmp_path, capsys) -> None:
    """--limit -1 sliced the split (every song but the last) and --limit 0 read as "no limit" in the
    command line it records; both are refused before any data is read."""
    from stripes.cli import main

    for bad in ("0", "-1"):
        assert main(["harmonize-eval", "chords", "--data-root", str(tmp_path), "--limit", bad,
                     "--out", str(tmp_path / "o")]) == 2
        assert f"--limit must be 1 or more, got {bad}" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
