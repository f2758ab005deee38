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
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "harmonize",
        help="accompany a melody: MIDI/MusicXML in, MIDI + PNG + chords (+ WAV) out",
        description="For each INPUT writes DIR/<stem>.harmonized.mid (tracks melody and accompaniment, "
        "chord names as markers, the input's tempo map and time signatures), DIR/<stem>.png and "
        "DIR/<stem>.chords.txt (the key and the chords used, editable), with --musicxml DIR/<stem>.musicxml "
        "and with --wav DIR/<stem>.wav. Inputs over 20 MiB, and .mxl archives that would expand past 50 MB, "
        "are refused.",
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
        help="a run folder of `stripes train --context bin`, a checkpoint or an inference file "
        "(default: the model shipped with stripes)",
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
        help="probability above which a note is played (default: the model's, chosen on validation)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="draw a variation: extra plausible notes are added at random with this seed",
    )
    p.add_argument("--chord-track", action="store_true", help="add a track 'chords' with block chords")
    p.add_argument("--no-png", action="store_true", help="skip the picture (faster)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stripes._extras import require
    from stripes.apps.harmonize.errors import HarmonizeError
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
