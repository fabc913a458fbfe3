"""The "Your data" panels: bring your own model, image or video into a dashboard, by path or upload.

A :class:`PathRow` is a path field, an optional upload button and a **Load** button; pressing Load (or uploading)
calls the dashboard's handler with the path, which returns what to say on success or raises. Whatever it raises
(an unreadable file, a text file given as a model, a colour image for a grey model, a video with no face ...) is
shown in the row's message line in red, and the dashboard goes on with what it had: nothing is swapped in until the
input passed its checks (:mod:`workbench.inputs`, :func:`workbench.data.clips.read_video`). Uploaded files are
written to the kernel's private uploads folder under their own name and loaded from there like a typed path.

On a served page (Voilà) a typed path is read only under the allowed roots and an upload only up to the size
limit, and a model row builds no ``module:Class`` outside the operator's packages (:mod:`workbench.access`); the
refusal is the row's message. In JupyterLab every row stays open.

``relabel_panel`` and ``stdt_panel`` wire the rows to those dashboards (a model and an image; a video); the whitening
and HORKD panels live with their dashboards (``widgets.whitening``, ``widgets.horkd``) and the tracking dashboard
has its own OTB-folder row.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import torch

from workbench.access import current_policy, upload_root

Handler = Callable[[str], str]

OK_STYLE = "color:#1a7f37"
ERROR_STYLE = "color:#b00"


class PathRow(W.VBox):
    """One input: ``[path field] [upload] [Load]`` and a message line; ``handler(path) -> message`` does the work.

    ``confine``: the path is checked against the access policy before the handler sees it (False for a row whose
    handler checks a richer value itself, e.g. a model row's ``module:Class weights``).
    """

    def __init__(self, what: str, placeholder: str, handler: Handler, accept: str = "", css: str = "",
                 upload: bool = True, confine: bool = True) -> None:
        self.what, self.handler, self.confine = what, handler, confine
        self.path = W.Text(placeholder=placeholder, description=what, layout=W.Layout(width="460px"),
                           style={"description_width": "90px"})
        self.load_button = W.Button(description="Load", icon="folder-open", layout=W.Layout(width="90px"))
        self.upload = W.FileUpload(accept=accept, multiple=False, description="Upload",
                                   layout=W.Layout(width="110px", display="" if upload else "none"))
        self.message = W.HTML()
        for widget, part in ((self.path, "path"), (self.load_button, "load"), (self.upload, "upload"),
                             (self.message, "message")):
            widget.add_class(f"wb-input-{part}")
            if css:
                widget.add_class(f"{css}-{part}")
        self.load_button.on_click(lambda _b: self.load(self.path.value))
        self.upload.observe(self._on_upload, names="value")
        super().__init__([W.HBox([self.path, self.upload, self.load_button]), self.message])

    def load(self, path: str) -> bool:
        """Run the handler on ``path``; say what happened in the message line. True when it was loaded."""
        if not str(path).strip():
            self.show_error(f"type the path of your {self.what} first (or upload it)")
            return False
        try:
            path = str(current_policy().check_path(path, self.what)) if self.confine else str(path).strip()
            said = self.handler(path)
        except (ValueError, OSError) as exc:  # the loaders' own errors name the file and what was expected
            self.show_error(str(exc))
            return False
        except Exception as exc:  # anything else a user's file triggers is reported too: the session goes on
            self.show_error(f"{type(exc).__name__}: {exc}")
            return False
        self.message.value = f"<span style='{OK_STYLE}'>{html.escape(said)}</span>"
        return True

    def show_error(self, text: str) -> None:
        self.message.value = (f"<span style='{ERROR_STYLE}'>Cannot use this {html.escape(self.what)}: "
                              f"{html.escape(text)}</span>")

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        upload = files[0]
        name = Path(str(upload["name"])).name or "upload"
        try:
            current_policy().check_upload(name, len(upload["content"]))
        except PermissionError as exc:
            self.show_error(str(exc))
            return
        target = upload_root() / name
        target.write_bytes(bytes(upload["content"]))
        self.path.value = str(target)
        self.load(str(target))


# ------------------------------------------------------------------------------------------------ relabel
def relabel_panel(board: Any) -> W.VBox:
    """Rows that swap the relabel dashboard's teacher for the user's classifier and add the user's images."""
    shape = tuple(int(v) for v in board.images.shape[1:])
    n_classes = len(board.classes) if board.classes is not None else None

    def use_model(path: str) -> str:
        from workbench.inputs import load_classifier

        name, _, weights = path.partition(" ")
        from workbench.relabel.latent import LatentExplorer

        model = load_classifier(name, shape, n_classes, weights or None)
        board.classifier, board.latent = model, LatentExplorer(model, board.vae)  # every view reads the new teacher
        board.scorecard.set_model(model, board._scorecard_explainers(model))
        board._select(int(board.image_picker.value))
        return f"teacher is now {name} (checked on {shape[1]}x{shape[2]} inputs, {n_classes or 'any'} classes)"

    def add_image(path: str) -> str:
        from workbench.inputs import load_image

        image = load_image(path, shape)
        board.images = torch.cat([board.images, image[None]])
        board.scorecard.images = board.images
        if board.labels is not None:
            board.labels.append(None)
        index = len(board.images) - 1
        board.image_picker.options = [*board.image_picker.options, (f"yours: {Path(path).name}", index)]
        board.image_picker.value = index
        return f"added {Path(path).name} as image {index}"

    return _panel([
        PathRow("model", "model.pt (TorchScript) or package.module:Class weights.pt", use_model, ".pt,.pth,.ts",
                "wb-yours-model", confine=False),
        PathRow("image", f"/path/to/image.png ({shape[2]}x{shape[1]}, {'grey' if shape[0] == 1 else 'colour'})",
                add_image, "image/*", "wb-yours-image"),
    ])


# ------------------------------------------------------------------------------------------------ STDT
def stdt_panel(board: Any) -> W.VBox:
    """A row that adds the user's video as a clip of the STDT dashboard: with its **detect faces** box ticked (the
    default) each frame is cut to the face OpenCV finds; unticked, the frames are taken as they are (face crops)."""
    detect = W.Checkbox(value=True, description="detect faces", indent=False, layout=W.Layout(width="120px"))
    detect.add_class("wb-yours-video-detect")

    def add_video(path: str) -> str:
        from workbench.data.clips import read_video
        from workbench.data.face_front import NoFaceError
        from workbench.stdt import model_label, recipe_of, trained_on

        size, channels = board.model.image_size, board.model.in_channels  # the model's input: grey or colour
        try:
            frames = read_video(path, n_frames=board.model.frames, size=size, detect_faces=detect.value,
                                channels=channels)
        except NoFaceError:
            raise ValueError(f"no face found in any sampled frame of {Path(path).name}. If its frames are already "
                             "face crops, untick 'detect faces' in this row and press Load again") from None
        clip = torch.from_numpy(frames)
        data = board.data
        mine = type(data)(clip[None].float(), torch.tensor([-1]), torch.zeros(1, *clip.shape[:1], *clip.shape[2:]),
                          (f"yours: {Path(path).name}",), torch.tensor([-1]), data.classes)
        board.data = type(data).concat([data, mine])
        index = len(board.data) - 1
        board.clip_picker.options = [*board.clip_picker.options, (board.data.kinds[index], index)]
        board.clip_picker.value = index
        found = "face crops found by OpenCV's Haar cascade" if detect.value else "frames as they are, resized"
        return (f"added {Path(path).name} as clip {index}: {clip.shape[0]} {found}, read by "
                f"{model_label(board.model)} at {size}x{size} {'colour' if channels == 3 else 'grey'}. "
                f"{trained_on(recipe_of(board.model))}")

    row = PathRow("video", "/path/to/video.mp4 (or a folder of frames)", add_video, "video/*", "wb-yours-video")
    row.detect_faces = detect
    line = row.children[0]
    line.children = (*line.children, detect)
    return _panel([row])


def _panel(rows: list[PathRow], views: list[W.Widget] = ()) -> W.VBox:
    box = W.VBox([W.HTML("<b>Your data</b>: a path on the server, or upload a file; bad input is reported here and "
                         "the dashboard keeps what it had."), *rows, *views])
    box.add_class("wb-yours")
    box.rows = rows
    return box
