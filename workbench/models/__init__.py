"""Small networks of the workbench and the project-trained, cached default models."""

from workbench.models.classifier import SmallCNN
from workbench.models.planted import RegionOnlyClassifier, box_mask
from workbench.models.vae import ConvVAE, vae_loss, vae_step

__all__ = ["ConvVAE", "RegionOnlyClassifier", "SmallCNN", "box_mask", "vae_loss", "vae_step"]
