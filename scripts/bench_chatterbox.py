"""Chatterbox speed benchmark: full-size random weights, a fixed 250 generated tokens (10 s of audio).

For each configuration (eager fp32, then all optimizations) it runs one warm-up call (graph capture,
allocator, cuDNN plans; reported separately) and `--runs` timed calls, synchronising the device
before every timestamp. T3 decodes exactly `--tokens` tokens (EOS ignored, CFG on, batch 2) after a
prompt of 34 conditioning + 82 text + 2 BOS positions; S3Gen renders `--tokens` tokens after a 10 s
(250-token) voice prompt. Prints a table and writes JSON to `--out`.

    python3 scripts/bench_chatterbox.py --out /tmp/chatterbox_bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import OptimizationConfig
from engine.models.base import StageTimes
from engine.models.chatterbox.generate import SamplingParams, embeds_for
from engine.models.chatterbox.random_checkpoint import (
    full_config,
    full_turbo_config,
    random_conds,
    random_model,
    tiny_config,
    tiny_turbo_config,
    tokenizer_json,
)
from engine.models.chatterbox.tokenizer import EnTokenizer
from engine.models.chatterbox.tts import ChatterboxTTS

AUDIO_PER_TOKEN_S = 0.04


class _Optimizer:
    """The optimizer surface ChatterboxTTS uses, for when engine.optimizer cannot be imported."""

    def __init__(self, config, device):
        self.config, self.device, self.fallbacks, self.stats = config, device, [], {}

    def record_fallback(self, feature, reason):
        self.fallbacks.append(f"{feature}: {reason}")

    def set_stat(self, key, value):
        self.stats[key] = value

    def get_voice_embedding(self, audio_path, embedding_fn, model_name):
        return embedding_fn(audio_path)


def make_optimizer(config: OptimizationConfig, device: torch.device):
    try:
        from engine.optimizer import AdvancedTTSOptimizer

        return AdvancedTTSOptimizer(config, device)
    except Exception as exc:  # noqa: BLE001 - the benchmark must run even if the engine-wide optimizer is mid-change
        print(f"note: engine.optimizer unavailable ({exc}); using a minimal optimizer", file=sys.stderr)
        return _Optimizer(config, device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_call(tts: ChatterboxTTS, conds, text_ids, speech_tokens, n_tokens: int) -> dict:
    """T3 forced to n_tokens, then S3Gen + HiFT on a fixed token list; seconds per stage."""
    device = tts.device
    params = SamplingParams(max_new_tokens=n_tokens, cfg_weight=0.0 if tts.turbo else 0.5,
                            top_p=0.95 if tts.turbo else 1.0, min_p=0.0 if tts.turbo else 0.05)
    times = StageTimes()
    with torch.inference_mode():
        sync(device)
        t0 = time.perf_counter()
        embeds = embeds_for(tts.model.t3, conds, text_ids, params.exaggeration, 1 if tts.turbo else 2, device)
        toks = tts.decoder.generate(embeds, params, stop_on_eos=False)
        sync(device)
        t1 = time.perf_counter()
        mel = tts.s3.mel(conds, speech_tokens, times=times.add)
        wav = tts.s3.wav(mel, times=times.add)
        sync(device)
        t2 = time.perf_counter()
    assert len(toks) == n_tokens, (len(toks), n_tokens)
    assert wav.shape[0] == 960 * len(speech_tokens)
    t3_s, s3_s = t1 - t0, t2 - t1
    audio_s = len(speech_tokens) * AUDIO_PER_TOKEN_S
    return {"t3_s": t3_s, "t3_tokens_per_s": n_tokens / t3_s, "s3gen_s": s3_s, "s3gen_rtf": s3_s / audio_s,
            "e2e_s": t3_s + s3_s, "e2e_rtf": (t3_s + s3_s) / audio_s, "stages": dict(times.values)}


def bench_config(name, tts, config, device, conds, text_ids, speech_tokens, n_tokens, runs) -> dict:
    optimizer = make_optimizer(config, device)
    if hasattr(optimizer, "optimize_model"):
        optimizer.optimize_model(tts)
    else:
        tts.optimize(optimizer)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t = time.perf_counter()
    warm = one_call(tts, conds, text_ids, speech_tokens, n_tokens)
    warm_s = time.perf_counter() - t
    timed = [one_call(tts, conds, text_ids, speech_tokens, n_tokens) for _ in range(runs)]
    best = min(timed, key=lambda r: r["e2e_s"])
    out = {"name": name, "config": config.summary(), "warmup_s": warm_s, "warmup": warm, "best": best,
           "runs": timed, "fallbacks": list(getattr(optimizer, "fallbacks", [])),
           "t3_dtype": str(tts.t3_dtype), "flow_dtype": str(tts.flow_dtype)}
    if device.type == "cuda":
        out["peak_vram_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        out["reserved_vram_gib"] = torch.cuda.memory_reserved(device) / 2**30
    return out


def profile_step(tts, conds, text_ids, speech_tokens, device, top: int = 15) -> dict:
    """Kernel-time breakdown of one optimized call (where the remaining time goes)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        one_call(tts, conds, text_ids, speech_tokens, 64)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=top)
    return {"table": table}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny random model (smoke test of this script on CPU)")
    ap.add_argument("--turbo", action="store_true", help="Chatterbox-Turbo sizes (GPT-2 medium T3, 2-step mean flow)")
    ap.add_argument("--skip-eager", action="store_true")
    ap.add_argument("--profile", action="store_true", help="append a kernel-time table of the optimized path")
    ap.add_argument("--compile", action="store_true", help="also measure all optimizations + torch.compile of the T3 step")
    args = ap.parse_args()

    device = torch.device(args.device)
    if args.turbo:
        cfg = tiny_turbo_config() if args.tiny else full_turbo_config()
    else:
        cfg = tiny_config() if args.tiny else full_config()
    t = time.perf_counter()
    model = random_model(cfg, seed=0, device=device)
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tokenizer.json").write_text(tokenizer_json(cfg.t3.text_vocab))
        tokenizer = EnTokenizer(Path(tmp) / "tokenizer.json")
    conds = random_conds(cfg, prompt_tokens=250, seed=0).to(device)
    g = torch.Generator().manual_seed(0)
    text_ids = torch.randint(1, 255, (82 if args.turbo else 80,), generator=g).tolist()
    if not args.turbo:
        text_ids = [cfg.t3.start_text, *text_ids, cfg.t3.stop_text]
    speech_tokens = torch.randint(0, 6561, (args.tokens,), generator=g).tolist()
    tts = ChatterboxTTS(model, tokenizer, conds, device, name="chatterbox-turbo-random" if args.turbo else "chatterbox-random")

    results = {"date": time.strftime("%Y-%m-%d"), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "tokens": args.tokens, "audio_s": args.tokens * AUDIO_PER_TOKEN_S,
               "variant": "turbo" if args.turbo else "standard",
               "prompt_positions": cfg.t3.cond_len + len(text_ids) + (1 if args.turbo else 2), "build_s": build_s,
               "t3_config": asdict(cfg.t3), "configs": []}
    cuda = device.type == "cuda"
    plans = [] if args.skip_eager else [("eager fp32", OptimizationConfig.unoptimized())]
    plans.append(("all optimizations", OptimizationConfig(enable_bf16=True, enable_cuda_graphs=cuda,
                                                          enable_flash_attention=True, shape_buckets=True,
                                                          enable_tf32=True, graph_warmup_iters=2)))
    if args.compile:
        plans.append(("all + compile", replace(plans[-1][1], enable_compile=True)))
    for name, config in plans:
        try:
            r = bench_config(name, tts, config, device, conds, text_ids, speech_tokens, args.tokens, args.runs)
        except Exception as exc:  # noqa: BLE001 - report and go on: one failing configuration must not hide the others
            results["configs"].append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", flush=True)
            continue
        results["configs"].append(r)
        if args.out:  # written after every configuration: a later timeout keeps what was measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2))
        b = r["best"]
        print(f"{name:18s} T3 {b['t3_tokens_per_s']:8.1f} tok/s | S3Gen RTF {b['s3gen_rtf']:.4f} | "
              f"e2e RTF {b['e2e_rtf']:.4f} | peak VRAM {r.get('peak_vram_gib', 0):.2f} GiB | "
              f"warm-up {r['warmup_s']:.1f} s | stages {', '.join(f'{k} {v * 1000:.1f} ms' for k, v in b['stages'].items())}",
              flush=True)
    if args.profile:
        results["profile"] = profile_step(tts, conds, text_ids, speech_tokens[:64], device)
        print(results["profile"]["table"])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
