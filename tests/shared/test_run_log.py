"""chatter_to: library logging, warnings and prints land in the log file; stderr (our progress) is untouched."""

import logging
import sys
import warnings

from shared.run_log import chatter_to


def test_logging_warnings_and_prints_go_to_the_file_not_the_terminal(tmp_path, capsys):
    lib = logging.getLogger("some_library")  # configured like Ultralytics: its own stdout handler, no propagation
    lib.addHandler(logging.StreamHandler(sys.stdout))
    lib.setLevel(logging.INFO)
    lib.propagate = False
    try:
        with chatter_to(tmp_path / "run" / "log.txt"):
            lib.info("argument dump epochs=3")
            logging.getLogger("fraud.models").info("epoch 1 loss 0.5")
            warnings.warn("something is deprecated", FutureWarning, stacklevel=1)
            print("model summary table")
            sys.stderr.write("progress 50%\n")
        lib.info("after the block")
    finally:
        lib.handlers.clear()
    log = (tmp_path / "run" / "log.txt").read_text()
    for line in ("argument dump epochs=3", "epoch 1 loss 0.5", "something is deprecated", "model summary table"):
        assert line in log
    out, err = capsys.readouterr()
    assert "argument dump" not in out + err and "model summary" not in out and "deprecated" not in err
    assert "progress 50%" in err and "progress" not in log
    assert "after the block" in out, "the library's own handler is back after the block"


def test_none_changes_nothing(capsys):
    with chatter_to(None) as log:
        print("to the terminal")
    assert log is None and "to the terminal" in capsys.readouterr().out
