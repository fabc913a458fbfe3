"""Re-label distillation (RLD): explain a black-box classifier with a linear student fitted on VAE neighbours.

Paper: Hua, Ge, Zhang, "Interpret the Predictions of Deep Networks via Re-Label Distillation", IEEE ICME 2021
(arXiv:2409.13137). Only the abstract is public; what it fixes and what this package reconstructs:

* paper: project the image into a VAE subspace, perturb the latent vector at random, decode synthetic images, label
  each one by whether the network's label shifts, train a linear student on them with the network as teacher; the
  student is the explanation.
* ours (reconstruction, every choice a constructor argument): the perturbation ``z = mu_E(x) + sigma * eps``;
  ``sigma`` found per image by bisection in log space so that the flip rate lands in ``flip_band``; the optional
  residual ``x - D(mu_E(x))`` added to every sample so samples keep the image's detail; two students — a closed-form
  ridge regression on a blend of hard and soft labels (fast), and a logistic student trained by full-batch Adam with
  ``CE(hard) + kd_weight * T^2 * KL(soft^T || student^T) + weight_decay * ||W||^2``; the map is the student's weight
  (``W_keep - W_shift`` for a two-class student, which is the single logit's weight here), optionally times the input.
* ours, issue 12 (identifiable samples; each a constructor argument; the default configuration uses all but the
  mask student and the sigma scales): each region of each sample taken from a decode drawn at random from the pool
  of decodes (``region_source="pool"``), so regions vary independently; each region of each sample kept from the
  image with probability ``keep_share``; a student on region means (``features="regions"``) or on the kept-region
  indicators (``"mask"``) whose weights are painted back onto the pixels; a ridge student on soft labels with
  alpha 1; several sigmas per image (``sigma_scales``). ``RelabelDistillation.paper(...)`` is the paper's variant,
  bit-identical to the defaults before issue 12 (whole decodes, pixel student, no residual).

Everything runs batched over images and samples on the VAE's device: no per-sample Python loop.

Layout: :mod:`~workbench.relabel.explainer` (the :class:`RelabelDistillation` explainer and its
:class:`RelabelExplanation`), :mod:`~workbench.relabel.config` (every setting as one frozen :class:`RelabelConfig`
with its sigma, student and sampling configs; ``RelabelConfig.paper()`` the paper's variant),
:mod:`~workbench.relabel.students` (the students, strategy objects: :class:`RidgeStudent`, :class:`SGDStudent`),
:mod:`~workbench.relabel.sigma` (the sigma strategies: :class:`FlipBandBisection`, :class:`FixedSigma`),
:mod:`~workbench.relabel.regions` (the region strategies: :class:`GridRegions`), :mod:`~workbench.relabel.folder_vae`
(:func:`train_folder_vae`: a VAE for a user's image folder at 64-256 px).
"""

from workbench.relabel.config import (
    MIN_SAMPLES,
    RelabelConfig,
    SamplingConfig,
    SigmaConfig,
    StudentConfig,
    check_n_samples,
)
from workbench.relabel.explainer import RelabelDistillation, RelabelExplanation, RelabelWarning
from workbench.relabel.folder_vae import load_folder_images, train_folder_vae
from workbench.relabel.regions import GridRegions, Regions
from workbench.relabel.sigma import FixedSigma, FlipBandBisection, SigmaSearch
from workbench.relabel.students import STUDENTS, LinearStudent, RidgeStudent, SGDStudent, Student

__all__ = ["MIN_SAMPLES", "RelabelDistillation", "RelabelExplanation", "RelabelWarning", "check_n_samples",
           "RelabelConfig", "SamplingConfig", "SigmaConfig", "StudentConfig",
           "FixedSigma", "FlipBandBisection", "SigmaSearch", "STUDENTS", "LinearStudent", "RidgeStudent",
           "SGDStudent", "Student", "GridRegions", "Regions", "load_folder_images", "train_folder_vae"]
