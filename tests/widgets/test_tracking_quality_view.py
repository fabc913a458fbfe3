"""The tracking dashboard's quality-check view (issue 27 item 5): per frame, the CD run's channels and what its
quality check read on that frame, taken from that frame's telemetry, and a timeline strip over all frames with the
fired / fallback frames and the current frame marked."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from widgets.tracking import QUALITY, dashboard
from widgets.tracking_draw import FIRED_RGB, _frame_x
from workbench.tracking import make_sequence

#: a generated sequence whose hidden target makes the page's check (QualityCheck() at its defaults) fire
HIDDEN, SEED = "occlusion", 0


@pytest.fixture(scope="module")
def checked():  # noqa: ANN201 - a dashboard after a run
    board = dashboard(make_sequence(HIDDEN, n_frames=60, seed=SEED), n_frames=60)
    assert board.check.value  # the page runs the check unless unticked
    board.run()
    return board


def _rgb(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))


def test_the_quality_text_is_the_telemetry_of_the_frame_shown(checked):
    cd = checked.records["DCF-CD"]
    compared = [i for i, t in enumerate(cd.telemetry) if t.quality is not None and t.quality.state == "passed"]
    warming = [i for i, t in enumerate(cd.telemetry) if t.quality is not None and t.quality.state == "warming up"]
    assert len(compared) >= 2 and warming
    shown = {}
    for index in (compared[0], compared[-1], warming[0]):
        checked.frame.value = index
        reading, text = cd.telemetry[index].quality, checked.quality.value
        shown[index] = text
        assert f"frame {index}: CD tracks with {len(cd.telemetry[index].kept_channels)} of 40 channels" in text
        assert f"read PSR <b>{reading.psr:.2f}</b>" in text
        if reading.state == "passed":
            assert f"threshold <b>{reading.threshold:.2f}</b>" in text and f"median {reading.median:.2f}" in text
            assert reading.psr >= reading.threshold and "passed" in text and "FIRED" not in text
        else:
            assert f"{reading.history} of the {reading.needed} distilled frames" in text and "threshold" not in text
    assert len(set(shown.values())) == 3  # another frame, another reading
    rule = f"below {QUALITY.drop:g} x its median over the last {QUALITY.window} distilled frames"
    assert rule in shown[compared[0]]


def test_fired_and_fallback_frames_are_shown_as_such(checked):
    cd = checked.records["DCF-CD"]
    fired = np.flatnonzero(cd.quality_fired)
    assert fired.size, "the occlusion sequence should make the check fire"
    for index in range(1, len(cd.telemetry)):
        checked.frame.value = index
        text, seen = checked.quality.value, cd.telemetry[index]
        assert ("FIRED" in text) == (index in fired), index
        assert ("fallback: all channels" in text) == bool(seen.fallback), index
    first = int(fired[0])
    checked.frame.value = first
    reading = cd.telemetry[first].quality
    assert reading.psr < reading.threshold
    assert f"read PSR <b>{reading.psr:.2f}</b> &lt; threshold <b>{reading.threshold:.2f}</b>" in checked.quality.value
    assert "CD tracks with 40 of 40 channels" in checked.quality.value
    checked.frame.value = first + 3
    assert "on the fallback channels: not compared" in checked.quality.value


def test_the_timeline_marks_the_fired_frames_and_follows_the_slider(checked):
    cd = checked.records["DCF-CD"]
    n = len(cd.telemetry)
    checked.frame.value = 10
    at_10 = _rgb(checked.timeline.value)
    checked.frame.value = 40
    at_40 = _rgb(checked.timeline.value)
    width = at_10.shape[1]
    x10, x40 = int(_frame_x(10, n, width)), int(_frame_x(40, n, width))
    black = lambda image, x: int((image[:, x].sum(axis=1) == 0).sum())  # noqa: E731
    assert black(at_10, x10) > 50 and black(at_40, x40) > 50  # the current frame's line, top to bottom
    assert black(at_10, x40) < 10 and black(at_40, x10) < 10  # and only there
    for index in np.flatnonzero(cd.quality_fired):
        column = at_10[:, int(_frame_x(index, n, width))]
        assert (column == FIRED_RGB).all(axis=1).sum() > 50, index


def test_without_the_check_the_page_says_none_runs():
    board = dashboard(make_sequence(HIDDEN, n_frames=30, seed=SEED), n_frames=30)
    board.check.value = False
    board.run()
    cd = board.records["DCF-CD"]
    assert not cd.quality_fired.any() and all(t.quality is None for t in cd.telemetry)
    board.frame.value = 20
    assert "quality check: <b>none runs</b>" in board.quality.value and "FIRED" not in board.quality.value
