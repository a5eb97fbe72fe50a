"""Phonemize the parity sentences and the benchmark texts once, for machines without espeak.

The GPU machine has no piper-tts (espeak-ng); tests and `tts-turbo bench --ids-file` read these ids
instead, together with the front-end time measured here.

    python scripts/export_ids.py tests/data/phoneme_ids.json
"""

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.bench import TEXT_NAMES, load_text, parity_sentences  # noqa: E402
from engine.config import SynthesisOptions  # noqa: E402
from engine.registry import load_model  # noqa: E402

REPEATS = 21
"""The front-end time is the median of this many calls (the chapter: 5)."""


def main(out: str) -> None:
    model = load_model("default", "cpu")
    options = SynthesisOptions()
    texts = {name: load_text(name) for name in TEXT_NAMES}
    texts.update({f"parity_{i}": s for i, s in enumerate(parity_sentences())})
    table: dict = {"_phonemize_s": {}}
    for name, text in texts.items():
        segments = model.segment(text, options)
        times = []
        for _ in range(REPEATS if len(text) < 5000 else 5):
            start = time.perf_counter()
            model.segment(text, options)
            times.append(time.perf_counter() - start)
        table["_phonemize_s"][name] = statistics.median(times)
        table[name] = [dataclasses.asdict(s) for s in segments]
    Path(out).write_text(json.dumps(table))
    print(f"wrote {len(texts)} texts to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/phoneme_ids.json")
