"""`tts-turbo`: speak, diagnose, benchmark, profile, manage models; no subcommand opens the app.

Exit codes: 0 success, 2 bad input (text, options, paths, voice files), 1 any other failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from . import runtime

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    runtime.configure_environment()  # before torch is imported
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = args.command or "gui"
    from .errors import InputError

    try:
        return COMMANDS[command](args)
    except InputError as exc:
        print(f"tts-turbo: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("tts-turbo: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        print(f"tts-turbo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tts-turbo", description="Neural text-to-speech as fast as your GPU allows.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = parser.add_subparsers(dest="command")

    say = sub.add_parser("say", help="synthesize text to a file and/or the speakers")
    say.add_argument("text", help="text to speak; '-' reads standard input")
    say.add_argument("-o", "--output", help="output file (.wav, .flac, .ogg, .mp3 where supported)")
    say.add_argument("--voice", default="default", help="Piper .onnx path, 'default' (bundled joe) or 'chatterbox'")
    say.add_argument("--speaker", type=int, default=0, help="speaker id for multi-speaker voices")
    say.add_argument("--length-scale", type=float, help="speaking time multiplier (>1 slower)")
    say.add_argument("--noise-scale", type=float, help="prior noise (0 = deterministic)")
    say.add_argument("--noise-w", type=float, help="duration noise (0 = deterministic)")
    say.add_argument("--sentence-silence", type=float, default=0.2, help="seconds of silence between sentences")
    say.add_argument("--no-normalize", action="store_true", help="keep the model's raw level")
    say.add_argument("--volume", type=float, default=1.0)
    say.add_argument("--seed", type=int, help="seed for reproducible noise")
    say.add_argument("--exaggeration", type=float, help="Chatterbox: emotion exaggeration (0.5)")
    say.add_argument("--cfg-weight", type=float, help="Chatterbox: classifier-free guidance weight (0.5)")
    say.add_argument("--temperature", type=float, help="Chatterbox: sampling temperature (0.8)")
    say.add_argument("--reference", help="Chatterbox: reference recording to clone")
    say.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    say.add_argument("--preset", choices=("max-speed", "unoptimized"), default="max-speed")
    say.add_argument("--play", action="store_true", help="play through the default audio device")

    doctor = sub.add_parser("doctor", help="check torch, CUDA, GPU kernels and packages")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")

    from .bench import add_arguments as add_bench_arguments

    add_bench_arguments(sub.add_parser("bench", help="benchmark configurations side by side"))

    profile = sub.add_parser("profile", help="torch.profiler table of one synthesis, sorted by device time")
    profile.add_argument("text")
    profile.add_argument("--voice", default="default")
    profile.add_argument("--device", default="auto")
    profile.add_argument("--preset", choices=("max-speed", "unoptimized"), default="max-speed")
    profile.add_argument("--rows", type=int, default=25)
    profile.add_argument("--ids-file", help="TEXT names an entry of this phoneme-id file (machines without espeak)")

    models = sub.add_parser("models", help="list or download model families")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="families and their state")
    download = models_sub.add_parser("download", help="download a model's weights")
    download.add_argument("name", choices=("chatterbox", "chatterbox-turbo"))

    sub.add_parser("gui", help="open the desktop app (also the default)")
    return parser


def preset_config(name: str, device):
    from .config import OptimizationConfig

    if name == "unoptimized":
        return OptimizationConfig.unoptimized()
    cuda = device.type == "cuda"
    return OptimizationConfig.max_speed(cuda=cuda, bf16_supported=cuda or runtime.cpu_bf16_fast())


def _read_text(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


def cmd_say(args) -> int:
    from .audio_io import AudioWriter, check_target
    from .config import SynthesisOptions
    from .errors import InputError
    from .optimizer import AdvancedTTSOptimizer
    from .registry import load_model
    from .wrapper import OptimizedTTSWrapper

    if not args.output and not args.play:
        raise InputError("nothing to do: give -o FILE and/or --play")
    if args.output:
        check_target(Path(args.output))  # fail before the slow part
    text = _read_text(args.text)
    extra = {k: v for k, v in (("exaggeration", args.exaggeration), ("cfg_weight", args.cfg_weight), ("temperature", args.temperature), ("voice_path", args.reference)) if v is not None}
    try:
        options = SynthesisOptions(
            speaker_id=args.speaker, length_scale=args.length_scale, noise_scale=args.noise_scale, noise_w=args.noise_w,
            sentence_silence=args.sentence_silence, normalize=not args.no_normalize, volume=args.volume, seed=args.seed, extra=extra,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    model = load_model(args.voice, args.device)
    optimizer = AdvancedTTSOptimizer(preset_config(args.preset, model.device), model.device)
    wrapper = OptimizedTTSWrapper(model, optimizer)
    with contextlib.ExitStack() as stack:  # a failed run removes its partial file and closes the stream
        writer = stack.enter_context(AudioWriter(args.output, model.sample_rate)) if args.output else None
        player = None
        if args.play:
            try:
                player = _player(model.sample_rate)
            except InputError as exc:
                if writer is None:
                    raise
                print(f"note: {exc}; writing {args.output} only", file=sys.stderr)  # export still works
        if player is not None:
            stack.callback(player.close)
        for chunk in wrapper.stream(text, options):
            if writer is not None:
                writer.write(chunk.audio)
            if player is not None:
                player.write(chunk.audio)
    t = wrapper.last_timings
    print(
        f"{t.audio_s:.2f} s of audio in {t.total_s:.3f} s (RTF {t.rtf:.4f}, {t.x_realtime:.0f}× real time) on {model.device}"
        + (f" → {args.output}" if args.output else ""),
        file=sys.stderr,
    )
    for note in optimizer.fallbacks:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


class _BlockingPlayer:
    """Plays chunks as they arrive through a sounddevice stream (blocking writes)."""

    def __init__(self, sample_rate: int):
        import sounddevice as sd

        self.stream = sd.OutputStream(samplerate=sample_rate, channels=1, dtype="float32")
        self.stream.start()

    def write(self, audio) -> None:
        self.stream.write(audio.reshape(-1, 1))

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


def _player(sample_rate: int):
    from .errors import InputError

    try:
        return _BlockingPlayer(sample_rate)
    except Exception as exc:  # no PortAudio, no device, device busy: all mean "cannot play here"
        raise InputError(f"no usable audio output device ({exc}); write a file with -o instead") from exc


def cmd_doctor(args) -> int:
    from .doctor import collect, format_report

    report = collect()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return EXIT_OK


def cmd_bench(args) -> int:
    from .bench import run_from_args

    return run_from_args(args)


def cmd_profile(args) -> int:
    from .profile import profile_text

    print(profile_text(_read_text(args.text), args.voice, args.device, args.preset, args.rows, args.ids_file))
    return EXIT_OK


def cmd_models(args) -> int:
    from .registry import families

    if args.models_command == "list":
        for family in families():
            print(f"{family.name:12s} {family.description}")
            if family.name == "chatterbox":
                from .models.chatterbox import checkpoint_status

                for variant, name in (("standard", "chatterbox"), ("turbo", "chatterbox-turbo")):
                    status = checkpoint_status(variant=variant)
                    state = f"ready in {status['path']}" if status["ready"] else f"not downloaded (missing: {', '.join(status['missing'])})"
                    print(f"  {name:18s} {state}")
        return EXIT_OK
    from .models.chatterbox import download

    path = download(progress=True, variant="turbo" if args.name == "chatterbox-turbo" else "standard")
    print(f"{args.name} weights ready in {path}")
    return EXIT_OK


def cmd_gui(args) -> int:
    from app.main import main as gui_main

    return gui_main([])


COMMANDS = {"say": cmd_say, "doctor": cmd_doctor, "bench": cmd_bench, "profile": cmd_profile, "models": cmd_models, "gui": cmd_gui}


if __name__ == "__main__":
    sys.exit(main())
