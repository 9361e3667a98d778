"""`prefetch`: an early stop leaves no producer thread behind and runs the source's cleanup."""

import threading
import time

import pytest

from shared.concurrency import prefetch


def _producers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "prefetch" and t.is_alive()]


def _wait_until_gone(seconds: float = 1.0) -> list[threading.Thread]:
    deadline = time.monotonic() + seconds
    while _producers() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _producers()


@pytest.mark.parametrize("depth", [1, 4])
def test_breaking_out_early_stops_the_producer_and_closes_the_source(depth):
    released = threading.Event()

    def source():  # like a video reader: endless, with cleanup in `finally`
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            released.set()

    frames = source()  # held here, as `FrameSource` holds its reader: garbage collection would not close it
    got = []
    for item in prefetch(frames, depth=depth):
        got.append(item)
        if item == 2:
            time.sleep(0.05)  # let the producer fill the queue and block on it
            break
    assert got == [0, 1, 2]
    assert not _wait_until_gone(1.0)  # the producer has exited
    assert released.is_set()  # the source's finally ran (a video capture would be released here)


def test_closing_the_consumer_generator_stops_the_producer_and_closes_the_source():
    released = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            released.set()

    frames = source()
    it = prefetch(frames, depth=2)
    assert next(it) == 0
    it.close()
    assert not _wait_until_gone(1.0) and released.is_set()


def test_a_consumer_error_stops_the_producer_and_closes_the_source():
    released = threading.Event()

    def source():
        try:
            yield from range(1_000_000)
        finally:
            released.set()

    frames = source()
    with pytest.raises(RuntimeError, match="consumer failed"):
        for item in prefetch(frames):
            if item == 1:
                raise RuntimeError("consumer failed")
    assert not _wait_until_gone(1.0) and released.is_set()
