"""Pick the torch build (CPU, cu126 or cu128) for this Windows PC from `nvidia-smi` output.

Pure functions over text: no subprocess, no torch, stdlib only, so the bootstrap can call it before any
package is installed and the tests can feed it recorded `nvidia-smi` outputs.

Facts the table below rests on (re-check them whenever TORCH_VERSION changes):

* Minimum Windows driver per CUDA toolkit: NVIDIA CUDA Toolkit Release Notes, table "CUDA Toolkit and
  Corresponding Driver Versions" (docs.nvidia.com/cuda/cuda-toolkit-release-notes, "Older CUDA versions"):
  CUDA 12.8 GA needs Windows >= 570.65 (Linux >= 570.26); CUDA 12.6 GA needs Windows >= 560.76
  (Linux >= 560.28.03). Older 12.x drivers (>= 528.33) can run 12.x builds through "minor version
  compatibility", which uv's `--torch-backend=auto` relies on; we use the toolkit minimum instead, because
  NVIDIA does not promise every feature of a 12.8 build on an older driver and a GeForce RTX 50 card needs
  an R570+ driver to be driven at all.
* Architectures in the Windows torch 2.11 builds: pytorch/pytorch RELEASE.md "PyTorch CUDA Support Matrix"
  for release 2.11 (pytorch/pytorch#175253, #172663): CUDA 12.6.3 = sm_50, 60, 70, 75, 80, 86, 90;
  CUDA 12.8.1 = sm_75, 80, 86, 90, 100, 120 (Volta dropped from 12.8 in 2.11). torch 2.12 deprecated cu128
  (pytorch/pytorch#178665), which is why the pin stays on 2.11 while both tags exist.
* A cubin for sm_XY runs on any sm_XZ with Z >= Y (same major), so sm_89 (RTX 40) runs the sm_86 code and
  sm_61 (GTX 10) runs sm_60; a different major needs its own cubin (no PTX in the Windows builds).
* triton-windows is installed for compute capability 7.5 (Turing) and newer: torch's inductor refuses Triton
  below 7.0 (torch/_inductor/exc.py GPUTooOldForTriton), upstream Triton's README lists NVIDIA CC 8.0+ as
  supported and Turing works in practice; Volta is left without it. torch 2.11 pins triton 3.6.0 on Linux,
  hence triton-windows 3.6.x (installer/lock/triton-win.txt).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

TORCH_VERSION = "2.11.0"
TORCH_INDEX = "https://download.pytorch.org/whl/{tag}"


@dataclass(frozen=True)
class TorchBuild:
    tag: str                                  # PyTorch index tag and local version: "cu128" -> torch==2.11.0+cu128
    min_driver: tuple[int, ...]               # oldest Windows driver, from the CUDA release notes table
    arches: tuple[tuple[int, int], ...]       # SASS targets compiled into the wheel


# Preference order: the first build that runs the GPU with the installed driver wins.
CUDA_BUILDS = (
    TorchBuild("cu128", (570, 65), ((7, 5), (8, 0), (8, 6), (9, 0), (10, 0), (12, 0))),
    TorchBuild("cu126", (560, 76), ((5, 0), (6, 0), (7, 0), (7, 5), (8, 0), (8, 6), (9, 0))),
)
TRITON_MIN_CC = (7, 5)
CHOICES = ("auto", "cpu") + tuple(b.tag for b in CUDA_BUILDS)


@dataclass(frozen=True)
class Gpu:
    name: str
    driver: tuple[int, ...]                   # (576, 88)
    compute_cap: tuple[int, int] | None       # (12, 0); None when the driver cannot report it

    @property
    def sm(self) -> str:
        return f"sm_{self.compute_cap[0]}{self.compute_cap[1]}" if self.compute_cap else "sm_?"


@dataclass(frozen=True)
class Decision:
    tag: str                                  # "cpu", "cu126" or "cu128"
    reason: str                               # one sentence for the summary and the log
    gpu: Gpu | None = None
    triton: bool = False                      # install triton-windows so torch.compile works
    warnings: tuple[str, ...] = field(default=())

    @property
    def index_url(self) -> str | None:
        return None if self.tag == "cpu" else TORCH_INDEX.format(tag=self.tag)

    @property
    def torch_spec(self) -> str:
        return f"torch=={TORCH_VERSION}" if self.tag == "cpu" else f"torch=={TORCH_VERSION}+{self.tag}"


def parse_version(text: str) -> tuple[int, ...]:
    """'576.88' -> (576, 88); raises ValueError on anything else."""
    if not re.fullmatch(r"\d+(\.\d+)*", text.strip()):
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(p) for p in text.strip().split("."))


def parse_query_csv(text: str) -> list[Gpu]:
    """Parse `nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader`.

    Lines that are not three comma-separated fields (error messages such as 'Field "compute_cap" is not a
    valid field to query.' from drivers older than R510) are skipped, so an empty list means "ask the banner".
    """
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]
        if len(parts) != 3 or not parts[0]:
            continue
        try:
            driver = parse_version(parts[1])
        except ValueError:
            continue
        try:
            major, minor = parse_version(parts[2])
            cc: tuple[int, int] | None = (major, minor)
        except ValueError:                    # "[N/A]" or "[Not Supported]"
            cc = None
        gpus.append(Gpu(parts[0], driver, cc))
    return gpus


_BANNER_DRIVER = re.compile(r"Driver Version:\s*(\d+(?:\.\d+)+)")
_BANNER_GPU = re.compile(r"^\|\s+\d+\s+(.+?)\s+(?:WDDM|TCC|MCDM|On|Off)\s+\|", re.MULTILINE)


def parse_banner(text: str) -> list[Gpu]:
    """Parse plain `nvidia-smi`: GPU names and the driver version; the banner has no compute capability."""
    m = _BANNER_DRIVER.search(text)
    if not m:
        return []
    driver = parse_version(m.group(1))
    return [Gpu(name.strip(), driver, None) for name in _BANNER_GPU.findall(text)]


def runs_on(build: TorchBuild, cc: tuple[int, int]) -> bool:
    """True if the build has a cubin of the same major and a minor no newer than the GPU's."""
    return any(a[0] == cc[0] and a[1] <= cc[1] for a in build.arches)


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in v)


def select_build(gpus: list[Gpu], choice: str = "auto") -> Decision:
    """Decide the torch build. `choice` is 'auto' or a forced 'cpu' / 'cu126' / 'cu128' (Repair menu, CI)."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    # The newest GPU decides: torch's default device order (FASTEST_FIRST) puts it at cuda:0.
    gpu = max(gpus, key=lambda g: g.compute_cap or (0, 0), default=None)
    if choice != "auto":
        return _forced(choice, gpu)
    if gpu is None:
        return Decision("cpu", "No NVIDIA GPU found (nvidia-smi absent or reported none): CPU build.")
    if gpu.compute_cap is None:
        return Decision("cpu", f"{gpu.name}: driver {_fmt(gpu.driver)} cannot report its compute capability; "
                        f"update the NVIDIA driver to {_fmt(CUDA_BUILDS[0].min_driver)} or newer, then Repair.", gpu)
    usable = [b for b in CUDA_BUILDS if runs_on(b, gpu.compute_cap)]
    if not usable:
        return Decision("cpu", f"{gpu.name} ({gpu.sm}) is not supported by the torch {TORCH_VERSION} CUDA builds: "
                        "CPU build.", gpu)
    for b in usable:
        if gpu.driver >= b.min_driver:
            return Decision(b.tag, f"{gpu.name} ({gpu.sm}), driver {_fmt(gpu.driver)}: CUDA build {b.tag}.",
                            gpu, triton=gpu.compute_cap >= TRITON_MIN_CC, warnings=_others(gpus, gpu, b))
    need = min(b.min_driver for b in usable)
    return Decision("cpu", f"{gpu.name} ({gpu.sm}) needs NVIDIA driver {_fmt(need)} or newer for a CUDA build "
                    f"(installed: {_fmt(gpu.driver)}). Update the driver, then run Repair. Using the CPU build.", gpu)


def _forced(choice: str, gpu: Gpu | None) -> Decision:
    if choice == "cpu":
        return Decision("cpu", "CPU build chosen by the user.", gpu)
    b = next(b for b in CUDA_BUILDS if b.tag == choice)
    warnings = []
    if gpu is None:
        warnings.append(f"{choice} chosen but no NVIDIA GPU was found: torch will run on the CPU.")
    elif gpu.compute_cap and not runs_on(b, gpu.compute_cap):
        warnings.append(f"{choice} has no kernels for {gpu.name} ({gpu.sm}).")
    elif gpu.driver < b.min_driver:
        warnings.append(f"{choice} needs driver {_fmt(b.min_driver)}+, installed {_fmt(gpu.driver)}.")
    cc_ok = gpu is not None and gpu.compute_cap is not None and gpu.compute_cap >= TRITON_MIN_CC
    return Decision(choice, f"CUDA build {choice} chosen by the user.", gpu, triton=cc_ok, warnings=tuple(warnings))


def _others(gpus: list[Gpu], chosen: Gpu, build: TorchBuild) -> tuple[str, ...]:
    """Warn about extra GPUs the chosen build cannot drive (e.g. a GTX 1080 next to an RTX 5090)."""
    return tuple(f"{g.name} ({g.sm}) is not supported by {build.tag}; it will be ignored."
                 for g in gpus if g is not chosen and g.compute_cap and not runs_on(build, g.compute_cap))


def decide(query_csv: str | None, banner: str | None, choice: str = "auto") -> Decision:
    """Entry point for the bootstrap: the two raw nvidia-smi outputs (None when it could not run)."""
    gpus = parse_query_csv(query_csv or "")
    if not gpus:
        gpus = parse_banner(banner or "")
    return select_build(gpus, choice)
