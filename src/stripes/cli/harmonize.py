"""``stripes harmonize``: accompany your own melody (MIDI or MusicXML lead sheet)."""

from __future__ import annotations

import argparse
import sys

EPILOG = """examples:
  stripes harmonize song.mid --out out/
  stripes harmonize song.mid --out out/ --chords "C | G | Am F | Fmaj7/A" --wav
  stripes harmonize song.mid --out out/ --chords out/song.chords.txt      (after editing the chords)
  stripes harmonize a.mid b.mid c.musicxml --out out/ --checkpoint runs/my_run
  stripes harmonize song.mid --out out/ --key "A minor" --musicxml   (key given; score for notation)
  stripes harmonize band.mid --out out/ --melody-track 2                (the ranking is printed on stderr)
  stripes harmonize --example --out out/ --wav           (the melody that ships with stripes)
  stripes harmonize song.mid --out out/ --candidates 4 --seed 10      (4 accompaniments, seeds 10..13)
  stripes harmonize out/song.harmonized.mid --out out/ --regenerate 5-8 --seed 3
                                                          (bars 5-8 drawn again -> out/song.regenerated.mid)
  stripes harmonize song.mid --out out/ --mode parallel --threshold 0.4   (the thresholded model)

modes (--mode): generative samples the accompaniment tick by tick with an autoregressive model (notes
with onsets; --seed, --candidates, --temperature, --top-p, --regenerate); parallel thresholds the
probabilities of one forward pass (--threshold). auto (default) is generative when a generative model is
available: --checkpoint of a task=accompany run (`stripes train --profile accompanist`), or without
--checkpoint the shipped stripes/apps/harmonize/model/accompanist.pt; else parallel.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "harmonize",
        help="accompany a melody: MIDI/MusicXML in, MIDI + PNG + chords (+ WAV) out",
        description="For each INPUT writes DIR/<stem>.harmonized.mid (tracks melody and accompaniment, "
        "chord names as markers, the input's tempo map and time signatures), DIR/<stem>.png and "
        "DIR/<stem>.chords.txt (the key and the chords used, editable), with --musicxml DIR/<stem>.musicxml "
        "and with --wav DIR/<stem>.wav; in generative mode also DIR/<stem>.harmonize.json (model, mode, "
        "seeds, temperature, top_p, key, chords) and, with --candidates N, "
        "DIR/<stem>.candidate2.harmonized.mid ... (.candidate2.png, .wav, .musicxml). Inputs over 20 MiB, "
        "and .mxl archives that would expand past 50 MB, are refused.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="melody files (.mid, .musicxml, .mxl, .xml)")
    p.add_argument("--example", action="store_true",
                   help="harmonize the melody that ships with stripes (morning_walk.mid, with its chords)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--chords",
        metavar="CHORDS",
        help='chords: "C | G | Am F | Fmaj7/A" (one bar per |), a .txt file in that format, or a '
        "MIDI file whose sounding pitch classes are the chords; default: a chord track of the file, "
        "the lead sheet's symbols, else estimated from the melody",
    )
    p.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a run folder of `stripes train --context bin` (parallel) or `stripes train --profile "
        "accompanist` (generative), a checkpoint or an inference file (default: the model shipped with "
        "stripes, generative when accompanist.pt is shipped)",
    )
    p.add_argument(
        "--mode",
        choices=("auto", "generative", "parallel"),
        default="auto",
        help="generative: sample with an autoregressive model; parallel: threshold one forward pass; "
        "auto (default): generative when a generative model is available (see below), else parallel",
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=1,
        metavar="N",
        help="generative: N different accompaniments, seeds SEED, SEED+1, ...: DIR/<stem>.harmonized.mid, "
        "DIR/<stem>.candidate2.harmonized.mid, ... (seeds and settings in DIR/<stem>.harmonize.json)",
    )
    p.add_argument(
        "--regenerate",
        metavar="BARS",
        help="generative: INPUT is a file stripes harmonized (tracks melody, accompaniment); sample BARS "
        "again (1-based: 5-8, 3, 2-4,7; bar 1 = the file's first bar) and keep the accompaniment outside "
        "them note for note -> DIR/<base>.regenerated.mid (<base>: the input's stem without .harmonized / "
        ".regenerated; the .harmonized.mid is never overwritten) and DIR/<base>.regenerate.json; chords: "
        "--chords, else the file's chord markers",
    )
    p.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="generative: sampling temperature (> 0; default: stored with the model, else 1.0)",
    )
    p.add_argument(
        "--top-p",
        type=float,
        metavar="P",
        help="generative: nucleus mass of the pitch draw, in (0, 1] (default: stored with the model, "
        "else 0.95)",
    )
    p.add_argument("--wav", action="store_true", help="also render DIR/<stem>.wav (44.1 kHz, offline)")
    p.add_argument(
        "--synth",
        choices=("auto", "soundfont", "builtin"),
        default="auto",
        help="audio renderer (auto: a GM SoundFont when stripes[audio] is installed)",
    )
    p.add_argument(
        "--melody-track",
        metavar="N|NAME",
        help="the melody track: number (1 = first track) or name (default: the best-scoring track by "
        "monophony, register, density, name and GM program; the ranking is printed on stderr)",
    )
    p.add_argument(
        "--key",
        metavar="KEY",
        help='the key, e.g. "A minor", "Eb major", "F#m" (default: estimated from the melody); used by the '
        "chord estimation, written to the chords file and, when the input has none, as the MIDI key "
        "signature",
    )
    p.add_argument(
        "--musicxml",
        action="store_true",
        help="also write DIR/<stem>.musicxml: melody with chord symbols and the piano on a grand staff "
        "(needs music21: pip install 'stripes[leadsheet]')",
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="X",
        help="parallel: probability above which a note is played (default: the model's, chosen on "
        "validation)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="generative: the sampler's seed (default 0; the same seed gives the same file); parallel: "
        "draw a variation, extra plausible notes added at random with this seed",
    )
    p.add_argument("--chord-track", action="store_true", help="add a track 'chords' with block chords")
    p.add_argument("--no-png", action="store_true", help="skip the picture (faster)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stripes._extras import require
    from stripes.apps.harmonize.errors import HarmonizeError
    from stripes.apps.harmonize.generative import MAX_CANDIDATES, parse_bars
    from stripes.apps.harmonize.pipeline import Options, harmonize_files, key_from_option

    inputs = list(args.inputs)
    if args.example:
        examples = Path(__file__).resolve().parents[1] / "apps" / "harmonize" / "examples"
        inputs.append(str(examples / "morning_walk.mid"))
        if args.chords is None:
            args.chords = str(examples / "morning_walk.chords.txt")
    if not inputs:
        raise HarmonizeError("give at least one INPUT melody file (or --example)")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise HarmonizeError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if not 1 <= args.candidates <= MAX_CANDIDATES:
        raise HarmonizeError(f"--candidates must be between 1 and {MAX_CANDIDATES}, got {args.candidates}")
    if args.temperature is not None and not args.temperature > 0:
        raise HarmonizeError(f"--temperature must be > 0, got {args.temperature}")
    if args.top_p is not None and not 0.0 < args.top_p <= 1.0:
        raise HarmonizeError(f"--top-p must be in (0, 1], got {args.top_p}")
    if args.regenerate is not None:
        parse_bars(args.regenerate)  # a bad BARS string is one error line, not one per input
        if args.example:
            raise HarmonizeError("--regenerate takes a file stripes harmonized, not --example")
    key_from_option(args.key)  # a bad --key is one error line, not one per input
    opts = Options(
        out_dir=Path(args.out),
        chords=args.chords,
        checkpoint=args.checkpoint,
        wav=args.wav,
        melody_track=args.melody_track,
        threshold=args.threshold,
        seed=args.seed,
        chord_track=args.chord_track,
        synth=args.synth,
        png=not args.no_png,
        key=args.key,
        musicxml=args.musicxml,
        mode=args.mode,
        candidates=args.candidates,
        regenerate=args.regenerate,
        temperature=args.temperature,
        top_p=args.top_p,
    )
    require("symusic")  # a missing toolkit is one line from stripes.cli.main, not one error per input
    if not args.no_png:
        require("matplotlib")
    if args.musicxml:
        require("music21")
    try:
        results = harmonize_files(inputs, opts, debug=args.debug)
    except Exception:
        if args.debug:
            import traceback

            traceback.print_exc()
            return 2
        raise
    failed = [r for r in results if r.error]
    if len(results) > 1:
        print(
            f"harmonized {len(results) - len(failed)} of {len(results)} inputs into {args.out}",
            file=sys.stderr,
        )
    return 2 if failed else 0
