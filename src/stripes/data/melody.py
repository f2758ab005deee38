"""The inverse task of question 4: melody generation from the accompaniment and the chords.

:class:`MelodyDataset` wraps a harmonization dataset (:class:`stripes.data.HarmonizationDataset` or the
synthetic stand-in, any object with the same item layout) and swaps the roles of the tracks on the very same
windows: input ``x`` = the PIANO track's roll (T, 128), target ``y`` = the MELODY track's roll (T, 128),
positions ``pos``, ``song_id`` and ``start`` unchanged. Nothing is prepared or stored twice: the items are
cut from the base dataset's items, so songs, splits, window starts and lengths and the contexts of every tick
are those of melody harmonization by construction, and the piano input of a window is the target of the
same window in the original task and vice versa.

The bridge track is left out of the input: it is neither accompaniment nor chords but a second melodic line
(interludes and counter-melodies), and it sounds mostly where the vocal melody rests, which would tell the
model where the melody is not. On the first 200 training songs it sounds during 27 % of the melody's ticks,
shares the melody's pitch on 5.6 % of them, and plays on as many ticks as 33 % of the melody's while the
melody is silent. The melody target is the MELODY roll as prepared (not skylined): on the same songs 1.0 %
of its sounding ticks hold more than one note, so "input of one task = target of the other" holds exactly.
The chords reach the model only through the positions (BIN: the chroma of the chord at each tick; KEY, REP,
TIME carry less or none), as in the original task.
"""

from __future__ import annotations

from typing import Any

import torch

from stripes.errors import DataError

N_PITCHES = 128
# (input width, output width) of the parallel model per task; rows of the prepared roll: 0..127 melody,
# 128..255 bridge, 256..383 piano (stripes.data.prepare)
TASK_WIDTHS = {"harmonize": (2 * N_PITCHES, N_PITCHES), "melody": (N_PITCHES, N_PITCHES)}


class MelodyDataset(torch.utils.data.Dataset):
    """Windows of ``base`` with the piano as input and the melody as target.

    Parameters
    ----------
    base : Dataset
        A harmonization dataset whose items hold ``x`` (T, 256) melody + bridge, ``y`` (T, 128) piano,
        ``pos`` (T, C), ``song_id`` and ``start``. Every other attribute (``window_len``, ``context_dim``,
        ``manifest_hash``, ``windows``, ``labels``, ...) is the base dataset's.

    Notes
    -----
    Item: ``x`` float32 (T, 128) piano, ``y`` float32 (T, 128) melody, ``pos`` float32 (T, C) as the base's,
    ``song_id`` int, ``start`` int.
    """

    task = "melody"

    def __init__(self, base: Any) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getattr__(self, name: str) -> Any:
        if name == "base":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.base, name)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = dict(self.base[index])
        x, y = torch.as_tensor(item["x"]), torch.as_tensor(item["y"])
        if x.shape[-1] != 2 * N_PITCHES or y.shape[-1] != N_PITCHES:
            raise DataError(f"base items must hold x (T, 256) and y (T, 128), got {tuple(x.shape)}, "
                             f"{tuple(y.shape)}")
        item["x"], item["y"] = y, x[:, :N_PITCHES].contiguous()
        return item
