"""Create or repair the TTS Turbo environment on Windows: venv, bundled wheels, the right torch, doctor.

Run by bootstrap.cmd with a uv-managed (or bundled) CPython, from the installer and from the Start-menu
entry "Repair or change GPU build". Stdlib only: nothing is installed yet when it starts.

Each stage has its own exit code so the installer, CI and a support request can tell them apart; the full
output of every command goes to logs/bootstrap.log under the install root.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gpu_select
from wheel_lock import sha256_file  # copied next to this file by build_payload.py

# 2 is argparse's "bad arguments"; 7 ("no Python") comes from bootstrap.cmd.
EXIT_OK, EXIT_VENV, EXIT_BASE, EXIT_TORCH, EXIT_APP, EXIT_BUSY, EXIT_DOCTOR = 0, 3, 4, 5, 6, 8, 9
VC_REDIST_URL = "https://aka.ms/vs/17/release/vc_redist.x64.exe"


class StageError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Layout:
    """Paths under the install root; everything the bootstrap creates lives here so the uninstaller finds it."""
    root: Path

    uv = property(lambda s: s.root / "runtime" / "uv.exe")
    env = property(lambda s: s.root / "env")
    env_python = property(lambda s: s.root / "env" / "Scripts" / "python.exe")
    cli = property(lambda s: s.root / "env" / "Scripts" / "tts-turbo.exe")
    gui = property(lambda s: s.root / "env" / "Scripts" / "tts-turbo-gui.exe")
    wheelhouse = property(lambda s: s.root / "wheelhouse")
    manifest = property(lambda s: s.root / "manifest.json")
    log = property(lambda s: s.root / "logs" / "bootstrap.log")
    state = property(lambda s: s.root / "state" / "install.json")
    summary = property(lambda s: s.root / "state" / "summary.txt")

    def lock(self, name: str) -> Path:
        return self.root / "lock" / name


Runner = Callable[[list[str]], "tuple[int, str]"]


@dataclass
class Report:
    decision: gpu_select.Decision | None = None
    torch: str | None = None                  # installed torch version, e.g. "2.11.0+cu128"
    doctor: dict | None = None
    warnings: list[str] = field(default_factory=list)


class Bootstrap:
    def __init__(self, layout: Layout, run: Runner, probe_gpu: Callable[[], tuple[str | None, str | None]],
                 log: Callable[[str], None] = print):
        self.L, self.run, self.probe_gpu, self.log = layout, run, probe_gpu, log
        self.report = Report()

    # -- helpers -------------------------------------------------------------------------------------------
    def uv(self, *args: str) -> tuple[int, str]:
        return self.run([str(self.L.uv), *args])

    def pip_install(self, *args: str) -> int:
        return self.uv("pip", "install", "--python", str(self.L.env_python), *args)[0]

    def offline(self) -> list[str]:
        return ["--no-index", "--find-links", str(self.L.wheelhouse)]

    def must(self, rc: int, code: int, message: str) -> None:
        if rc != 0:
            raise StageError(code, message)

    # -- stages --------------------------------------------------------------------------------------------
    def make_venv(self, python: str, clean: bool) -> None:
        if self.L.env_python.exists() and not clean:
            self.log("Environment exists: keeping it.")
            return
        rc, _ = self.uv("venv", "--clear", "--python", python, str(self.L.env))
        self.must(rc, EXIT_VENV, "Could not create the Python environment.")

    def install_base(self) -> None:
        rc = self.pip_install(*self.offline(), "--require-hashes", "-r", str(self.L.lock("requirements-win.txt")))
        self.must(rc, EXIT_BASE, "Could not install the bundled packages (wheelhouse).")

    def installed_torch(self) -> str | None:
        code = "import importlib.metadata as m; print(m.version('torch'))"    # metadata only: no DLL load
        rc, out = self.run([str(self.L.env_python), "-c", code])
        return out.strip().splitlines()[-1] if rc == 0 and out.strip() else None

    def install_cpu_torch(self) -> int:
        return self.pip_install(*self.offline(), "--require-hashes", "--reinstall-package", "torch",
                                "-r", str(self.L.lock("torch-cpu-win.txt")))

    def install_torch(self, d: gpu_select.Decision, force: bool) -> None:
        current = self.installed_torch()
        if current and torch_tag(current) == d.tag and not force:
            self.log(f"torch {current} already matches {d.tag}: keeping it.")
        elif d.tag == "cpu":
            self.must(self.install_cpu_torch(), EXIT_TORCH, "Could not install the bundled CPU torch.")
        else:
            self.log(f"Downloading {d.torch_spec} from {d.index_url} (about 3 GB)...")
            rc = self.pip_install("--index-url", d.index_url, "--find-links", str(self.L.wheelhouse),
                                  "--no-cache", "--reinstall-package", "torch", d.torch_spec)
            if rc != 0:
                self.report.warnings.append(
                    f"Could not download the GPU build {d.tag} (offline or blocked?). The app runs on the CPU; "
                    "run 'Repair or change GPU build' from the Start menu when online.")
                if not current:
                    self.must(self.install_cpu_torch(), EXIT_TORCH, "Could not install the bundled CPU torch.")
        self.report.torch = self.installed_torch()
        if not self.report.torch:
            raise StageError(EXIT_TORCH, "torch is not installed in the environment.")

    def install_triton(self, d: gpu_select.Decision) -> None:
        gpu_torch = torch_tag(self.report.torch or "") != "cpu"
        if d.triton and gpu_torch:
            if self.pip_install("--require-hashes", "-r", str(self.L.lock("triton-win.txt"))) != 0:
                self.report.warnings.append("Could not install triton-windows: torch.compile stays off.")
        elif not gpu_torch:
            self.uv("pip", "uninstall", "--python", str(self.L.env_python), "triton-windows")

    def install_app(self) -> None:
        manifest = json.loads(self.L.manifest.read_text(encoding="utf-8"))
        wheel = self.L.root / "app" / manifest["app_wheel"]["file"]
        if not wheel.exists() or sha256_file(wheel) != manifest["app_wheel"]["sha256"]:
            raise StageError(EXIT_APP, f"{wheel.name} is missing or damaged; reinstall TTS Turbo.")
        rc = self.pip_install(*self.offline(), "--no-deps", "--reinstall-package", "tts-turbo", str(wheel))
        self.must(rc, EXIT_APP, "Could not install the TTS Turbo package.")
        if self.uv("pip", "check", "--python", str(self.L.env_python))[0] != 0:
            self.report.warnings.append("Dependency check reported problems (see the log).")

    def run_doctor(self) -> None:
        rc, out = self.run([str(self.L.cli), "doctor", "--json"])
        doctor = last_json_object(out) if rc == 0 else None
        if doctor is None:
            raise StageError(EXIT_DOCTOR, "tts-turbo doctor failed: the app is installed but cannot start.")
        self.report.doctor = doctor
        if doctor.get("arch_supported") is False:
            self.report.warnings.append(f"torch {self.report.torch} has no kernels for {doctor.get('gpu_name')}; "
                                        "it runs on the CPU. Run Repair and accept the recommended build.")
        expected = expected_cuda(self.report.torch or "")
        if expected and not str(doctor.get("cuda_version") or "").startswith(expected):
            raise StageError(EXIT_DOCTOR, f"torch {self.report.torch} reports CUDA {doctor.get('cuda_version')}, "
                                          f"expected {expected}.")

    # -- whole run -----------------------------------------------------------------------------------------
    def execute(self, python: str, choice: str, clean: bool, force: bool) -> int:
        try:
            self.make_venv(python, clean)
            self.install_base()
            d = self.report.decision = gpu_select.decide(*self.probe_gpu(), choice=choice)
            self.log(d.reason)
            self.report.warnings += list(d.warnings)
            self.install_torch(d, force)
            self.install_triton(d)
            self.install_app()
            self.run_doctor()
        except StageError as e:
            self.write_state(e.code, str(e))
            return e.code
        self.write_state(EXIT_OK, None)
        return EXIT_OK

    def write_state(self, code: int, error: str | None) -> None:
        lines = summary_lines(self.report, error, self.L.log)
        for line in lines:
            self.log(line)
        self.L.summary.parent.mkdir(parents=True, exist_ok=True)
        self.L.summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
        d = self.report.decision
        state = {"exit_code": code, "error": error, "torch": self.report.torch, "doctor": self.report.doctor,
                 "build": d.tag if d else None, "reason": d.reason if d else None,
                 "warnings": self.report.warnings, "time": datetime.datetime.now().isoformat(timespec="seconds")}
        self.L.state.write_text(json.dumps(state, indent=2), encoding="utf-8")


# -- pure helpers (tested on Linux) ------------------------------------------------------------------------
def torch_tag(version: str) -> str:
    """'2.11.0+cu128' -> 'cu128'; '2.11.0' and '2.11.0+cpu' -> 'cpu'."""
    local = version.partition("+")[2]
    return local if local.startswith("cu") else "cpu"


def expected_cuda(version: str) -> str | None:
    """'2.11.0+cu128' -> '12.8' (what torch.version.cuda must start with); None for CPU builds."""
    tag = torch_tag(version)
    return None if tag == "cpu" else f"{tag[2:-1]}.{tag[-1]}"


def last_json_object(text: str) -> dict | None:
    """The doctor prints one JSON object; tolerate log lines before it."""
    start = text.find("{")
    while start != -1:
        try:
            obj = json.loads(text[start:])
            return obj if isinstance(obj, dict) else None
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
    return None


def summary_lines(r: Report, error: str | None, log: Path) -> list[str]:
    """What the user reads at the end: a headline, the hardware/torch facts, warnings, and the log path."""
    doc = r.doctor or {}
    if error:
        head = f"TTS Turbo setup FAILED: {error}"
    elif doc.get("cuda_available"):
        head = f"TTS Turbo is ready on the GPU: {doc.get('gpu_name')}."
    else:
        head = "TTS Turbo is ready on the CPU."
    lines = [head]
    if r.decision:
        lines.append(f"GPU check: {r.decision.reason}")
    if r.torch and doc.get("cuda_version"):
        triton = "yes" if doc.get("triton_available") else "no"
        lines.append(f"torch {r.torch} (CUDA {doc['cuda_version']}), compute capability "
                     f"{doc.get('compute_capability')}, torch.compile/triton: {triton}")
    elif r.torch:
        lines.append(f"torch {r.torch} (CPU build)")
    lines += [f"Warning: {w}" for w in r.warnings]
    lines.append(f"Log: {log}")
    return lines


# -- Windows I/O -------------------------------------------------------------------------------------------
def find_nvidia_smi() -> str | None:
    """DCH drivers put nvidia-smi in System32; older ones in Program Files\\NVIDIA Corporation\\NVSMI."""
    candidates = [shutil.which("nvidia-smi"),
                  os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvidia-smi.exe"),
                  os.path.join(os.environ.get("ProgramFiles", r"C:\Program Files"),
                               "NVIDIA Corporation", "NVSMI", "nvidia-smi.exe")]
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def probe_nvidia_smi() -> tuple[str | None, str | None]:
    """(query csv, banner) from nvidia-smi, None for each that could not run."""
    exe = find_nvidia_smi()
    if exe is None:
        return None, None
    outputs = []
    for args in (["--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"], []):
        try:
            p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30, check=False)
            outputs.append(p.stdout if p.returncode == 0 else None)
        except (OSError, subprocess.TimeoutExpired):
            outputs.append(None)
    return outputs[0], outputs[1]


def vc_runtime_installed() -> bool:
    """torch's DLLs need the MSVC 2015-2022 runtime; its installer records itself here."""
    try:
        import winreg
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\X64") as k:
            return winreg.QueryValueEx(k, "Installed")[0] == 1
    except OSError:
        return False


def wait_for_exit(pid: int, timeout_s: float) -> bool:
    """Wait for the running app to quit: Windows keeps its torch DLLs locked until then."""
    if os.name == "nt":
        import ctypes
        k32 = ctypes.windll.kernel32
        handle = k32.OpenProcess(0x00100000, False, pid)              # SYNCHRONIZE
        if not handle:
            return True                                               # already gone
        try:
            return k32.WaitForSingleObject(handle, int(timeout_s * 1000)) == 0
        finally:
            k32.CloseHandle(handle)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.5)
    return False


def make_runner(log_file) -> Runner:
    """Run a command, echo its output (the installer shows it in 'Show details') and keep it in the log."""
    def run(argv: list[str]) -> tuple[int, str]:
        log_file.write(f"\n$ {subprocess.list2cmdline(argv)}\n")
        try:
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 encoding="utf-8", errors="replace")
        except OSError as e:
            log_file.write(f"cannot start: {e}\n")
            return 127, ""
        out = []
        for line in p.stdout:
            out.append(line)
            log_file.write(line)
            print(line, end="", flush=True)
        rc = p.wait()
        log_file.write(f"[exit {rc}]\n")
        log_file.flush()
        return rc, "".join(out)
    return run


def ask_choice(probe: Callable[[], tuple[str | None, str | None]], ask: Callable[[str], str] = input) -> str:
    """Start-menu Repair: show what auto-detection recommends and let the user switch CPU <-> GPU builds."""
    auto = gpu_select.decide(*probe())
    print(f"Detected: {auto.reason}")
    others = ", ".join(c for c in gpu_select.CHOICES if c not in ("auto", auto.tag))
    answer = ask(f"Press Enter for {auto.tag} (recommended) or type {others}: ").strip().lower()
    return answer if answer in gpu_select.CHOICES else "auto"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Create or repair the TTS Turbo environment.")
    ap.add_argument("--root", type=Path, required=True, help="install root (the folder holding runtime\\uv.exe)")
    ap.add_argument("--gpu", choices=gpu_select.CHOICES,
                    help="torch build; auto reads nvidia-smi (default; with --pause the user is asked)")
    ap.add_argument("--clean", action="store_true", help="recreate the environment from scratch")
    ap.add_argument("--force", action="store_true", help="reinstall torch even if the build already matches")
    ap.add_argument("--wait-pid", type=int, help="wait for this process (the running app) to exit first")
    ap.add_argument("--relaunch", action="store_true", help="start the app when done")
    ap.add_argument("--pause", action="store_true", help="wait for Enter before closing (Start-menu use)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(errors="replace")      # a pipe to the installer is cp1252: never crash on uv's output
    layout = Layout(args.root.resolve())
    layout.log.parent.mkdir(parents=True, exist_ok=True)
    os.environ.update(UV_NO_CONFIG="1", UV_LINK_MODE="copy", UV_PYTHON_INSTALL_DIR=str(layout.root / "python-managed"))
    with open(layout.log, "a", encoding="utf-8") as log_file:
        def log(msg: str) -> None:
            print(msg, flush=True)
            log_file.write(msg + "\n")
        choice = args.gpu or (ask_choice(probe_nvidia_smi) if args.pause else "auto")
        log(f"=== TTS Turbo bootstrap {datetime.datetime.now():%Y-%m-%d %H:%M:%S}, gpu={choice} ===")
        if args.wait_pid and not wait_for_exit(args.wait_pid, 120):
            log("TTS Turbo is still running: close it and run Repair again.")
            code = EXIT_BUSY
        else:
            boot = Bootstrap(layout, make_runner(log_file), probe_nvidia_smi, log)
            if os.name == "nt" and not vc_runtime_installed():
                boot.report.warnings.append(f"Microsoft Visual C++ runtime not found; if torch fails to load, "
                                            f"install {VC_REDIST_URL}")
            code = boot.execute(sys.executable, choice, args.clean, args.force)
            if code == EXIT_OK and args.relaunch:
                subprocess.Popen([str(layout.gui)], creationflags=getattr(subprocess, "DETACHED_PROCESS", 0))
    if args.pause:
        input("Press Enter to close this window.")
    return code


if __name__ == "__main__":
    sys.exit(main())
