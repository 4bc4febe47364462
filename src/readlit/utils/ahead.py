"""Run an iterator one item ahead of its consumer, in a background thread (on its own CUDA stream on a GPU).

Streaming uses it to denoise clip j + 1 while the VAE decodes clip j (``speed.overlap_decode``). The items are the
same objects the iterator makes, in the same order; the producer stops when the consumer closes the iterator.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import Any

import torch

_DONE = object()


def run_ahead(items: Iterator[Any], device: torch.device) -> Iterator[Any]:
    """Yield what ``items`` yields, producing the next item while the consumer works on the current one.

    On CUDA the producer runs on its own stream; each tensor item is handed over after an event the consumer's
    stream waits on, and recorded on that stream so its memory is not reused early. Items are tuples of tensors
    and other values (the sampler's ``(slice, latents)``).
    """
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    cuda = device.type == "cuda"

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        stream = torch.cuda.Stream(device) if cuda else None
        try:
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext():
                for item in items:
                    event = None
                    if cuda:
                        event = torch.cuda.Event()
                        event.record(stream)
                    if not put((item, event)):
                        return
        except BaseException as err:  # handed to the consumer, which raises it in its own thread
            put((err, _DONE))
            return
        put((_DONE, None))

    worker = threading.Thread(target=produce, name="run_ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, event = handoff.get()
            if item is _DONE:
                return
            if event is _DONE:
                raise item
            if cuda:
                current = torch.cuda.current_stream(device)
                current.wait_event(event)
                for value in item:
                    if isinstance(value, torch.Tensor):
                        value.record_stream(current)
            yield item
    finally:
        stop.set()
        worker.join()
        close = getattr(items, "close", None)
        if close is not None:  # the producer has returned: the iterator is idle and may be closed here
            close()
