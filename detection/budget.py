"""Train to a CPU-time budget instead of an epoch count, so variants are compared at equal compute.

    cpu = cpu_seconds()                                  # this process + its finished children, user + system
    budget = CpuBudget(seconds=900, spent_before=0.0)    # e.g. what pre-training used already
    budget.attach(model)                                 # Ultralytics callbacks; then model.train(epochs=...)
    budget.used, budget.epochs_done

Why CPU seconds: on a shared machine wall-clock time moves with other jobs; the CPU time a process was given
moves much less. `CpuBudget` measures from the start of Ultralytics' pre-training routine (dataset scan and
label cache included). After every epoch it estimates the CPU cost of one epoch (the mean so far, first epoch
and set-up included, so the estimate errs on the short side) and sets the trainer's epoch count to what still
fits. The schedule (linear or cosine decay, close_mosaic) is rebuilt for the new count exactly as
Ultralytics' own wall-clock `time=` mode does, so the last epoch that fits is also the last epoch of the
learning-rate schedule and is validated and saved. The final validation is not counted (it is measurement).
"""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass, field


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended (all threads)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class CpuBudget:
    """Stop Ultralytics training when the next epoch would not fit into `seconds` of CPU.

    seconds: the whole budget of this run in CPU seconds; spent_before: CPU already used by earlier stages of
    the same recipe (scene generation, pre-training) that count against it; min_epochs: trained even if the
    first epoch shows they will overrun (1: a run always produces a model).
    """

    seconds: float
    spent_before: float = 0.0
    min_epochs: int = 1
    used: float = 0.0
    epochs_done: int = 0
    history: list[float] = field(default_factory=list)
    _t0: float | None = None

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"cpu budget must be > 0 CPU seconds, got {self.seconds}")
        if self.spent_before >= self.seconds:
            raise ValueError(f"the earlier stages already used {self.spent_before:.0f} of the {self.seconds:.0f} CPU "
                             "seconds; raise the budget or give the earlier stages less")

    @property
    def remaining(self) -> float:
        return self.seconds - self.spent_before - self.used

    def attach(self, model) -> CpuBudget:
        """Register the callbacks on an Ultralytics YOLO model (before `model.train`)."""
        model.add_callback("on_pretrain_routine_start", self._start)
        model.add_callback("on_train_epoch_end", self._epoch_end)
        return self

    def _start(self, trainer) -> None:
        self._t0 = cpu_seconds()

    def _epoch_end(self, trainer) -> None:
        # Runs before Ultralytics decides `final_epoch`, so shrinking `trainer.epochs` here makes this epoch the
        # final one (validated, saved) rather than cutting the loop after it.
        self.used = cpu_seconds() - (self._t0 if self._t0 is not None else cpu_seconds())
        self.epochs_done = trainer.epoch + 1
        self.history.append(round(self.used, 2))
        per_epoch = self.used / self.epochs_done
        more = max(0, math.floor(self.remaining / per_epoch)) if per_epoch > 0 else 0
        total = max(self.min_epochs, self.epochs_done + more)
        if total != trainer.epochs:
            trainer.epochs = trainer.args.epochs = total
            trainer._setup_scheduler()
            trainer.scheduler.last_epoch = trainer.epoch  # as Ultralytics' time mode: continue, do not restart

    def summary(self) -> dict[str, float]:
        """What the run spent: CPU seconds of this stage, of earlier stages, epochs trained."""
        return {"cpu_budget_s": self.seconds, "cpu_spent_before_s": round(self.spent_before, 1),
                "cpu_train_s": round(self.used, 1), "cpu_total_s": round(self.spent_before + self.used, 1),
                "epochs": self.epochs_done}
