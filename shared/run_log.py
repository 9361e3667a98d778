"""Send library chatter (Ultralytics, torch, logging, warnings, prints) into a run's log file, not the terminal.

    with chatter_to(run_dir / "log.txt"):
        model.train(...)        # Ultralytics' argument dump, model table and per-iteration lines land in the file
    print("mAP50 0.61")         # the terminal shows what the command prints after the block

Inside the block sys.stdout is the log file (Ultralytics logs and draws its progress on stdout), every logger
hands its records to the root logger, which writes them to the file at INFO (so the per-epoch lines of our own
libraries go there too), and Python warnings are logged there. sys.stderr is left alone: the command's own
progress bar (tqdm draws on stderr) stays on the terminal. `chatter_to(None)` changes nothing (verbose mode).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

# Loggers that third-party packages configure with their own handlers when they are imported; they are
# redirected even when the package is imported inside the block or was quietened by an earlier block.
THIRD_PARTY_LOGGERS = ("ultralytics", "torch", "torch_geometric", "xgboost", "onnxruntime", "py.warnings",
                       "matplotlib", "PIL", "numba", "uvicorn")


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _PlainText:
    """A text file that drops terminal colour and cursor codes (Ultralytics colours its log lines)."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def write(self, text: str) -> int:
        self._file.write(_ANSI.sub("", text))
        return len(text)

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str):  # flush, fileno, encoding, ... of the real file
        return getattr(self._file, name)


@contextlib.contextmanager
def chatter_to(path: str | Path | None, mode: str = "w") -> Iterator[TextIO | None]:
    """Within the block, stdout, logging and warnings write to `path` (replaced, or appended with mode="a";
    parent folders are created). Colour codes are dropped, so the file reads as plain text."""
    if path is None:
        yield None
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8", buffering=1) as raw:
        log = _PlainText(raw)
        handler = logging.StreamHandler(log)
        handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s"))
        root = logging.getLogger()
        saved_root = (root.handlers[:], root.level)
        names = {n for n, lg in logging.Logger.manager.loggerDict.items()
                 if isinstance(lg, logging.Logger) and lg.handlers} | set(THIRD_PARTY_LOGGERS)
        saved = {}
        for name in names:
            lg = logging.getLogger(name)
            saved[name] = (lg.handlers[:], lg.propagate)
            lg.handlers, lg.propagate = [], True
        root.handlers = [handler]
        root.setLevel(min(root.level if root.level != logging.NOTSET else logging.WARNING, logging.INFO))
        show = warnings.showwarning
        logging.captureWarnings(True)
        try:
            with contextlib.redirect_stdout(log):
                yield log
        finally:
            logging.captureWarnings(False)
            warnings.showwarning = show
            root.handlers = saved_root[0]
            root.setLevel(saved_root[1])
            for name, (handlers, propagate) in saved.items():
                lg = logging.getLogger(name)
                lg.handlers, lg.propagate = handlers, propagate
            # A package imported inside the block bound a handler to the redirected stdout: drop it.
            for lg in logging.Logger.manager.loggerDict.values():
                if isinstance(lg, logging.Logger):
                    lg.handlers = [h for h in lg.handlers if getattr(h, "stream", None) is not log]
            sys.stdout.flush()
