"""What BIN adds beyond each task's input (question 4): the per-tick samples on a hand-made window."""

import numpy as np

from stripes.experiments.context_redundancy import around, chroma_mask, task_samples


def test_chroma_mask_folds_octaves_and_tracks():
    roll = np.zeros((2, 256))
    roll[0, 60] = roll[0, 72 + 4] = 1  # C4, E5 in the first track
    roll[1, 128 + 67] = 1  # G4 in the second track
    assert chroma_mask(roll).tolist() == [(1 << 0) | (1 << 4), 1 << 7]


def test_around_spreads_each_note_over_the_span():
    roll = np.zeros((6, 3))
    roll[2, 1] = 1
    assert around(roll, 0)[:, 1].tolist() == [False, False, True, False, False, False]
    assert around(roll, 1)[:, 1].tolist() == [False, True, True, True, False, False]


def test_task_samples_pair_targets_with_context_and_input():
    t = 4
    x = np.zeros((t, 256))
    y = np.zeros((t, 128))
    pos = np.zeros((t, 12))
    pos[:, [0, 4, 7]] = 1  # C major throughout
    x[0, 64] = x[0, 76] = 1  # melody E4 and E5 at tick 0: the highest is the target
    x[1, 67] = 1  # G4 at tick 1
    y[0, 48] = y[0, 55] = 1  # piano C3 + G3 at tick 0
    y[2, 52] = 1  # piano E3 at tick 2 (no melody there)
    s = task_samples(x, y, pos)
    c = (1 << 0) | (1 << 4) | (1 << 7)
    tgt, ctx, inp = s["melody"]
    assert tgt.tolist() == [4, 7] and ctx.tolist() == [c, c]
    assert inp.tolist() == [(1 << 0) | (1 << 7), 0]  # the piano's pitch classes at those ticks
    tgt, ctx, inp = s["harmonization"]
    assert sorted(tgt.tolist()) == [0, 4, 7] and set(ctx.tolist()) == {c}
    assert sorted(inp.tolist()) == [0, 1 << 4, 1 << 4]  # melody E at tick 0, nothing at tick 2
