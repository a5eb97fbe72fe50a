"""Stage the Windows installer payload and compile TTS-Turbo-Setup-<version>.exe with makensis.

Runs on Linux (scripts/build_installer.sh) and on Windows (the CI workflow). Every downloaded file is checked
against the hash-pinned locks in installer/lock/ before makensis runs.

    python installer/build_payload.py                      # full payload from PyPI (~360 MB of wheels)
    python installer/build_payload.py --python-dir DIR     # also bundle a Windows CPython (offline install)
    python installer/build_payload.py --stub               # tiny payload with the same layout (tests)
    python installer/build_payload.py --relock             # re-resolve the locks (uv pip compile) first
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from email.parser import HeaderParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wheel_lock  # noqa: E402  (installer/ is not a package; this file also runs as a script)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NSI = HERE / "nsis" / "ttsturbo.nsi"
LOCKS = ("requirements-win.txt", "torch-cpu-win.txt", "triton-win.txt")
WHEELHOUSE_LOCKS = LOCKS[:2]                   # triton-windows is fetched online, only with a CUDA torch
TOP_LEVEL = ("runtime", "python", "wheelhouse", "app", "lock", "bootstrap", "assets", "manifest.json",
             "LICENSE.txt")                    # what the uninstaller removes (plus env, logs, state, python-managed)
WIN = ["--platform", "win_amd64", "--python-version", "3.12", "--implementation", "cp"]


def read_version(repo: Path = REPO) -> str:
    """pyproject [project].version, else engine/__init__.py __version__, else 0.1.0."""
    pyproject = repo / "pyproject.toml"
    if pyproject.exists():
        import tomllib
        version = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("version")
        if version:
            return version
    init = repo / "engine" / "__init__.py"
    if init.exists():
        m = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", init.read_text(encoding="utf-8"), re.MULTILINE)
        if m:
            return m.group(1)
    return "0.1.0"


def version_quad(version: str) -> str:
    """NSIS VIProductVersion wants exactly four numbers: '0.1.0rc1' -> '0.1.0.0'."""
    nums = re.findall(r"\d+", re.match(r"[\d.]*", version).group(0))[:4]
    return ".".join(nums + ["0"] * (4 - len(nums)))


def pip_env() -> dict[str, str]:
    """Keep a build machine's own pip config (local find-links, constraints) out of the Windows resolution."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_NO_INDEX")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def run(argv: list[str], **kw) -> None:
    print("+", " ".join(str(a) for a in argv), flush=True)
    subprocess.run([str(a) for a in argv], check=True, **kw)


def relock(lock_dir: Path) -> None:
    """Re-resolve the Windows locks on this machine (uv resolves for win_amd64 from any OS)."""
    common = ["--python-platform", "x86_64-pc-windows-msvc", "--python-version", "3.12", "--generate-hashes",
              "--no-config", "-q", "--custom-compile-command", "python installer/build_payload.py --relock"]
    compile_ = ["uv", "pip", "compile"]
    run([*compile_, "requirements-win.in", *common, "-o", "requirements-win.txt"], cwd=lock_dir)
    for name in ("torch-cpu-win", "triton-win"):      # shared pins (filelock, fsspec...) must agree with the base
        run([*compile_, f"{name}.in", *common, "-c", "requirements-win.txt", "-o", f"{name}.txt"], cwd=lock_dir)
    run([*compile_, "uv-win.in", *common, "-o", "uv-win.txt"], cwd=lock_dir)


def merged_requirements(pins: dict[str, wheel_lock.Pin], path: Path) -> Path:
    """One requirements file for pip download: the locks share pins (filelock, fsspec...) with equal versions."""
    lines = [f"{p.name}=={p.version} " + " ".join(f"--hash=sha256:{h}" for h in sorted(p.hashes))
             for p in pins.values()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def download(pins: dict[str, wheel_lock.Pin], cache: Path) -> list[Path]:
    """pip download the locked win_amd64/pure wheels into `cache` (kept between builds) and return them."""
    cache.mkdir(parents=True, exist_ok=True)
    req = merged_requirements(pins, cache.parent / "requirements-download.txt")
    run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *WIN, "--require-hashes",
         "-r", req, "-d", cache, "-q"], env=pip_env())
    wanted = []
    for whl in cache.glob("*.whl"):
        w = wheel_lock.WheelName.parse(whl.name)
        if w.name in pins and pins[w.name].version == w.version and wheel_lock.installs_on_windows(w):
            wanted.append(whl)
    return sorted(wanted)


def extract_uv(lock_dir: Path, cache: Path, dest: Path) -> str:
    """Take uv.exe out of PyPI's uv win_amd64 wheel (hash-checked); returns the uv version."""
    pins = wheel_lock.parse_locks(lock_dir / "uv-win.txt")
    (whl,) = [w for w in download(pins, cache) if wheel_lock.WheelName.parse(w.name).name == "uv"]
    if problems := wheel_lock.verify_wheels([whl], pins):
        raise SystemExit("\n".join(problems))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(whl) as z:
        (member,) = [n for n in z.namelist() if n.endswith(".data/scripts/uv.exe")]
        dest.write_bytes(z.read(member))
    return pins["uv"].version


def build_app_wheel(out: Path) -> Path:
    """`uv build --wheel` of the repo; the wheel must be pure Python (py3-none-any)."""
    if not (REPO / "pyproject.toml").exists():
        raise SystemExit("pyproject.toml not found: cannot build the tts-turbo wheel (pass --wheel PATH)")
    dist = out / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    run(["uv", "build", "--wheel", "--no-config", "--out-dir", dist, REPO])
    (whl,) = dist.glob("*.whl")
    return whl


def wheel_license(whl: Path) -> str:
    """'name version: licence' from the wheel's METADATA (License-Expression, License, or classifiers)."""
    with zipfile.ZipFile(whl) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = HeaderParser().parsestr(z.read(meta_name).decode("utf-8", "replace"))
    lic = meta.get("License-Expression") or ""
    if not lic:
        classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier", []) if c.startswith("License ::")]
        first_line = (meta.get("License") or "").strip().splitlines()[:1]
        lic = "; ".join(classifiers) or (first_line[0][:80] if first_line else "see the package")
    return f"  {meta['Name']} {meta['Version']}: {lic}"


def project_license(repo: Path = REPO) -> str:
    """LICENSE (or LICENSE.txt/.md) at the repo root, else pyproject's license field."""
    for name in ("LICENSE", "LICENSE.txt", "LICENSE.md", "COPYING"):
        if (repo / name).exists():
            return (repo / name).read_text(encoding="utf-8")
    if (repo / "pyproject.toml").exists():
        import tomllib
        lic = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8")).get("project", {}).get("license")
        text = lic.get("text") if isinstance(lic, dict) else lic
        if text:
            return f"TTS Turbo is licensed under {text}.\n"
    return "TTS Turbo: see the project's repository for its licence.\n"


def write_license(stage: Path, wheels: list[Path], uv_version: str) -> None:
    """The licence page: the project's licence, then every bundled component with its declared licence."""
    head = project_license()
    lines = [head.rstrip(), "", "Bundled third-party components (licences as declared by each package):",
             f"  uv {uv_version}: Apache-2.0 OR MIT"]
    lines += [wheel_license(w) for w in wheels]
    lines += ["", "At setup time the bootstrap may also download torch (BSD-3-Clause; CUDA builds include NVIDIA",
              "CUDA runtime libraries under the NVIDIA EULA) and triton-windows (MIT) from their indexes."]
    (stage / "LICENSE.txt").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


def copy_bootstrap(stage: Path) -> None:
    """bootstrap.cmd with CRLF line ends (cmd.exe mis-parses labels in LF-only files)."""
    dest = stage / "bootstrap"
    dest.mkdir(parents=True)
    for src in (HERE / "bootstrap").iterdir():
        if src.suffix == ".cmd":
            text = src.read_text(encoding="utf-8").replace("\r\n", "\n").replace("\n", "\r\n")
            (dest / src.name).write_bytes(text.encode("utf-8"))
        elif src.suffix == ".py":
            shutil.copy2(src, dest / src.name)
    shutil.copy2(HERE / "wheel_lock.py", dest / "wheel_lock.py")    # the bootstrap checks our wheel's sha256
    (stage / "assets").mkdir()
    shutil.copy2(HERE / "assets" / "ttsturbo.ico", stage / "assets" / "ttsturbo.ico")


def write_manifest(stage: Path, version: str, app_wheel: Path, uv_version: str) -> dict:
    wheels = sorted((stage / "wheelhouse").glob("*.whl"))
    manifest = {
        "name": "tts-turbo", "version": version, "python": "3.12",
        "python_bundled": (stage / "python" / "python.exe").exists(),
        "uv": {"version": uv_version, "sha256": wheel_lock.sha256_file(stage / "runtime" / "uv.exe")},
        "app_wheel": {"file": app_wheel.name, "sha256": wheel_lock.sha256_file(app_wheel)},
        "wheels": [{"file": w.name, "sha256": wheel_lock.sha256_file(w)} for w in wheels],
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def stage_full(stage: Path, out: Path, app_wheel: Path | None, python_dir: Path | None) -> tuple[Path, str]:
    lock_dir = HERE / "lock"
    cache = out / "downloads"
    uv_version = extract_uv(lock_dir, cache, stage / "runtime" / "uv.exe")
    pins = wheel_lock.parse_locks(*(lock_dir / n for n in WHEELHOUSE_LOCKS))
    wheels = download(pins, cache)
    (stage / "wheelhouse").mkdir()
    for w in wheels:
        shutil.copy2(w, stage / "wheelhouse" / w.name)
    (stage / "lock").mkdir()
    for n in LOCKS:
        shutil.copy2(lock_dir / n, stage / "lock" / n)
    app_wheel = app_wheel or build_app_wheel(out)
    if wheel_lock.WheelName.parse(app_wheel.name).platform != "any":
        raise SystemExit(f"{app_wheel.name} is not a pure-Python wheel")
    (stage / "app").mkdir()
    shutil.copy2(app_wheel, stage / "app" / app_wheel.name)
    if python_dir:
        if not (python_dir / "python.exe").exists():
            raise SystemExit(f"{python_dir} has no python.exe")
        shutil.copytree(python_dir, stage / "python")
    write_license(stage, wheels, uv_version)
    return stage / "app" / app_wheel.name, uv_version


def tiny_wheel(dest_dir: Path, name: str, version: str) -> Path:
    """A valid pure wheel with one module, for the stub payload."""
    dist = name.replace("-", "_")
    whl = dest_dir / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {f"{dist}/__init__.py": f'__version__ = "{version}"\n',
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense-Expression: MIT\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: build_payload\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for n, text in sorted(files.items()):
            z.writestr(zipfile.ZipInfo(n, date_time=(2020, 1, 1, 0, 0, 0)), text)
    return whl


def stage_stub(stage: Path, version: str) -> tuple[Path, str]:
    """Same layout as the full payload, a few KB in size: for compiling and listing the installer in tests."""
    (stage / "runtime").mkdir(parents=True)
    (stage / "runtime" / "uv.exe").write_bytes(b"MZ" + b"\0" * 62 + b"stub payload: uv.exe is not run\n")
    (stage / "wheelhouse").mkdir()
    dep = tiny_wheel(stage / "wheelhouse", "ttsturbo-payload-check", "1.0")
    (stage / "lock").mkdir()
    lock = f"ttsturbo-payload-check==1.0 \\\n    --hash=sha256:{wheel_lock.sha256_file(dep)}\n"
    for n in LOCKS:
        (stage / "lock" / n).write_text(lock if n == "requirements-win.txt" else "", encoding="utf-8")
    (stage / "app").mkdir()
    app = tiny_wheel(stage / "app", "tts-turbo", version)
    write_license(stage, [dep], "stub")
    return app, "stub"


def compile_installer(stage: Path, out: Path, version: str, makensis: str = "makensis") -> Path:
    exe = out / f"TTS-Turbo-Setup-{version}.exe"
    run([makensis, "-WX", "-V2", f"-DVERSION={version}", f"-DVERSION_QUAD={version_quad(version)}",
         f"-DPAYLOAD={stage}", f"-DOUTFILE={exe}", NSI])
    return exe


def build(out: Path, *, stub: bool = False, app_wheel: Path | None = None, python_dir: Path | None = None,
          makensis: str | None = "makensis") -> tuple[Path, Path | None]:
    """Stage the payload under out/payload, verify it, and compile the installer (unless makensis is None)."""
    version = read_version()
    stage = out / "payload"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    copy_bootstrap(stage)
    app, uv_version = stage_stub(stage, version) if stub else stage_full(stage, out, app_wheel, python_dir)
    write_manifest(stage, version, app, uv_version)
    problems = wheel_lock.verify_wheelhouse(stage / "wheelhouse",
                                            wheel_lock.parse_locks(*(stage / "lock" / n for n in WHEELHOUSE_LOCKS)))
    if problems:
        raise SystemExit("payload check failed:\n  " + "\n  ".join(problems))
    return stage, compile_installer(stage, out, version, makensis) if makensis else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "installer")
    ap.add_argument("--stub", action="store_true", help="tiny payload with the real layout (tests)")
    ap.add_argument("--wheel", type=Path, help="use this tts-turbo wheel instead of building one")
    ap.add_argument("--python-dir", type=Path, help="Windows CPython 3.12 folder (with python.exe) to bundle")
    ap.add_argument("--relock", action="store_true", help="re-resolve installer/lock/*.txt first")
    ap.add_argument("--makensis", default="makensis", help="makensis executable")
    ap.add_argument("--no-compile", action="store_true", help="stage and verify only")
    args = ap.parse_args(argv)
    if args.relock:
        relock(HERE / "lock")
    t0 = time.monotonic()
    stage, exe = build(args.out.resolve(), stub=args.stub, app_wheel=args.wheel, python_dir=args.python_dir,
                       makensis=None if args.no_compile else args.makensis)
    print(f"payload: {stage}")
    if exe:
        print(f"installer: {exe} ({exe.stat().st_size / 2**20:.1f} MiB) in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
