"""Apply an `OptimizationConfig` to a Piper voice: every toggle changes how the model runs.

Each call starts from the fp32 reference weights, so toggling back and forth never accumulates
rounding, and builds a fresh runner (new buckets, graphs, pool bindings).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import torch

from ...errors import brief
from ...runtime import triton_available
from ...sdpa import probe_backend
from ...text import workers
from .model import use_channels_last_convs, use_exact_products, use_gemm_convs
from .synth import Lanes, PiperRunner

if TYPE_CHECKING:
    from ...optimizer import AdvancedTTSOptimizer
    from .pipeline import PiperTTS

WARMUP_TOKENS = (64, 160)
"""Token counts synthesized once after optimizing, so common buckets are planned/captured ahead."""
WORKERS_START_S = 20.0
"""How long warmup waits for the espeak workers to start; after that they are used once up."""


def apply_optimizations(tts: "PiperTTS", opt: "AdvancedTTSOptimizer") -> None:
    cfg, dev = opt.config, tts.device
    cuda = dev.type == "cuda"
    tts.restore_reference_weights()
    runner = PiperRunner(tts.model, dev)
    runner.on_fallback = opt.record_fallback
    runner.on_stat = opt.set_stat
    tts.runner = runner

    if cfg.preload_weights:
        tts.ensure_on_device()
    opt.set_stat("weights", "preloaded" if cfg.preload_weights else "moved on first use")

    opt.precision_manager.convert_model(tts.model, tts.precision_policy)
    _apply_sdpa(tts, opt)
    _apply_fused_kernels(tts, opt, cuda)

    runner.inference_mode = cfg.use_inference_mode
    runner.batching = cfg.batch_preprocessing
    runner.max_batch = cfg.max_batch_size if cfg.batch_preprocessing else 1
    # graphs and compiled kernels need fixed shapes; batches are padded anyway, so round them to
    # buckets too (on the H100 an unbucketed eager batch of 32 long sentences drew 77 GB of cuDNN
    # workspace under heuristic algorithm choice and its durations drifted; bucketed ones did not)
    runner.buckets = cfg.shape_buckets or cfg.enable_cuda_graphs or cfg.enable_compile or cfg.batch_preprocessing
    if cuda:
        # one autotune per bucket pays off; without buckets every new length would re-plan (~1.4 s)
        torch.backends.cudnn.benchmark = runner.buckets

    if cfg.preallocate_buffers:
        runner.pool = opt.pool
    if cfg.pin_memory:
        if cuda:
            runner.staging = opt.staging
        else:
            opt.record_fallback("pin_memory", "no CUDA device: audio already lives in host memory")

    if cfg.enable_compile:
        _apply_compile(runner, opt, cuda)
    if cfg.enable_cuda_graphs:
        if not cuda:
            opt.record_fallback("cuda_graphs", "no CUDA device: running eagerly")
        elif cfg.enable_compile and cfg.compile_mode == "reduce-overhead" and runner.compiled:
            opt.record_fallback("cuda_graphs", "compile mode reduce-overhead already replays CUDA graphs; ours are off")
        else:
            runner.graphs = opt.graph_runner()
            runner.lanes = Lanes(dev)  # consecutive batches overlap: their graphs' tensors are fixed
    opt.set_stat("batch_overlap", "stage A beside the previous batch's stage B (two streams)" if runner.lanes else "off (needs CUDA graphs)")

    if cfg.preload_weights:
        _warmup(tts, opt)  # needs the weights on the device; without preloading the first request warms up
    opt.set_stat("buckets", runner.buckets)
    opt.set_stat("max_batch", runner.max_batch)
    opt.set_stat("compile_s", runner.compile_stat())


def _apply_sdpa(tts: "PiperTTS", opt: "AdvancedTTSOptimizer") -> None:
    layers = tts.model.enc_p.encoder.attn_layers
    use = False
    if opt.config.enable_flash_attention:
        first = layers[0]
        dtype = next(tts.model.enc_p.parameters()).dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backend = probe_backend(tts.device, dtype, first.n_heads, 128, 129, first.k_channels + 8, with_mask=True)
        if backend is None:
            opt.record_fallback("flash_attention", "scaled_dot_product_attention cannot run here; using the plain attention")
        else:
            use = True
            opt.set_stat("sdpa_backend", backend)
    for layer in layers:
        layer.use_sdpa = use
    if not use:
        opt.set_stat("sdpa_backend", "off (plain attention)")


def _apply_fused_kernels(tts: "PiperTTS", opt: "AdvancedTTSOptimizer", cuda: bool) -> None:
    """On the GPU: GEMM-form convolutions in the encoder and duration predictor, the encoder's
    attention (where SDPA is on) and its feed-forward blocks at chapter-size batches in Triton, and
    the flow and vocoder in fused Triton kernels. On the CPU: the vocoder's convolutions
    channels-last (oneDNN), and no GEMM forms, which measured slower there (flow 73 → 91 ms,
    encoder 58 → 63 ms on the CI machine)."""
    on = opt.config.enable_fused_kernels
    model = tts.model
    gemm = sum(use_gemm_convs(part, on and cuda) for part in (model.enc_p, model.dp))
    flow_gemm = use_gemm_convs(model.flow, on and cuda)  # also where the Triton flow is built: its fallback
    vocoder = use_channels_last_convs(model.dec, on and not cuda)
    triton = on and cuda and triton_available()
    for layer in model.enc_p.encoder.attn_layers:
        layer.fuse_projections(on)
    # with SDPA chosen, the attention with its relative terms in one Triton launch per layer
    sdpa_backend = opt.model_stats.get("sdpa_backend")
    attention = sum(layer.use_triton(triton and layer.use_sdpa) for layer in model.enc_p.encoder.attn_layers)
    if attention:
        opt.set_stat("sdpa_backend", "Triton relative-position flash attention (fused kernels on)")
    # tap copies of the weights as converted (this runs after convert_model); unfused otherwise
    ffn = sum(layer.fuse(triton) for layer in model.enc_p.encoder.ffn_layers)
    products = sum(use_exact_products(part, triton) for part in (model.enc_p, model.dp))
    if not on:
        opt.set_stat("fused_kernels", "off")
        return
    eager_why = (
        "no CUDA device: the Triton vocoder needs a GPU" if not cuda
        else None if triton_available() else "triton is not installed: the vocoder runs eagerly"
    )
    if eager_why is not None:
        done = f"{gemm + flow_gemm} convolutions as matrix products, q/k/v as one" if cuda else f"q/k/v as one, the vocoder's {vocoder} convolutions channels-last"
        opt.record_fallback("fused_kernels", f"{eager_why}; {done}")
        opt.set_stat("fused_kernels", done)
        return
    from .fused import FusedFlow, FusedGenerator

    tts.runner.fused_decoder = FusedGenerator(model.dec)
    tts.runner.fused_flow = FusedFlow(model.flow)
    ffn_part = "encoder feed-forward in Triton, " if ffn else ""
    products_part = f"{products} fp32 1 × 1 products of the encoder and duration predictor in Triton, " if products else ""
    attention_part = "encoder attention in Triton, " if attention else ""
    rest = f"{gemm} convolutions as matrix products, q/k/v as one"
    stage_b = f"Triton flow ({tts.runner.fused_flow.launches} launches) and vocoder ({tts.runner.fused_decoder.launches})"
    opt.set_stat("fused_kernels", f"{stage_b}, {attention_part}{ffn_part}{products_part}{rest}")
    tts.runner.stats_without_encoder_kernels = {
        "fused_kernels": f"{stage_b}, {rest}; the encoder's Triton kernels failed (see fallbacks)",
        **({"sdpa_backend": sdpa_backend} if attention and sdpa_backend else {}),
    }


def _apply_compile(runner: PiperRunner, opt: "AdvancedTTSOptimizer", cuda: bool) -> None:
    if cuda and not triton_available():
        opt.record_fallback("compile", "triton is not installed, torch.compile cannot build GPU kernels; running eagerly")
        return
    mode = opt.config.compile_mode
    if mode == "max-autotune" and opt.config.enable_cuda_graphs:
        mode = "max-autotune-no-cudagraphs"  # our graphs replay the stages; inductor's must not nest inside them
    from ...kernels.device import compile_arguments, compiles_dependent_launches  # the mode alone off the GPU

    arguments = compile_arguments(mode, runner.device)
    try:
        # automatic dynamic shapes: a bucket-specialised first compile, one generic recompile after
        runner.stage_a = torch.compile(runner._stage_a, **arguments)
        runner.stage_b = torch.compile(runner._stage_b, **arguments)
    except Exception as exc:  # compile is an optimization: report and run eagerly
        opt.record_fallback("compile", f"{type(exc).__name__}: {exc}")
        return
    dependent = compiles_dependent_launches(arguments)
    opt.set_stat("compile_launch", "programmatic dependent launch (each kernel starts as the one before it ends)" if dependent else "plain launches")
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    # The generic recompile's value-range analysis cannot bound one index expression and logs each
    # attempt; it then uses no bound, which changes nothing we run. Keep the user's console clean.
    logging.getLogger("torch.utils._sympy.interp").setLevel(logging.ERROR)
    runner.compiled = True


def _warmup(tts: "PiperTTS", opt: "AdvancedTTSOptimizer") -> None:
    """Run the common buckets once: cuDNN plans, compiled kernels and graphs exist before the
    first real request. Compile failures surface here and fall back to eager. The espeak worker
    processes start meanwhile, so the first sentence's clauses are already spread over them."""
    from ...config import SynthesisOptions
    from ..base import StageTimes

    front_end = workers.start(tts.config.espeak_voice)

    pad = tts.config.phoneme_id_map["_"][0]
    vowel = next(iter(v[0] for k, v in tts.config.phoneme_id_map.items() if k in ("a", "ə", "e")), 14)
    options = SynthesisOptions(noise_scale=0.0, noise_w=0.0, seed=0)
    runner = tts.runner
    for n in WARMUP_TOKENS:
        ids = [tts.config.phoneme_id_map["^"][0]] + [vowel, pad] * (n // 2) + [tts.config.phoneme_id_map["$"][0]]
        try:
            list(runner.run([(ids, 0)], tts.params(options), StageTimes()))
        except Exception as exc:
            if not (runner.compiled or runner.fused_decoder is not None):
                raise
            reason = brief(exc)
            if runner.fused_decoder is not None:  # the kernels build on first use; a failure means eager
                opt.record_fallback("fused_kernels", f"the Triton flow and vocoder failed to build or run ({reason}); running them eagerly")
                opt.set_stat("fused_kernels", "failed: eager flow and vocoder")
                runner.fused_decoder = runner.fused_flow = None
            if runner.compiled:
                runner.stop_compiling(f"failed while compiling ({reason}); running eagerly")
            elif runner.graphs is not None:
                runner.graphs.clear()
            list(runner.run([(ids, 0)], tts.params(options), StageTimes()))
    workers.wait(front_end, WORKERS_START_S)
