"""The bootstrap's stages against a scripted runner: which uv commands run, and what the user is told."""
import json
from pathlib import Path

import pytest

import build_payload
import tts_bootstrap as tb
import wheel_lock

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nvidia_smi"
RTX5090 = ((FIXTURES / "rtx5090_query.txt").read_text(), None)
NO_GPU = (None, None)


class FakeWindows:
    """Plays uv, the venv's python and tts-turbo: records argv, tracks the installed torch."""

    def __init__(self, layout, torch=None, gpu_download_ok=True, doctor_cuda="auto", arch_supported=True):
        self.L, self.torch, self.gpu_download_ok, self.doctor_cuda = layout, torch, gpu_download_ok, doctor_cuda
        self.arch_supported = arch_supported
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[0] == str(self.L.env_python):
            return (0, self.torch + "\n") if self.torch else (1, "PackageNotFoundError: torch\n")
        if argv[0] == str(self.L.cli):
            cuda = tb.expected_cuda(self.torch) if self.doctor_cuda == "auto" else self.doctor_cuda
            return 0, "loading...\n" + json.dumps({"torch_version": self.torch, "cuda_version": cuda,
                                                  "cuda_available": bool(cuda), "gpu_name": "NVIDIA GeForce RTX 5090",
                                                  "compute_capability": "12.0", "triton_available": bool(cuda),
                                                  "arch_supported": self.arch_supported if cuda else None})
        if "--index-url" in argv:
            if not self.gpu_download_ok:
                return 1, "error: Failed to fetch: `https://download.pytorch.org/whl/cu128/torch/`\n"
            self.torch = argv[-1].split("==")[1]
        elif "torch-cpu-win.txt" in " ".join(argv):
            self.torch = "2.11.0"
        return 0, ""

    def uv_commands(self):
        return [" ".join(a[1:]) for a in self.calls if a[0] == str(self.L.uv)]


@pytest.fixture
def layout(tmp_path):
    L = tb.Layout(tmp_path)
    (tmp_path / "app").mkdir()
    whl = build_payload.tiny_wheel(tmp_path / "app", "tts-turbo", "0.1.0")
    app_wheel = {"file": whl.name, "sha256": wheel_lock.sha256_file(whl)}
    (tmp_path / "manifest.json").write_text(json.dumps({"app_wheel": app_wheel}))
    return L


def run(layout, fake, gpu, choice="auto", force=False):
    lines = []
    code = tb.Bootstrap(layout, fake, lambda: gpu, lines.append).execute("C:/py/python.exe", choice, False, force)
    return code, lines


def test_fresh_install_on_rtx5090_gets_cu128_and_triton(layout):
    fake = FakeWindows(layout)
    code, lines = run(layout, fake, RTX5090)
    assert code == tb.EXIT_OK
    cmds = fake.uv_commands()
    assert cmds[0].startswith("venv --clear --python C:/py/python.exe")
    assert "--no-index" in cmds[1] and "requirements-win.txt" in cmds[1] and "--require-hashes" in cmds[1]
    assert "--index-url https://download.pytorch.org/whl/cu128" in cmds[2] and cmds[2].endswith("torch==2.11.0+cu128")
    assert "triton-win.txt" in cmds[3]
    assert "--no-deps" in cmds[4] and "tts_turbo-0.1.0-py3-none-any.whl" in cmds[4]
    state = json.loads(layout.state.read_text())
    assert (state["build"], state["torch"], state["exit_code"]) == ("cu128", "2.11.0+cu128", 0)
    assert lines[-1] == f"Log: {layout.log}"
    assert "ready on the GPU: NVIDIA GeForce RTX 5090" in layout.summary.read_text()


def test_offline_gpu_download_falls_back_to_bundled_cpu_torch(layout):
    fake = FakeWindows(layout, gpu_download_ok=False)
    code, _ = run(layout, fake, RTX5090)
    assert code == tb.EXIT_OK and fake.torch == "2.11.0"
    assert any("torch-cpu-win.txt" in c and "--no-index" in c for c in fake.uv_commands())
    assert not any("triton-win.txt" in c for c in fake.uv_commands())  # no triton for a CPU torch
    summary = layout.summary.read_text()
    assert summary.startswith("TTS Turbo is ready on the CPU.") and "Repair" in summary


def test_repair_keeps_a_matching_torch(layout):
    layout.env_python.parent.mkdir(parents=True)
    layout.env_python.write_text("")
    fake = FakeWindows(layout, torch="2.11.0+cu128")
    assert run(layout, fake, RTX5090)[0] == tb.EXIT_OK
    assert not any(c.startswith("venv") or "torch==" in c for c in fake.uv_commands())


def test_switch_to_cpu_from_the_repair_menu(layout):
    fake = FakeWindows(layout, torch="2.11.0+cu128")
    assert run(layout, fake, RTX5090, choice="cpu")[0] == tb.EXIT_OK
    assert fake.torch == "2.11.0"
    assert any(c.startswith("pip uninstall") and "triton-windows" in c for c in fake.uv_commands())


def test_no_gpu_installs_cpu_offline(layout):
    fake = FakeWindows(layout)
    assert run(layout, fake, NO_GPU)[0] == tb.EXIT_OK
    assert not any("--index-url" in c for c in fake.uv_commands())
    assert json.loads(layout.state.read_text())["build"] == "cpu"


def test_silent_cpu_torch_on_a_cuda_pin_is_an_error(layout):
    """The Invoke-launcher pitfall: a CUDA pin that ends up as a CPU torch must not pass as success."""
    fake = FakeWindows(layout, doctor_cuda=None)
    code, _ = run(layout, fake, RTX5090)
    assert code == tb.EXIT_DOCTOR
    assert "expected 12.8" in layout.summary.read_text()


def test_gpu_without_kernels_in_the_build_is_a_warning(layout):
    code, _ = run(layout, FakeWindows(layout, arch_supported=False), RTX5090, choice="cu126")
    assert code == tb.EXIT_OK
    assert "has no kernels for NVIDIA GeForce RTX 5090" in layout.summary.read_text()


def test_cpu_summary_names_the_cpu_build(layout):
    run(layout, FakeWindows(layout), NO_GPU)
    assert layout.summary.read_text().splitlines()[2] == "torch 2.11.0 (CPU build)"


def test_damaged_app_wheel_stops_with_a_clear_error(layout):
    next((layout.root / "app").glob("*.whl")).write_bytes(b"damaged")
    code, _ = run(layout, FakeWindows(layout), NO_GPU)
    assert code == tb.EXIT_APP
    assert "damaged" in layout.summary.read_text() and str(layout.log) in layout.summary.read_text()


@pytest.mark.parametrize("version, tag, cuda", [("2.11.0+cu128", "cu128", "12.8"), ("2.11.0+cu126", "cu126", "12.6"),
                                                ("2.11.0", "cpu", None), ("2.11.0+cpu", "cpu", None)])
def test_torch_tags(version, tag, cuda):
    assert (tb.torch_tag(version), tb.expected_cuda(version)) == (tag, cuda)


def test_last_json_object_skips_log_noise():
    assert tb.last_json_object('warn {not json}\n{"a": {"b": 1}}\n') == {"a": {"b": 1}}
    assert tb.last_json_object("no json here") is None


@pytest.mark.parametrize("answer, choice", [("", "auto"), ("cpu", "cpu"), (" CU126 ", "cu126"), ("gpu", "auto")])
def test_repair_menu_asks_for_the_build(answer, choice, capsys):
    prompts = []
    got = tb.ask_choice(lambda: RTX5090, lambda prompt: prompts.append(prompt) or answer)
    assert got == choice
    assert "RTX 5090 (sm_120)" in capsys.readouterr().out
    assert prompts == ["Press Enter for cu128 (recommended) or type cpu, cu126: "]


def test_cli_arguments():
    a = tb.parse_args(["--root", "C:/x", "--gpu", "cu126", "--wait-pid", "42", "--relaunch", "--pause"])
    assert (a.gpu, a.wait_pid, a.relaunch, a.pause) == ("cu126", 42, True, True)
    assert tb.parse_args(["--root", "C:/x"]).gpu is None                # auto, or asked when --pause
    with pytest.raises(SystemExit):
        tb.parse_args(["--root", "C:/x", "--gpu", "cu999"])
