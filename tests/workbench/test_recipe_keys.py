"""The cache keys of every named model, pinned: the shipped weights in ``workbench/weights`` (and every user's cache)
are found by the hash of the recipe a public loader hands to ``cached_model``. A refactoring of the recipes that
changes one of these hashes would leave the shipped file unfound and retrain the model on first use (issue 25).

Each loader runs with ``cached_model``'s shipped-file lookup replaced by one that reports the (name, hash) and stops,
so nothing loads or trains."""

from __future__ import annotations

import pytest

import workbench.cache as cache

#: (model name, recipe hash) each public loader asked for on main before issue 25's recipe refactoring
PINNED = {
    "digits_classifier": ("digits_classifier", "c185cd6356"),
    "digits_classifier_smoke": ("digits_classifier_smoke", "27c7cae847"),
    "digits_vae": ("digits_vae", "47aae8f04a"),
    "digits_vae_smoke": ("digits_vae_smoke", "ae319f3294"),
    "horkd_assistant16_smoke": ("horkd_assistant16", "0bd88e2a7b"),
    "horkd_assistant8_full": ("horkd_assistant8", "567b93a403"),
    "horkd_assistant8_smoke": ("horkd_assistant8", "34c201c27e"),
    "horkd_hinton16_s1_full": ("horkd_student_hinton16_s1", "3a3e6aef66"),
    "horkd_hinton16_smoke": ("horkd_student_hinton16_s0", "c1aa408aa4"),
    "horkd_hinton8_smoke": ("horkd_student_hinton8_s0", "52559c4d6a"),
    "horkd_horkd16_smoke": ("horkd_student_horkd16_s0", "4b7923d5c5"),
    "horkd_horkd8_full": ("horkd_student_horkd8_s0", "07b6021fcf"),
    "horkd_horkd8_smoke": ("horkd_student_horkd8_s0", "f997e4c2e6"),
    "horkd_horkd_no_assistant16_smoke": ("horkd_student_horkd_no_assistant16_s0", "c4c1a649d5"),
    "horkd_horkd_no_assistant8_smoke": ("horkd_student_horkd_no_assistant8_s0", "095740e680"),
    "horkd_rkd16_smoke": ("horkd_student_rkd16_s0", "ef22f9a7db"),
    "horkd_rkd8_smoke": ("horkd_student_rkd8_s0", "98c0c1da7c"),
    "horkd_scratch16_smoke": ("horkd_student_scratch16_s0", "ab17dbdf9c"),
    "horkd_scratch8_smoke": ("horkd_student_scratch8_s0", "a5a72eb3b5"),
    "horkd_teacher_full": ("horkd_teacher", "33aeed942e"),
    "horkd_teacher_smoke": ("horkd_teacher", "74da011326"),
    "patches_classifier": ("patches_classifier", "eba30b215f"),
    "patches_classifier_smoke": ("patches_classifier_smoke", "eb99a73baa"),
    "patches_vae": ("patches_vae", "838d11e411"),
    "patches_vae_smoke": ("patches_vae_smoke", "b921b057d6"),
    "stdt_nostd": ("stdt_nostd", "dd3f656dc4"),
    "stdt_sbi_std": ("stdt_sbi_std", "6bcd6ea83d"),
    "stdt_std": ("stdt_std", "fee5cda316"),
    "stdt_std_smoke": ("stdt_std_smoke", "f695ad9d6d"),
    "tracking": ("tracking_patch_classifier", "38c2353e52"),
    "tracking_smoke": ("tracking_patch_classifier_smoke", "ca60ebba93"),
    "whitening_plain": ("whitening_detector_plain", "6d6b61faee"),
    "whitening_sbi_plain": ("whitening_detector_sbi_plain", "ee4e79d27d"),
    "whitening_sbi_plain_smoke": ("whitening_detector_sbi_plain_smoke", "5abdfd4c75"),
    "whitening_sbi_white": ("whitening_detector_sbi_white", "96ffcee310"),
    "whitening_white": ("whitening_detector_white", "5568f6fc30"),
    "whitening_white_smoke": ("whitening_detector_white_smoke", "950b3dfd05"),
}


class _Asked(Exception):
    def __init__(self, name: str, key: str) -> None:
        super().__init__(name, key)
        self.name, self.key = name, key


def _stop(name: str, key: str) -> None:
    raise _Asked(name, key)


def _loaders() -> dict:
    from workbench.horkd import recipe as horkd
    from workbench.models import pretrained
    from workbench.stdt import stdt_detector
    from workbench.tracking.pretrained import patch_classifier
    from workbench.whitening import whitening_detector

    smoke, full = horkd.HorkdConfig.smoke(), horkd.HorkdConfig.full()
    students = {f"horkd_{m}{r}_smoke": (lambda m=m, r=r: horkd.student_model(smoke, m, r))
                for m in horkd.METHODS for r in (16, 8)}
    return {**students,
        "digits_classifier": lambda: pretrained.digits_classifier(),
        "digits_classifier_smoke": lambda: pretrained.digits_classifier(smoke=True),
        "digits_vae": lambda: pretrained.digits_vae(),
        "digits_vae_smoke": lambda: pretrained.digits_vae(smoke=True),
        "patches_classifier": lambda: pretrained.patches_classifier(),
        "patches_classifier_smoke": lambda: pretrained.patches_classifier(smoke=True),
        "patches_vae": lambda: pretrained.patches_vae(),
        "patches_vae_smoke": lambda: pretrained.patches_vae(smoke=True),
        "tracking": lambda: patch_classifier(),
        "tracking_smoke": lambda: patch_classifier(smoke=True),
        "whitening_white": lambda: whitening_detector(True),
        "whitening_plain": lambda: whitening_detector(False),
        "whitening_white_smoke": lambda: whitening_detector(True, smoke=True),
        "whitening_sbi_white": lambda: whitening_detector(True, data="sbi"),
        "whitening_sbi_plain": lambda: whitening_detector(False, data="sbi"),
        "whitening_sbi_plain_smoke": lambda: whitening_detector(False, smoke=True, data="sbi"),
        "stdt_std": lambda: stdt_detector(True),
        "stdt_nostd": lambda: stdt_detector(False),
        "stdt_std_smoke": lambda: stdt_detector(True, smoke=True),
        "stdt_sbi_std": lambda: stdt_detector(True, data="sbi"),
        "horkd_teacher_smoke": lambda: horkd.teacher_model(smoke),
        "horkd_teacher_full": lambda: horkd.teacher_model(full),
        "horkd_assistant16_smoke": lambda: horkd.assistant_model(smoke, 16),
        "horkd_assistant8_smoke": lambda: horkd.assistant_model(smoke, 8),
        "horkd_assistant8_full": lambda: horkd.assistant_model(full, 8),
        "horkd_horkd8_full": lambda: horkd.student_model(full, "horkd", 8),
        "horkd_hinton16_s1_full": lambda: horkd.student_model(full, "hinton", 16, seed=1),
    }


@pytest.fixture
def asked(monkeypatch):
    """Run a loader up to its ``cached_model`` lookup; return the (name, hash) it asked for."""
    monkeypatch.setattr(cache, "shipped_path", _stop)
    monkeypatch.delenv("WORKBENCH_SHIPPED", raising=False)

    def run(loader) -> tuple[str, str]:
        with pytest.raises(_Asked) as info:
            loader()
        return info.value.name, info.value.key

    return run


@pytest.mark.parametrize("which", sorted(PINNED))
def test_every_named_model_keeps_its_cache_key(which, asked, monkeypatch):
    if "assistant" in which:  # the assistant's teacher is another row of this table
        from workbench.horkd import recipe as horkd
        monkeypatch.setattr(horkd, "teacher_model", lambda *args, **kwargs: None)
    assert asked(_loaders()[which]) == PINNED[which]


def test_every_shipped_file_is_pinned():
    """A weights file added to the package without its key pinned here would not be guarded by this test."""
    shipped = {p.stem for p in cache.SHIPPED_DIR.glob("*.pt")}
    pinned = {f"{name}-{key}" for name, key in PINNED.values()}
    assert shipped <= pinned, f"shipped but not pinned: {sorted(shipped - pinned)}"


def test_a_recipe_passed_whole_is_the_same_model_as_its_flags(asked):
    """``recipe=`` (the one idiom: the frozen recipe, whole) names and keys the same model as the flags that make
    it, for the presets and for a changed field; mixing it with field overrides is refused."""
    from workbench.stdt import SbiStdtRecipe, StdtRecipe, stdt_config, stdt_detector
    from workbench.whitening import SbiWhiteningRecipe, WhiteningRecipe, detector_config, whitening_detector

    pairs = [
        (lambda: whitening_detector(False, smoke=True), lambda: whitening_detector(
            recipe=WhiteningRecipe.smoke().with_(whiten=False))),
        (lambda: whitening_detector(True, data="sbi"), lambda: whitening_detector(recipe=SbiWhiteningRecipe.full())),
        (lambda: whitening_detector(True, epochs=3), lambda: whitening_detector(recipe=detector_config(epochs=3))),
        (lambda: stdt_detector(True, smoke=True), lambda: stdt_detector(recipe=StdtRecipe.smoke())),
        (lambda: stdt_detector(False), lambda: stdt_detector(recipe=stdt_config(False))),
        (lambda: stdt_detector(True, data="sbi"), lambda: stdt_detector(recipe=SbiStdtRecipe.full())),
    ]
    for flags, whole in pairs:
        assert asked(flags) == asked(whole)
    with pytest.raises(ValueError, match="either recipe= or"):
        whitening_detector(recipe=WhiteningRecipe.full(), epochs=3)
    with pytest.raises(ValueError, match="either recipe= or"):
        stdt_detector(recipe=StdtRecipe.full(), epochs=3)
