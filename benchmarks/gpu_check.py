"""GPU check: every training cell's full setting for a bounded number of steps on CUDA, CPU/GPU agreement, throughput.

Runs on a bare GPU machine that has only torch, torchvision, numpy, scipy, scikit-learn, scikit-image, opencv and
pandas (no pip there)::

    PYTHONPATH=. python3 benchmarks/gpu_check.py [--max-steps 200] [--out benchmarks/results/gpu_check.md]

Each method contributes one section; a section that fails is reported in the table and does not stop the others.
Exit status is non-zero when a loss did not fall or CPU and GPU disagree.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("WORKBENCH_CACHE", tempfile.mkdtemp(prefix="wb-gpu-check-"))

from workbench.data import load_digits  # noqa: E402
from workbench.models import ConvVAE, SmallCNN  # noqa: E402
from workbench.models.pretrained import classifier_step, digits_classifier, digits_vae, vae_step  # noqa: E402
from workbench.relabel import RelabelDistillation  # noqa: E402
from workbench.train import synchronize, training_throughput  # noqa: E402


def section_relabel(device: torch.device, max_steps: int) -> list[dict]:
    rows = []
    train = load_digits(16, "train")
    rows.append({"check": "relabel: teacher CNN (full setting)",
                 **training_throughput(SmallCNN(1, 10, width=16), train.loader(64), classifier_step,
                                       max_steps=max_steps, lr=3e-3, device=device)})
    rows.append({"check": "relabel: VAE (full setting)",
                 **training_throughput(ConvVAE(1, 16, latent_dim=16), train.loader(64), vae_step,
                                       max_steps=max_steps, lr=2e-3, device=device)})
    teacher, vae = digits_classifier(device=device, progress=False), digits_vae(device=device, progress=False)
    x = load_digits(16, "test").images[:100]
    # CPU/GPU agreement on a small case: same seed, fixed sigma -> the maps must agree
    cpu = RelabelDistillation(teacher.cpu(), vae.cpu(), n_samples=500, sigma=1.0, residual=True).attribute(x[:4])
    teacher, vae = teacher.to(device), vae.to(device)
    gpu = RelabelDistillation(teacher, vae, n_samples=500, sigma=1.0, residual=True).attribute(x[:4].to(device))
    corr = torch.corrcoef(torch.stack([cpu.flatten(), gpu.cpu().flatten()]))[0, 1].item()
    rows.append({"check": "relabel: CPU vs GPU map correlation (4 digits, N=500)", "agreement": corr,
                 "ok": corr > 0.95})
    for batch in (1, 100):
        for student in ("ridge", "sgd"):
            rld = RelabelDistillation(teacher, vae, n_samples=1000, student=student, residual=True, batch_size=65536)
            rld.attribute(x[:batch].to(device))  # warm-up
            synchronize(device)
            t0 = time.perf_counter()
            repeats = 3
            for _ in range(repeats):
                rld.attribute(x[:batch].to(device))
            synchronize(device)
            per_s = repeats * batch / (time.perf_counter() - t0)
            rows.append({"check": f"relabel: RLD-{student} N=1000, batch {batch}", "items_per_s": per_s,
                         "unit": "explanations/s"})
    return rows


def section_from_benchmark(method: str, label: str):
    """A method's ``gpu_check(device, max_steps) -> {loss_first, loss_last, items_per_s, ...}`` (or a list of such
    rows) from its benchmark script ``benchmarks/<method>.py``: GPU checks are benchmark code, not library code."""

    def run(device: torch.device, max_steps: int) -> list[dict]:
        result = importlib.import_module(f"benchmarks.{method}").gpu_check(device, max_steps)
        rows = result if isinstance(result, list) else [result]
        return [{**r, "check": r.get("check", label)} for r in rows]

    return run


def section_batch(device: torch.device, max_steps: int) -> list[dict]:
    """Explanations/s of RLD on 256 digits in-process and through Ray Data (one worker on this GPU): the Ray path's
    share of the in-process throughput (target >= 80 %). Skipped when ray is not installed (bare GPU boxes)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return [{"check": "batch: Ray vs in-process", "error": "skipped: ray not installed"}]
    from workbench.batch import ModelSpec, explain_dataset

    rates = {}
    for engine in ("local", "ray"):
        out = Path(tempfile.mkdtemp(prefix=f"wb-gpu-batch-{engine}-")) / "out"
        t0 = time.perf_counter()
        summary = explain_dataset("digits", ModelSpec("digits_classifier"), ["relabel"], out, shard_size=128,
                                  limit=256, engine=engine, workers=1, device=str(device), progress=False)
        rates[engine] = int(summary["rows"].sum()) / (time.perf_counter() - t0)
    return [{"check": f"batch: RLD on 256 digits, {k}", "items_per_s": v, "unit": "explanations/s"}
            for k, v in rates.items()] + [{"check": "batch: Ray / in-process throughput",
                                           "agreement": rates["ray"] / rates["local"],
                                           "ok": rates["ray"] >= 0.8 * rates["local"]}]


SECTIONS = {
    "relabel": section_relabel,
    "whitening": section_from_benchmark("whitening", "whitening: detector"),
    "horkd": section_from_benchmark("horkd", "horkd: three-stream training"),
    "tracking": section_from_benchmark("tracking", "tracking: feature CNN"),
    "stdt": section_from_benchmark("stdt", "stdt: bag-of-patches ViT"),
    "scorecard": section_from_benchmark("scorecard", "scorecard: 256 digits"),
    "batch": section_batch,
}


def table(rows: list[dict], title: str) -> tuple[str, bool]:
    """The Markdown table of ``rows`` (one line per check, in order) and whether any check failed."""
    failed = False
    lines = [title, "", "| check | loss first | loss last | loss fell | throughput | note |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        fell = ""
        if "loss_first" in r:
            ok = r["loss_last"] < r["loss_first"]
            fell = "yes" if ok else "NO"
            failed |= not ok
        if r.get("ok") is False:
            failed = True
        thr = f"{r['items_per_s']:.4g} {r.get('unit', 'items/s')}" if "items_per_s" in r else ""
        note = r.get("error", "") or (f"agreement {r['agreement']:.4f}" if "agreement" in r else r.get("note", ""))
        lf = f"{r['loss_first']:.4g}" if "loss_first" in r else ""
        ll = f"{r['loss_last']:.4g}" if "loss_last" in r else ""
        lines.append(f"| {r['check']} | {lf} | {ll} | {fell} | {thr} | {note} |")
    return "\n".join(lines) + "\n", failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--only", nargs="*", default=list(SECTIONS))
    parser.add_argument("--out", default="benchmarks/results/gpu_check.md")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    warnings.simplefilter("ignore", UserWarning)  # degenerate-explanation warnings would flood the table's output
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else platform.processor() or "CPU"
    rows: list[dict] = []
    for key in args.only:
        t0 = time.perf_counter()
        try:
            rows += SECTIONS[key](device, args.max_steps)
        except ModuleNotFoundError as exc:
            rows.append({"check": f"{key}: skipped", "error": f"not built yet ({exc.name})"})
        except Exception as exc:  # report and go on: one broken section must not hide the others
            traceback.print_exc()
            rows.append({"check": f"{key}: FAILED", "error": f"{type(exc).__name__}: {exc}"[:200], "ok": False})
        print(f"[{key}] {time.perf_counter() - t0:.1f} s", flush=True)
    text, failed = table(rows, f"# GPU check on {name} (torch {torch.__version__}, max_steps={args.max_steps})")
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
