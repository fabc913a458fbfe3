"""Hybrid-order relational knowledge distillation (HORKD) for low-resolution (LR) recognition.

Paper: Ge, Zhang, Liu, Hua, Zhao, Jin, Wen, "Look One and More: Distilling Hybrid Order Relational Knowledge for
Cross-Resolution Image Recognition", AAAI 2020. Only the abstract is public: a teacher trained on high-resolution
(HR) images, a student on LR images and an *assistant* stream bridging them; the student is taught to preserve the
relational structure of several orders. What follows is our reconstruction:

* first order (individual): Hinton's softened-logit KL (``SoftLogitKD``, temperature tau) and/or embedding MSE;
* second order (pairs): Relational KD's distance loss (``RKDDistance``, Park et al., CVPR 2019, ``metric/loss.py``):
  pairwise Euclidean distances divided by their mean, compared with the smooth-L1 (Huber) loss;
* third order (triplets): RKD's angle loss (``RKDAngle``): cosines of the angles of every triplet, smooth L1;
* ``HybridOrderLoss`` = sum over reference streams R in {teacher, assistant} of
  ``alpha * L1 + beta * L2 + gamma * L3`` (the task cross-entropy is added by the trainer).

Defaults and where they come from: ``beta = 25``, ``gamma = 50`` are RKD's weights for classification (its metric
learning runs use 1 and 2); ``alpha = 1`` with ``tau = 4`` is the usual Hinton KD setting (KL scaled by tau**2).
Reference streams are detached: only the student learns from the losses.

The three-stream trainer: the teacher (``SmallCNN``) is trained on HR patches and frozen; the assistant has the
teacher's architecture, is initialised from the teacher and fine-tuned on up-sampled LR input (cross-entropy plus
KL to the teacher's HR logits: our choice of how it "bridges" the two); the student is a ``SmallCNN`` at least 4x
smaller, fed the LR image itself. Baselines trained by the same code: ``scratch`` (CE only), ``hinton`` (CE + KD),
``rkd`` (CE + distance + angle to the teacher), ``horkd_no_assistant`` and ``horkd``.

Layout: ``losses`` (the loss modules), ``recipe`` (``HorkdConfig``, the three streams, how each is trained and
cached), ``data`` (each task's train/test sets), ``evaluation`` (accuracy against resolution, inference time,
relational views, the default models), ``identification`` (rank-1 and verification AUC of the embeddings on unseen
identities: the faces task, the paper's own low-resolution face recognition setting), ``face_photo`` (a user's
face photo found, aligned and read by every stream, with what the models were trained on), ``comparison`` (paired
tests across seeds; where the students' errors differ). Everything public is importable from ``workbench.horkd``.
"""

from workbench.horkd.comparison import (
    DEFAULT_PAIRS,
    StudentErrors,
    disagreement_matrix,
    paired_comparison,
    paired_comparisons,
    per_class_accuracy,
    right_wrong_examples,
    seed_summary,
    student_errors,
    student_predictions,
)
from workbench.horkd.config import (
    TASKS,
    HorkdAssistantRecipe,
    HorkdConfig,
    HorkdStudentRecipe,
    HorkdTeacherRecipe,
)
from workbench.horkd.evaluation import (
    TEST_RESOLUTIONS,
    HorkdModels,
    accuracy_curves,
    cached_accuracy_curves,
    default_models,
    distance_gaps,
    errors_at,
    evaluate_resolutions,
    held_out_scores,
    inference_seconds,
    per_class_batch,
    predict_image,
    relational_views,
    stream_probabilities,
)
from workbench.horkd.face_photo import FacePhotoReading, StreamAnswer, read_face_photo, trained_on
from workbench.horkd.identification import (
    METRIC_LABELS,
    cosine_similarities,
    embed,
    identification_scores,
    rank1_identification,
    verification_auc,
)
from workbench.horkd.losses import (
    EmbeddingMSE,
    HybridOrderLoss,
    RelationalLoss,
    RKDAngle,
    RKDDistance,
    SoftLogitKD,
    StreamOutput,
    normalized_distances,
    pairwise_distances,
    triplet_angles,
)
from workbench.horkd.recipe import (
    METHOD_LABELS,
    METHODS,
    assistant_model,
    batches,
    build_student,
    build_teacher,
    count_parameters,
    distillation_loss,
    load_horkd_data,
    low_res_input,
    recipe_optimizer,
    stream,
    stream_outputs,
    student_dataset,
    student_model,
    student_step,
    teacher_model,
    train_students,
)
from workbench.train import accuracy  # was defined here; the training kit's is the one

__all__ = [
    "DEFAULT_PAIRS", "TASKS", "batches", "disagreement_matrix", "paired_comparison", "paired_comparisons",
    "per_class_accuracy", "right_wrong_examples", "seed_summary", "student_predictions",
    "StudentErrors", "student_errors", "errors_at",
    "METHODS", "METHOD_LABELS", "TEST_RESOLUTIONS", "EmbeddingMSE", "HorkdConfig", "HorkdModels", "HybridOrderLoss",
    "HorkdAssistantRecipe", "HorkdStudentRecipe", "HorkdTeacherRecipe",
    "RKDAngle", "RKDDistance", "RelationalLoss", "SoftLogitKD", "StreamOutput", "accuracy", "accuracy_curves",
    "cached_accuracy_curves",
    "assistant_model", "build_student", "build_teacher", "count_parameters", "default_models", "distance_gaps",
    "distillation_loss", "evaluate_resolutions", "inference_seconds", "load_horkd_data", "low_res_input",
    "normalized_distances", "pairwise_distances", "per_class_batch", "predict_image", "recipe_optimizer",
    "relational_views", "stream", "stream_outputs", "student_dataset", "student_model", "student_step", "teacher_model",
    "train_students", "triplet_angles",
    "METRIC_LABELS", "cosine_similarities", "embed", "held_out_scores", "identification_scores",
    "rank1_identification", "verification_auc",
    "FacePhotoReading", "StreamAnswer", "read_face_photo", "stream_probabilities", "trained_on",
]
