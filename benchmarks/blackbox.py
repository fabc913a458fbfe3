"""Explain a real black box: dlib's face-recognition network as a k-way identity classifier, on real face photos.

Data: the development faces ``../shared/realdata/faces_identity`` (``idNN/imgN.jpg``, 10 people, 55 photos; the
script says so and stops when the folder is absent). Every photo becomes a 64 px aligned face crop
(``workbench.models.face_id.load_identity_folder``: dlib's detector, 68 landmarks, ``get_face_chip``). For each
person the first half of the photos (at least one) is enrolled into a :class:`~workbench.models.face_id.
FaceIdentifier` (dlib's 128-d descriptors, one mean per person, logits = -distance / 0.1), the others are held out;
``--n-faces`` held-out crops (round-robin over the people) are explained, each for the class the identifier predicts.

Explainers, all built by ``make_explainer`` on the same :class:`~workbench.explainers.BlackBox` (gradients cannot
reach dlib's C++ network, so IG / Saliency / Grad-CAM are refused, which the table records): RLD (default
configuration; its sigma search probes ``--probe-samples`` x ``--search-steps`` extra queries), lime, captum_lime and
kernel_shap at the same sample budget N (``--n-samples``), Captum occlusion (16 px windows, stride 8: ~50 queries),
all on the same ``--cell``-pixel grid of superpixels / regions. RLD's VAE is a 64 px face VAE trained by
``train_folder_vae`` on the *enrolment* crops and their mirror images only (never on the explained faces), cached
outside the repo (``$WORKBENCH_CACHE`` or ``~/.cache/distill-workbench``).

Columns: deletion AUC (pixels to zeros) and insertion AUC (from blur) of the explained identity's probability, by
``workbench.evaluation.scorecard`` with ``--metric-step`` pixels per step (mean ± std over the faces); seconds per
explanation (one face at a time, this machine's CPU) and its ratio to lime's; queries of the black box per
explanation (counted by the BlackBox). ROAD and MaxSensitivity are not run here: MaxSensitivity re-explains every
face 200 times, hours of dlib queries on a CPU.

    WORKBENCH_CACHE=/tmp/wbcache python benchmarks/blackbox.py              # 20 faces, N = 48 (~28 min, 2 busy cores)
    python benchmarks/blackbox.py --n-faces 4 --n-samples 32 --out /tmp/bb  # a quick look
    python benchmarks/blackbox.py --half tune --n-faces 10 --baselines lime,kernel_shap \
        --variants "default,fill mean,fill mean + mask + alpha 0.01" --out /tmp/tune  # compare RLD strategies

``--variants`` (issue 26) replaces the RLD row by one row per named strategy (:data:`STRATEGIES`: a fill, a
student's features, its ridge alpha); ``--half tune`` / ``report`` explains only the held-out faces of the first /
the other five people (every person is still enrolled), so a strategy can be chosen on one half and reported on the
other; a run over all people adds a table by half.

Writes ``<out>.md`` and ``<out>.csv`` (default ``benchmarks/results/blackbox``). Development numbers: the photos are
the project's development faces, not a test set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import platform
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.cache import cache_dir  # noqa: E402
from workbench.evaluation import scorecard  # noqa: E402
from workbench.evaluation.faithfulness import Deletion, Insertion  # noqa: E402
from workbench.explainers import make_explainer  # noqa: E402
from workbench.models.face_id import FaceIdentifier, FaceSet, load_identity_folder  # noqa: E402
from workbench.relabel import GridRegions, RelabelWarning, train_folder_vae  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = 64
EXPLAINERS = ("relabel", "lime", "captum_lime", "kernel_shap", "occlusion")
#: the anchors every run measures (the issue's target compares RLD with them); ``--baselines`` adds the others
ANCHORS = ("lime", "kernel_shap")
#: RLD strategies for ``--variants`` (issue 26): name -> RelabelDistillation settings on top of the default
STRATEGIES: dict[str, dict] = {
    "default": {},
    "no residual": {"residual": False},
    "times input": {"map_mode": "times_input"},
    "fill prior": {"fill": "prior"},
    "fill blur": {"fill": "blur"},
    "fill mean": {"fill": "mean"},
    "change": {"features": "change"},
    "fill prior + change": {"fill": "prior", "features": "change"},
    "fill blur + change": {"fill": "blur", "features": "change"},
    "fill mean + change": {"fill": "mean", "features": "change"},
    "fill prior + mask": {"fill": "prior", "features": "mask"},
    "fill mean + mask": {"fill": "mean", "features": "mask"},
    "fill mean + change + alpha 0.01": {"fill": "mean", "features": "change", "ridge_alpha": 0.01},
    "fill mean + mask + alpha 0.01": {"fill": "mean", "features": "mask", "ridge_alpha": 0.01},
    "fill mean + mask + alpha 0.01 + sigma 1": {"fill": "mean", "features": "mask", "ridge_alpha": 0.01,
                                                "sigma": 1.0},
}
#: ``--half``: the people whose held-out faces are explained (tune on the first five, report on the other five)
HALVES = {"all": slice(None), "tune": slice(0, 5), "report": slice(5, None)}
TUNE_PEOPLE, REPORT_PEOPLE = "id01-id05", "id06-id10"
GRADIENT_EXPLAINERS = ("saliency", "integrated_gradients", "gradcam")


def realdata_folder(name: str) -> Path | None:
    """``shared/realdata/<name>`` beside the checkout (or beside a folder above a worktree), if present."""
    return next((p / "shared" / "realdata" / name for p in REPO.parents if (p / "shared" / "realdata" / name).is_dir()),
                None)


def split(faces: FaceSet, n_faces: int, half: str = "all") -> tuple[list[int], list[int]]:
    """Enrolment indices (the first half of each person's photos, at least one) and ``n_faces`` held-out ones,
    taken round-robin over the people of ``half`` (:data:`HALVES`; every person is enrolled whatever the half)."""
    enrol, held = [], []
    for k in range(len(faces.names)):
        idx = (faces.people == k).nonzero().flatten().tolist()
        n = max(1, len(idx) // 2)
        enrol += idx[:n]
        held.append(idx[n:])
    held = held[HALVES[half]]
    order = [h[i] for i in range(max(map(len, held))) for h in held if i < len(h)]
    return enrol, order[:n_faces]


def face_vae(crops: torch.Tensor, steps: int) -> torch.nn.Module:
    """The 64 px face VAE for RLD, trained on ``crops`` and their mirror images, cached by the crops' hash."""
    data = torch.cat([crops, crops.flip(-1)])
    key = hashlib.sha256(data.numpy().tobytes()).hexdigest()[:12]
    start = time.perf_counter()
    vae = train_folder_vae(data, SIZE, latent_dim=32, width=32, steps=steps, batch_size=32,
                           checkpoint_dir=cache_dir() / f"blackbox_face_vae_{key}", checkpoint_every=100)
    print(f"face VAE: {len(data)} crops, {steps} steps, {time.perf_counter() - start:.0f} s", flush=True)
    return vae


def build(name: str, box: FaceIdentifier, vae: torch.nn.Module, args: argparse.Namespace):
    """The explainer of row ``name``: ``relabel``, ``relabel[<strategy>]`` (:data:`STRATEGIES`) or a baseline."""
    if name.startswith("relabel"):
        strategy = STRATEGIES[name[len("relabel["):-1]] if name != "relabel" else {}
        return make_explainer("relabel", box, vae=vae, n_samples=args.n_samples, probe_samples=args.probe_samples,
                              search_steps=args.search_steps, regions=GridRegions(args.cell), **strategy)
    if name == "occlusion":
        return make_explainer(name, box, window=16, stride=8)
    return make_explainer(name, box, n_samples=args.n_samples, cell=args.cell)


def explain_all(box: FaceIdentifier, vae: torch.nn.Module, x: torch.Tensor, t: torch.Tensor,
                args: argparse.Namespace) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, float]]]:
    """Maps of every explainer, one face at a time, with seconds and black-box queries per explanation."""
    maps, cost = {}, {}
    for name in args.explainers:
        explainer = build(name, box, vae, args)
        box.n_queries, parts, statuses = 0, [], []
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RelabelWarning)
            for i in range(x.shape[0]):
                parts.append(explainer.attribute(x[i:i + 1], target=t[i:i + 1]))
                statuses += explainer.last_status
        seconds = (time.perf_counter() - start) / x.shape[0]
        maps[name] = torch.cat(parts)
        degenerate = sum(s in ("no_flip", "all_flip") for s in statuses)
        cost[name] = {"seconds": seconds, "queries": box.n_queries / x.shape[0], "degenerate": degenerate}
        print(f"{name}: {seconds:.1f} s/explanation, {cost[name]['queries']:.0f} queries, {degenerate} degenerate",
              flush=True)
    return maps, cost


def precomputed(maps: torch.Tensor):
    """An explain_fn that hands the scorecard maps already made (and timed) by :func:`explain_all`."""
    return lambda model, inputs, targets: maps


def refusals(box: FaceIdentifier) -> list[str]:
    """What each gradient explainer says when asked to explain the black box."""
    out = []
    for name in GRADIENT_EXPLAINERS:
        try:
            make_explainer(name, box)
            out.append(f"{name}: NOT refused")
        except TypeError as exc:
            out.append(f"{name}: refused (TypeError: {str(exc).split(':')[0].split(', but')[0]})")
    return out


def table(cards: pd.DataFrame, cost: dict[str, dict[str, float]]) -> pd.DataFrame:
    ok = cards[cards.status == "ok"]
    stats = ok.groupby(["explainer", "metric"]).score.agg(["mean", "std"]).unstack("metric")
    rows = []
    for name in cost:
        c = cost[name]
        rows.append({"explainer": name, "deletion_mean": stats.loc[name, ("mean", "Deletion")],
                     "deletion_std": stats.loc[name, ("std", "Deletion")],
                     "insertion_mean": stats.loc[name, ("mean", "Insertion")],
                     "insertion_std": stats.loc[name, ("std", "Insertion")], "seconds": c["seconds"],
                     "vs_lime": c["seconds"] / cost["lime"]["seconds"], "queries": c["queries"],
                     "degenerate": c["degenerate"], "failed_rows": int((cards[cards.explainer == name].status
                                                                        != "ok").sum())})
    return pd.DataFrame(rows)


def by_half(cards: pd.DataFrame, people: torch.Tensor) -> list[str]:
    """Markdown rows: each explainer's mean deletion / insertion AUC on the faces of the tuning people (the first
    five) and of the report people (the other five), and on how many report faces its deletion AUC is at most
    lime's; empty when the faces are of one half only."""
    ok = cards[cards.status == "ok"].assign(half=lambda d: ["tune" if people[i] < 5 else "report" for i in d.image])
    if ok.half.nunique() < 2:
        return []
    mean = ok.groupby(["explainer", "metric", "half"]).score.mean()
    deletion = ok[(ok.metric == "Deletion") & (ok.half == "report")].pivot(index="image", columns="explainer",
                                                                           values="score")
    n_report = len(deletion)
    lines = ["| explainer | deletion, tune half ↓ | deletion, report half ↓ | insertion, tune half ↑ | "
             "insertion, report half ↑ | report faces with deletion ≤ lime's |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in dict.fromkeys(cards.explainer):
        wins = int((deletion[name] <= deletion["lime"]).sum())
        lines.append(f"| {name} | {mean[name, 'Deletion', 'tune']:.3f} | {mean[name, 'Deletion', 'report']:.3f} | "
                     f"{mean[name, 'Insertion', 'tune']:.3f} | {mean[name, 'Insertion', 'report']:.3f} | "
                     f"{wins} / {n_report} |")
    return lines


def strategy_lines(df: pd.DataFrame) -> list[str]:
    """What each ``relabel[<strategy>]`` row changes from RLD's default (:data:`STRATEGIES`); empty without them."""
    names = [n[len("relabel["):-1] for n in df.explainer if n.startswith("relabel[")]
    if not names:
        return []
    said = [f"`{n}`: " + (", ".join(f"{k}={v!r}" for k, v in STRATEGIES[n].items()) or "RLD's default") for n in names]
    return ["RLD strategies (settings changed from `RelabelConfig()`, issue 26; `fill` is what a region not kept "
            "from the image shows, `features` what the student sees): " + "; ".join(said) + ".", ""]


def report(df: pd.DataFrame, args: argparse.Namespace, context: dict[str, str], refused: list[str],
           halves: list[str]) -> str:
    deletion = df.set_index("explainer").deletion_mean
    lime, shap = deletion["lime"], deletion["kernel_shap"]
    verdict = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        "# Explaining a real black box: dlib's face recognition as an identity classifier",
        "",
        f"**Development numbers** (`../shared/realdata/faces_identity`, the project's development faces, not a test "
        f"set). Written by `python benchmarks/blackbox.py {' '.join(sys.argv[1:])}` on {context['date']} "
        f"({context['machine']}).",
        "",
        f"{context['data']}",
        "",
        "| explainer | deletion AUC ↓ | insertion AUC ↑ | s / explanation | × lime | queries / explanation | "
        "degenerate |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in df.itertuples():
        lines.append(f"| {r.explainer} | {r.deletion_mean:.3f} ± {r.deletion_std:.3f} | {r.insertion_mean:.3f} ± "
                     f"{r.insertion_std:.3f} | {r.seconds:.1f} | {r.vs_lime:.2f} | {r.queries:.0f} | "
                     f"{r.degenerate} |")
    lines.append("")
    for name, rld in deletion[deletion.index.str.startswith("relabel")].items():
        lines += [f"Target (issue 26), {name}: deletion AUC ≤ lime's ({rld:.3f} vs {lime:.3f}): "
                  f"{verdict(rld <= lime)}; ≤ KernelShap's ({rld:.3f} vs {shap:.3f}): {verdict(rld <= shap)}.", ""]
    lines += [
        f"Settings: N = {args.n_samples} samples for RLD, lime, captum_lime and kernel_shap; RLD's sigma search "
        f"{args.search_steps} probes of {args.probe_samples} samples on top (counted in its queries); all on a "
        f"{args.cell}-pixel grid ({(SIZE // args.cell) ** 2} superpixels / regions); occlusion 16 px windows, "
        f"stride 8; deletion / insertion {args.metric_step} pixels per step (scorecard's `Deletion` / `Insertion`, "
        "the explained identity's softmax probability). Seconds are one face at a time on this machine's CPU, "
        "shared with other jobs; the × lime ratio is the comparable number. Degenerate: RLD explanations where no "
        "(or every) sample changed the identity (zero map, scored as such).",
        "",
        *strategy_lines(df),
        *([f"Split by person (issue 26: a strategy is chosen on the tuning half, {TUNE_PEOPLE}, and reported on the "
           f"other five, {REPORT_PEOPLE}, whose faces were not looked at while choosing):", "", *halves, ""]
          if halves else []),
        "Gradient explainers on the black box (refused when built): " + "; ".join(refused) + ".",
        "",
        "ROAD and MaxSensitivity are not in this table: MaxSensitivity re-explains every face 200 times, hours of "
        "dlib queries on a CPU.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-faces", type=int, default=20)
    parser.add_argument("--n-samples", type=int, default=48)
    parser.add_argument("--probe-samples", type=int, default=8)
    parser.add_argument("--search-steps", type=int, default=4)
    parser.add_argument("--cell", type=int, default=16)
    parser.add_argument("--metric-step", type=int, default=512)
    parser.add_argument("--vae-steps", type=int, default=150)
    parser.add_argument("--variants", default="",
                        help=f"comma-separated RLD strategies, rows instead of the default RLD's: "
                             f"{', '.join(STRATEGIES)}")
    parser.add_argument("--baselines", default=",".join(EXPLAINERS[1:]),
                        help=f"comma-separated baselines (at least {', '.join(ANCHORS)}; default all)")
    parser.add_argument("--half", choices=tuple(HALVES), default="all",
                        help="whose held-out faces: all people, the first five (tune) or the other five (report)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "blackbox"))
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(STRATEGIES))
    if unknown:
        parser.error(f"unknown --variants {unknown}; choose from {list(STRATEGIES)}")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    if set(ANCHORS) - set(baselines) or set(baselines) - set(EXPLAINERS[1:]):
        parser.error(f"--baselines must include {list(ANCHORS)} and name only {list(EXPLAINERS[1:])}")
    rld = [f"relabel[{v}]" for v in variants] if variants else ["relabel"]
    args.explainers = rld + [b for b in EXPLAINERS[1:] if b in baselines]
    folder = realdata_folder("faces_identity")
    if folder is None:
        print("skipped: ../shared/realdata/faces_identity is absent (the development faces); nothing written")
        return
    torch.manual_seed(0)
    faces = load_identity_folder(folder, SIZE)
    enrol, held = split(faces, args.n_faces, args.half)
    box = FaceIdentifier.enrol(faces.crops[enrol], faces.people[enrol], faces.names)
    x, truth = faces.crops[held], faces.people[held]
    t = box(x).argmax(1)
    accuracy = float((t == truth).float().mean())
    vae = face_vae(faces.crops[enrol], args.vae_steps)
    maps, cost = explain_all(box, vae, x, t, args)
    cards = scorecard(box, x, t, {name: precomputed(m) for name, m in maps.items()},
                      metrics=[Deletion(args.metric_step), Insertion(args.metric_step)], progress=False)
    df = table(cards, cost)
    who = {"all": "all 10 people", "tune": "the first 5 people (the tuning half)",
           "report": "the other 5 people (the report half, not tuned on)"}[args.half]
    context = {"date": dt.date.today().isoformat(), "machine": f"{platform.machine()}, "
               f"{torch.get_num_threads()} torch threads",
               "data": f"{len(faces.names)} people, {len(faces.files)} photos ({len(faces.skipped)} without a face "
                       f"found); {len(enrol)} enrolled, {len(x)} held-out 64 px face crops of {who} explained "
                       f"(the identifier names {accuracy:.0%} of them correctly; each is explained for the identity it "
                       f"predicts). "
                       f"RLD's VAE: {len(enrol)} enrolment crops and their mirror images, {args.vae_steps} steps."}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".md").write_text(report(df, args, context, refusals(box), by_half(cards, faces.people[held])))
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
