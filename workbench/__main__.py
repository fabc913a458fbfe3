"""Command line: ``python -m workbench explain ...`` (a data set on Ray or in-process) and
``python -m workbench train RECIPE`` (a method's recipe; under ``torchrun`` data-parallel on several processes) and
``python -m workbench report RUN_DIR`` (one self-contained HTML file of a batch run, see :mod:`workbench.report`).

A bad input (a missing data folder, an output path that is a file, an unknown explainer, model or metric, ...) is
refused before any work starts, Ray included, in one line on stderr with exit status 2 (``--debug``: with its
traceback); see :mod:`workbench.cli`. ``explain`` exits with 3 when some images failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from workbench.cli import Parser, add_debug, add_smoke, positive_int, run_command

#: recipes ``train`` knows: name -> "module:function" called as function(smoke=..., retrain=True, progress=...)
RECIPES = {
    "digits_classifier": "workbench.models.pretrained:digits_classifier",
    "digits_vae": "workbench.models.pretrained:digits_vae",
    "patches_classifier": "workbench.models.pretrained:patches_classifier",
    "patches_vae": "workbench.models.pretrained:patches_vae",
    "whitening_detector": "workbench.whitening:whitening_detector",
    "stdt_detector": "workbench.stdt:stdt_detector",
    "tracking_patch_classifier": "workbench.tracking.pretrained:patch_classifier",
}


def _explain(ns: argparse.Namespace) -> int:
    from workbench.batch import ModelSpec, explain_dataset

    spec = ModelSpec(ns.model, tuple(ns.input_shape) if ns.input_shape else None, ns.weights, ns.vae, ns.vae_weights,
                     smoke=ns.smoke)
    kwargs = {name: {"n_samples": ns.n_samples} for name in ns.explainers
              if name in ("relabel", "lime", "captum_lime", "kernel_shap")}
    summary = explain_dataset(ns.data, spec, ns.explainers, ns.out, metrics=ns.metrics, explainer_kwargs=kwargs,
                              shard_size=ns.shard_size, limit=ns.limit, engine=ns.engine, workers=ns.workers,
                              address=ns.address, device=ns.device)
    print(summary.to_string(index=False))
    return 0 if int(summary["failed"].sum()) == 0 else 3


def _train(ns: argparse.Namespace) -> int:
    from workbench.distributed import context

    if ns.recipe == "horkd":  # teacher, assistant and students, in sequence (each cached under its recipe hash)
        from workbench.horkd import HorkdConfig, default_models

        default_models(HorkdConfig.smoke() if ns.smoke else HorkdConfig.full(), progress=context().is_main)
        return 0
    module, _, func = RECIPES[ns.recipe].partition(":")
    model = getattr(importlib.import_module(module), func)(smoke=ns.smoke, retrain=True, progress=context().is_main)
    if context().is_main:
        meta = getattr(model, "workbench_meta", {})
        print({k: v for k, v in meta.items() if k != "config"})
    return 0


def _report(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from workbench.report import default_report_path, run_report

    report = run_report(ns.run_dir)
    path = report.write(ns.out if ns.out else default_report_path(ns.run_dir))
    print(f"wrote {Path(path).resolve()} ({Path(path).stat().st_size / 2**20:.1f} MB, {report.n_figures} figures)")
    return 0


def _parser() -> Parser:
    parser = Parser(prog="python -m workbench", description=__doc__)
    add_debug(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="explain (and score) every image of a data set")
    ex.add_argument("--data", required=True, help="digits | patches | an image folder | ImageFolder tree | OTB folder")
    ex.add_argument("--model", default="digits_classifier",
                    help="embedded model name, TorchScript file, or package.module:Class (with --weights)")
    ex.add_argument("--weights", help="state-dict file for a module:Class model")
    ex.add_argument("--input-shape", type=positive_int, nargs=3, metavar=("C", "H", "W"))
    ex.add_argument("--vae", help="VAE for relabel: TorchScript file or module:Class (with --vae-weights)")
    ex.add_argument("--vae-weights")
    ex.add_argument("--explainers", nargs="+", default=["relabel", "saliency"])
    ex.add_argument("--metrics", nargs="*", default=[])
    ex.add_argument("--n-samples", type=positive_int, default=1000,
                    help="samples per image for RLD and sampling baselines")
    ex.add_argument("--out", required=True, help="output folder (created; a re-run of the same request resumes)")
    ex.add_argument("--shard-size", type=positive_int, default=64)
    ex.add_argument("--limit", type=positive_int, help="only the first N images")
    ex.add_argument("--engine", choices=("ray", "local"), default="ray")
    ex.add_argument("--workers", type=positive_int)
    ex.add_argument("--address", help="Ray cluster address (default $RAY_ADDRESS, else a local Ray)")
    ex.add_argument("--device", default="auto")
    add_smoke(ex, "embedded models' CPU setting")
    add_debug(ex, top=False)
    ex.set_defaults(run=_explain)
    tr = sub.add_parser("train", help="train a recipe (under torchrun: data-parallel)")
    tr.add_argument("recipe", choices=sorted([*RECIPES, "horkd"]))
    add_smoke(tr, "the recipe's CPU setting (seconds)")
    add_debug(tr, top=False)
    tr.set_defaults(run=_train)
    rp = sub.add_parser("report", help="one self-contained HTML file of a batch run (opens with no server)")
    rp.add_argument("run_dir", metavar="RUN_DIR", help="the --out folder of python -m workbench explain")
    rp.add_argument("--out", help="the HTML file to write (default RUN_DIR/report.html; never overwritten)")
    add_debug(rp, top=False)
    rp.set_defaults(run=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for a user error, see :mod:`workbench.cli`)."""
    ns = _parser().parse_args(argv)
    return run_command("python -m workbench", lambda: ns.run(ns), debug=ns.debug)


if __name__ == "__main__":
    sys.exit(main())
