"""The autoregressive accompaniment model: its score, the sampler, streaming = teacher forcing, training."""

from __future__ import annotations

import math

import pytest
import torch

from stripes.errors import ConfigError
from stripes.models.accompanist import K_MAX, Accompanist, shift_right
from stripes.models.sampling import SamplerSettings, _nucleus, draw_tick, sample


def _model(attention="linear", pe="ropepool", c=12):
    torch.manual_seed(0)
    return Accompanist(pe=pe, context_dim=c, d_model=32, n_heads=4, d_ff=32, attention=attention).eval()


def _melody(b=2, t=24, c=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(b, t, 256, generator=g) < 0.05).float()
    return x, (torch.rand(b, t, c, generator=g) < 0.3).float()


def test_score_known_values_with_uniform_logits():
    """Zero logits: count = log 9, each onset log 128, each held-or-released pitch log 2."""
    b, t = 1, 3
    logits = {"onset": torch.zeros(b, t, 128), "count": torch.zeros(b, t, K_MAX + 1),
              "hold": torch.zeros(b, t, 128)}
    onset = torch.zeros(b, t, 128)
    frame = torch.zeros(b, t, 128)
    onset[0, 0, [60, 64]] = 1
    frame[0, 0, [60, 64]] = 1
    frame[0, 1, 60] = 1  # 60 held, 64 released at t = 1
    s = Accompanist.score(logits, onset, frame, shift_right(frame))
    torch.testing.assert_close(s["count"], torch.full((1, 3), math.log(K_MAX + 1)))
    torch.testing.assert_close(s["onset"], torch.tensor([[2 * math.log(128), 0.0, 0.0]]))
    torch.testing.assert_close(s["hold"], torch.tensor([[0.0, 2 * math.log(2), math.log(2)]]))


@pytest.mark.parametrize(
    "attention,pe,c",
    [("linear", "ropepool", 12), ("linear", "rope", 12), ("softmax", "ropepool", 12), ("linear", "nope", 1)],
)
def test_streaming_generation_likelihood_equals_teacher_forced(attention, pe, c):
    model = _model(attention, pe, c)
    x, pos = _melody(c=c)
    out = sample(model, x, pos, seed=1, settings=SamplerSettings(temperature=1.2, top_p=0.95))
    on, fr = out["onset"].float(), out["frame"].float()
    with torch.no_grad():
        scores = model.score(model.teacher_forced(x, pos, on, fr), on, fr, shift_right(fr))
    torch.testing.assert_close(out["nll"], scores["nll"].double().sum(1), rtol=1e-5, atol=1e-4)
    assert on.sum() > 0


def test_sampler_is_reproducible_by_seed_and_candidates_differ():
    model = _model()
    x, pos = _melody()
    a = sample(model, x, pos, seed=7)
    b = sample(model, x, pos, seed=7)
    c = sample(model, x, pos, seed=8)
    assert torch.equal(a["onset"], b["onset"]) and torch.equal(a["frame"], b["frame"])
    assert not torch.equal(a["onset"], c["onset"])


def test_notes_are_well_formed():
    model = _model()
    x, pos = _melody(t=40)
    out = sample(model, x, pos, seed=2)
    on, fr = out["onset"], out["frame"]
    assert bool((fr | ~on).all())  # every onset sounds
    held = fr & ~on
    assert bool((~held | shift_right(fr.float()).bool()).all())  # a held pitch was sounding before
    assert int(on.sum(-1).max()) <= K_MAX


def test_kept_ticks_stay_note_for_note_and_the_rest_is_resampled():
    model = _model()
    x, pos = _melody(t=32)
    first = sample(model, x, pos, seed=3)
    keep = torch.ones(2, 32, dtype=torch.bool)
    keep[:, 8:16] = False  # regenerate the second quarter only
    again = sample(model, x, pos, seed=4, onset=first["onset"], frame=first["frame"], keep=keep)
    assert torch.equal(again["onset"][keep], first["onset"][keep])
    assert torch.equal(again["frame"][keep], first["frame"][keep])
    assert not torch.equal(again["frame"][:, 8:16], first["frame"][:, 8:16])
    on, fr = again["onset"].float(), again["frame"].float()
    with torch.no_grad():
        scores = model.score(model.teacher_forced(x, pos, on, fr), on, fr, shift_right(fr))
    torch.testing.assert_close(again["nll"], scores["nll"].double().sum(1), rtol=1e-5, atol=1e-4)


def test_nucleus_and_draw():
    z = torch.tensor([[5.0, 4.0, 0.0, -1.0]])
    assert torch.isinf(_nucleus(z, 0.5)).tolist() == [[False, True, True, True]]
    assert not torch.isinf(_nucleus(z, 1.0)).any()
    logits = {"count": torch.tensor([[-50.0, -50.0, 50.0] + [-50.0] * (K_MAX - 2)]),
              "onset": torch.full((1, 128), -50.0), "hold": torch.full((1, 128), 50.0)}
    logits["onset"][0, [60, 64]] = 10.0
    prev = torch.zeros(1, 128, dtype=torch.bool)
    prev[0, 48] = True
    on, fr = draw_tick(logits, prev, SamplerSettings(), torch.Generator().manual_seed(0))
    assert on.nonzero()[:, 1].tolist() == [60, 64]  # two onsets, the two likely pitches, jointly distinct
    assert fr.nonzero()[:, 1].tolist() == [48, 60, 64]  # 48 held (hold logit +50)
    with pytest.raises(ConfigError):
        SamplerSettings(temperature=0.0)


def test_training_the_accompanist_with_the_loop(tmp_path):
    from stripes.config import load_run_config
    from stripes.train.loop import train

    cfg = load_run_config("smoke", overrides={"task": "accompany", "data.source": "synthetic"})
    run = train(cfg, tmp_path / "run", progress=False)
    log = (run / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,lr,train_loss,val_nll")
    rows = [line.split(",") for line in log[1:]]
    assert all(math.isfinite(float(r[4])) for r in rows)
    assert float(rows[-1][3]) < float(rows[0][3])  # the training loss goes down
    assert "task" not in load_run_config("smoke").to_dict()  # identity of older runs unchanged
