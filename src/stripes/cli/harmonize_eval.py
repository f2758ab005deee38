"""``stripes harmonize-eval chords``: the chord estimator against Yeh et al. (2021)'s metrics on POP909."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "harmonize-eval", help="judge the harmonizer's chord estimation on POP909",
        description="Evaluate parts of `stripes harmonize` on POP909 songs.")
    sub = parser.add_subparsers(dest="harmonize_eval_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser(
        "chords", help="CHE, CC, CTD, CTnCTR, PCS, MCTD (Yeh et al. 2021) + accuracy of the estimated chords",
        description="Score the shipped chord estimator (melody only), the human chords and the human chords "
        "shifted by a semitone with the six metrics of Yeh et al. (2021), and the estimator's per-beat "
        "accuracy on beats with and without a melody note. Writes OUT/chord_eval.json and OUT/chord_eval.md.")
    p.add_argument("--data-root", help="raw data (default: $STRIPES_DATA or ~/.cache/stripes/data)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test",
                   help="structurePE split (default: test)")
    p.add_argument("--limit", type=int, help="only the first N songs of the split")
    p.add_argument("--out", default="results/chord-eval", help="output folder (default: results/chord-eval)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_chords)


def _chords(args: argparse.Namespace) -> int:
    from stripes._extras import require
    from stripes.apps.harmonize.chord_eval import markdown, run

    require("symusic")
    require("mir_eval", "toolkit")
    command = "stripes harmonize-eval chords" + (f" --split {args.split}" if args.split != "test" else "") + (
        f" --limit {args.limit}" if args.limit else "")
    result = run(args.data_root, args.out, split=args.split, limit=args.limit, command=command,
                 progress=not args.quiet)
    print(markdown(result), end="")
    print(f"wrote {args.out}/chord_eval.json and {args.out}/chord_eval.md ({result['seconds']} s)")
    return 0
