"""How long the text front end takes here: espeak through the bridge's get_phonemes (holds the GIL),
clause by clause through ctypes (lets it go) and in the worker processes (a chapter's chunks, a
sentence's clause groups), and how well a long text's front end overlaps synthesis (feed busy vs
waited) on this machine.

    front_end_time.py [--device cuda]
"""

import argparse
import dataclasses
import statistics

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper, load_model
from engine.bench import load_text, median_seconds
from engine.config import SynthesisOptions
from engine.text import phonemize as espeak
from engine.text import workers


def median_ms(fn, repeats: int = 9) -> float:
    return median_seconds(fn, repeats=repeats) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model = load_model("default", args.device)
    options = SynthesisOptions(seed=1)
    bridge = espeak._bridge()
    espeak.phonemize("warm", model.config.espeak_voice)
    for name in ("medium", "chapter"):
        text = load_text(name)
        paragraphs = text.split("\n\n")
        print(f"{name}: segment() {median_ms(lambda: model.segment(text, options)):.2f} ms, "
              f"bridge {median_ms(lambda: [bridge.get_phonemes(p) for p in paragraphs]):.2f} ms, "
              f"ctypes {median_ms(lambda: [espeak._clauses(p) for p in paragraphs]):.2f} ms")
    voice = model.config.espeak_voice
    workers.start(voice).result(timeout=120)
    text = load_text("medium")
    clean = text.replace("Dr.", "Doctor")
    groups = espeak.clause_groups(clean, workers.worker_count() + 1, workers.GROUP_CHARS)
    for _ in range(3):  # alternated: the machine's drift falls on both
        print(f"medium, {len(groups)} clause groups ({', '.join(str(len(g)) for g in groups)} characters) here and in the workers: "
              f"{median_ms(lambda: workers.phonemize_spread(clean, voice), 300):.3f} ms, whole here {median_ms(lambda: espeak.phonemize(clean, voice), 300):.3f} ms, "
              f"segment() {median_ms(lambda: model.segment(text, options), 300):.3f} ms")
    text = load_text("chapter")
    print(f"chapter in {workers.worker_count()} worker processes: segment() {median_ms(lambda: model.segment(text, options)):.2f} ms")
    if args.device != "cpu":
        cfg = dataclasses.replace(OptimizationConfig.max_speed(cuda=True), enable_compile=False)
        wrapper = OptimizedTTSWrapper(model, AdvancedTTSOptimizer(cfg, args.device))
        text = load_text("chapter")
        segments = model.segment(text, options)
        for label, kw in (("ids given", {"segments": segments}), ("front end in the call", {})):
            runs = []
            for _ in range(4):
                result = wrapper.generate(text, options, **kw)
                runs.append(result.timings)
            t = runs[-1]
            print(f"chapter, {label}: total {statistics.median(r.total_s for r in runs[1:]) * 1000:.1f} ms, "
                  f"front end busy {t.phonemize_s * 1000:.1f} ms, waited {(t.total_s - t.model_s) * 1000:.1f} ms, first audio {t.first_audio_s * 1000:.1f} ms")


if __name__ == "__main__":
    main()
