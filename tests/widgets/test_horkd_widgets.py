"""The HORKD dashboard driven in-process: the resolution slider changes what the student sees and the matrices."""

import pytest

from widgets.horkd import TEST_RESOLUTIONS, HorkdDashboard, default_models
from workbench.horkd import METHOD_LABELS, METHODS, HorkdConfig
from workbench.train import one_thread

CONFIG = HorkdConfig.smoke().with_(resolutions=(8,))


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "horkd_cache"))  # shared with trainer tests
    with one_thread():
        yield HorkdDashboard(default_models(CONFIG, device="cpu", progress=False))
    mp.undo()


def _plot(out):
    return out.outputs[0]["data"]["application/vnd.plotly.v1+json"]


def test_dashboard_shows_three_streams_and_every_baseline_curve(board):
    rel = _plot(board.relations)
    assert len(rel["data"]) == 6  # distance + angle for teacher, assistant, student
    n = 2 * len(CONFIG.classes)  # two patches per class, one row each
    assert all(len(t["y"]) == n and len(set(t["y"])) == n for t in rel["data"])
    titles = [a["text"] for a in rel["layout"]["annotations"]]
    assert any(t.startswith("teacher") for t in titles) and any(t.startswith("student") for t in titles)
    names = {t["name"] for t in _plot(board.curves)["data"]}
    assert len(names) == len(METHODS) + 2
    assert all(len(v) == len(TEST_RESOLUTIONS) for v in board.models.curves.values())
    assert "HORKD" in board.stats.value and "smaller" in board.stats.value


def test_resolution_slider_changes_what_the_student_sees(board):
    board.resolution.value = 8
    preview8, rel8, stats8 = _plot(board.preview), _plot(board.relations), board.stats.value
    board.resolution.value = 4
    preview4, rel4 = _plot(board.preview), _plot(board.relations)
    assert "4x4" in preview4["layout"]["title"]["text"]
    assert preview4["data"][0]["z"] != preview8["data"][0]["z"]
    assert rel4["data"][4]["z"] != rel8["data"][4]["z"]  # the student's distances move with its input
    assert rel4["data"][0]["z"] == rel8["data"][0]["z"]  # the teacher sees HR: unchanged
    assert board.stats.value != stats8 and "fed 4x4" in board.stats.value


def test_student_picker_switches_the_student_stream(board):
    board.resolution.value = 8
    before = _plot(board.relations)["data"][4]["z"]
    board.method.value = "scratch"
    assert _plot(board.relations)["data"][4]["z"] != before
    assert "from scratch" in board.stats.value
    board.method.value = "horkd"


def test_revisiting_a_resolution_shows_what_that_resolution_and_student_showed(board):
    """Views drawn once per (resolution, student) are shown again on a revisit: the same as a fresh draw."""
    board.method.value = "horkd"
    board.resolution.value = 6
    first = (_plot(board.relations), board.stats.value)
    board.resolution.value = 12
    board.method.value = "rkd"
    board.resolution.value = 6
    assert "RKD" in board.stats.value and _plot(board.relations) != first[0]
    board.method.value = "horkd"
    assert (_plot(board.relations), board.stats.value) == first
    assert (_plot(board.relations), board.stats.value) == (
        board._draw(6, "horkd")[1][0]["data"]["application/vnd.plotly.v1+json"], board._draw(6, "horkd")[3])


def test_error_views_follow_the_right_wrong_pair(board):
    board.right.value, board.wrong.value = "horkd", "scratch"
    errors = board.errors(8)
    matrix = _plot(board.disagreement)["data"][0]
    assert matrix["x"] == matrix["y"] == [METHOD_LABELS[m] for m in METHODS]
    assert len(_plot(board.per_class)["data"][0]["x"]) == len(CONFIG.classes)
    before = board.error_stats.value
    picked = errors.examples("scratch", "horkd")
    board.right.value, board.wrong.value = "scratch", "horkd"
    assert board.error_stats.value != before and "taken for" in board.error_stats.value or not len(picked)
    shown = _plot(board.examples)["data"]
    assert (len(shown) == 1) == bool(len(picked))  # the mosaic, or an empty note when there is no such image
    for k in picked:
        assert errors.classes[errors.labels[k]] in board.error_stats.value


def test_the_page_says_when_it_shows_the_smoke_settings_models():
    from widgets.horkd import setting_note

    note = setting_note(HorkdConfig.smoke())
    assert "Smoke-setting models" in note and "22 classes" in note and "44 classes" in note
    assert setting_note(HorkdConfig.full()) == ""
