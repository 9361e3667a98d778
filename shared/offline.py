"""The one place that makes Ultralytics work offline. Import `ultralytics` only through `yolo()`.

Ultralytics downloads weights, fonts and packages on demand and writes settings to the home folder.
Here nothing may be downloaded, so before the first import we set YOLO_OFFLINE, turn off auto-install,
point YOLO_CONFIG_DIR into the project's cache and put a local copy of DejaVuSans there as Arial.ttf
(every train/val otherwise asks GitHub for the font).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from shared.paths import cache_dir, runs_dir


def configure_offline() -> Path:
    """Set Ultralytics' offline environment (idempotent); returns YOLO_CONFIG_DIR.

    Must run before `import ultralytics`: Ultralytics reads these variables at import time.
    """
    config_dir = cache_dir() / "ultralytics"
    if "ultralytics" in sys.modules and os.environ.get("YOLO_CONFIG_DIR") != str(config_dir):
        raise RuntimeError("ultralytics was imported before shared.offline.configure_offline(); "
                           "import it through shared.offline.yolo() so it cannot try to download")
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "False"
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    font_dir = config_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    font = font_dir / "Arial.ttf"
    if not font.exists():
        try:
            import matplotlib

            src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
            shutil.copyfile(src, font)
        except (ImportError, OSError):
            pass  # without the font, plots fall back to PIL's default font; nothing is downloaded
    return config_dir


def yolo():
    """The `ultralytics` module, imported after the offline environment is set."""
    configure_offline()
    import ultralytics
    from ultralytics.utils import SETTINGS

    # Integrations (mlflow, comet, wandb...) switch on when their package is importable; keep runs local.
    # Default folders move into the project so nothing lands in the home folder or the working directory.
    wanted = {"sync": False, "mlflow": False, "comet": False, "wandb": False, "clearml": False, "dvc": False,
              "neptune": False, "tensorboard": False, "raytune": False, "hub": False, "vscode_msg": False,
              "openvino_msg": False, "runs_dir": str(runs_dir()), "weights_dir": str(cache_dir() / "weights"),
              "datasets_dir": str(cache_dir() / "datasets")}
    changes = {k: v for k, v in wanted.items() if k in SETTINGS and SETTINGS[k] != v}
    if changes:
        SETTINGS.update(changes)
    return ultralytics
