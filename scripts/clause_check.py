"""Check that phonemizing a text's clause groups one by one gives the clauses of one espeak call
on the whole text (what `text.workers.phonemize_spread` relies on), over a corpus of paragraphs:
the benchmark texts, the docstrings of this Python's standard library and any text files given.
Every cut `clause_cuts` allows is made.

    python3 scripts/clause_check.py [--paragraphs 12000] [FILE ...]
"""

from __future__ import annotations

import argparse
import ast
import glob
import random
import re
import sysconfig
from pathlib import Path

from engine.text import normalize_text
from engine.text.abbreviations import expand_paragraphs
from engine.text.phonemize import clause_cuts, clauses, joins_cleanly, phonemize, sentences_of, split_at


def docstrings(limit_files: int = 3000) -> list[str]:
    found = []
    for path in sorted(glob.glob(str(Path(sysconfig.get_paths()["stdlib"]) / "**" / "*.py"), recursive=True))[:limit_files]:
        try:
            tree = ast.parse(Path(path).read_text(errors="ignore"))
        except (SyntaxError, ValueError):
            continue
        found += [doc for node in ast.walk(tree) if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and (doc := ast.get_docstring(node))]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="*")
    parser.add_argument("--paragraphs", type=int, default=12000)
    parser.add_argument("--voice", default="en-us")
    args = parser.parse_args()
    texts = [p.read_text() for p in sorted(Path("engine/benchdata").glob("*.txt"))] + docstrings()
    texts += [Path(f).read_text(errors="ignore") for f in args.files]
    paragraphs = [" ".join(p.split()) for t in texts for p in re.split(r"\n\s*\n", t)]
    paragraphs = [p for p in paragraphs if 20 < len(p) < 2000]
    random.Random(0).shuffle(paragraphs)
    checked = differ = unclean = 0
    for paragraph in expand_paragraphs([normalize_text(p) for p in paragraphs[: args.paragraphs]]):
        groups = split_at(paragraph, clause_cuts(paragraph))
        if len(groups) < 2:
            continue
        checked += 1
        parts = [clauses(group, args.voice) for group in groups]
        if not joins_cleanly(groups, parts):
            unclean += 1
        elif sentences_of([c for part in parts for c in part]) != phonemize(paragraph, args.voice):
            differ += 1
            print("differs:", paragraph[:160])
    print(f"{checked} paragraphs with cuts: {differ} differ, {unclean} fall back (a cut espeak read otherwise)")


if __name__ == "__main__":
    main()
