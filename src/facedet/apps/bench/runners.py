"""The detectors as runners (our model files, the peers) and how their time is measured."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facedet.apps import peers


@dataclass
class Runner(peers.Peer):
    """One detector under test: ``detect`` returns every scored candidate (AP ranks them all);
    ``threshold`` is the score from which a box counts as a detection."""

    kind: str = "peer"  # "ours" or "peer"
    timed: Callable[[np.ndarray], object] | None = None  # what the timing loop calls; None: detect


def our_runner(path: Path | str, backend: str = "torch", threads: int | None = None) -> Runner:
    """A model file, or ``bundled``: the model shipped with facedet (as `facedet detect --weights`)."""
    from facedet.inference.detector import FaceDetector, resolve_bundled
    from facedet.model import weights

    path = Path(resolve_bundled(path))
    if path.suffix.lower() == ".onnx":
        import onnx

        from facedet.inference.onnx import METADATA_KEY

        graph = onnx.load(str(path), load_external_data=False)
        props = {p.key: p.value for p in graph.metadata_props}
        metadata = json.loads(props.get(METADATA_KEY, "{}"))
        params = sum(int(np.prod(t.dims)) for t in graph.graph.initializer)  # batch norm may be folded in
        backend = "onnx"
    else:
        net, metadata = weights.load(path)
        params = sum(p.numel() for p in net.parameters())
    detector = FaceDetector.load(path, backend=backend, threads=threads)
    model_file = Path(getattr(detector.backend, "path", path))
    if not model_file.is_file():  # a fresh ONNX export, gone once ONNX Runtime read it: size the weights
        model_file = path
    name = str((metadata.get("model") or {}).get("name", path.stem)) + (" (onnx)" if backend == "onnx" else "")
    return Runner(
        name,
        lambda rgb: detector(rgb, threshold=0.0),
        detector.threshold,
        str(path),
        params=params,
        params_note="counted",
        size_bytes=Path(model_file).stat().st_size,
        size_note=Path(model_file).suffix.lstrip("."),
        kind="ours",
        timed=detector,
    )  # timed at the model's threshold: fewer candidates through NMS than at 0


def peer_runner(name: str, threads: int | None = None) -> Runner:
    p = peers.load(name, threads)
    return Runner(
        p.name,
        p.detect,
        p.threshold,
        p.source,
        p.params,
        p.params_note,
        p.size_bytes,
        p.size_note,
        list(p.notes),
        kind="peer",
    )


# --- measuring ----------------------------------------------------------------------------------


TIMING_TURN = 10  # timed calls per detector before the next one's turn (see time_ms)


class Timing(NamedTuple):
    wall_ms: float  # median
    cpu_ms: float  # median process CPU time (all threads)
    turn_spread: float  # slowest turn's median / fastest turn's median (1: steady)


def time_ms(
    fns: list[Callable[[np.ndarray], object]],
    frame: np.ndarray,
    repeats: int = 30,
    warmup: int = 3,
    turn: int = TIMING_TURN,
) -> list[Timing]:
    """Per function, median wall and median process-CPU milliseconds of ``fn(frame)`` over ``repeats``
    calls after ``warmup`` calls, and how much its turns differed. The functions take turns of ``turn`` timed calls, so a burst of load
    from elsewhere on the machine slows all of them alike instead of whichever was being timed; each
    turn starts with one untimed call, which pays for the caches and the idle thread pools the previous
    function left behind. On a shared machine the CPU time (summed over threads) is the steadier number."""
    for fn in fns:
        for _ in range(warmup):
            fn(frame)
    wall: list[list[float]] = [[] for _ in fns]
    cpu: list[list[float]] = [[] for _ in fns]
    repeats = max(1, repeats)
    while fns and len(wall[0]) < repeats:
        calls = min(turn, repeats - len(wall[0]))
        for fn, fn_wall, fn_cpu in zip(fns, wall, cpu):
            fn(frame)
            for _ in range(calls):
                start, start_cpu = time.perf_counter(), time.process_time()
                fn(frame)
                fn_wall.append((time.perf_counter() - start) * 1000.0)
                fn_cpu.append((time.process_time() - start_cpu) * 1000.0)
    return [Timing(statistics.median(w), statistics.median(c), _turn_spread(w, turn)) for w, c in zip(wall, cpu)]


def _turn_spread(wall: list[float], turn: int) -> float:
    medians = [statistics.median(wall[i : i + turn]) for i in range(0, len(wall), turn)]
    return max(medians) / min(medians) if min(medians) > 0 else float("inf")


# Beyond these, the times say more about the machine than about the detector.
WAIT_RATIO = 1.5  # wall time per CPU time: the process waited for a CPU
TURN_SPREAD = 1.5  # slowest turn / fastest turn: the load changed while timing


def timing_problems(names: list[str], timings: list[Timing], load: float, cpus: int) -> list[str]:
    """What makes these times unreliable, in words: a busy machine (1-minute load average above the
    number of CPUs, read before timing), a detector that waited for the CPU (wall time well above its
    CPU time), turns that differed (load that came and went)."""
    problems = [f"the machine was busy (load average {load:.1f} on {cpus} CPUs)"] if load > cpus else []
    for name, t in zip(names, timings):
        if t.wall_ms > WAIT_RATIO * t.cpu_ms:
            problems.append(f"{name} waited for the CPU ({t.wall_ms:.1f} ms wall for {t.cpu_ms:.1f} ms of CPU time)")
        if t.turn_spread > TURN_SPREAD:
            problems.append(f"{name}'s turns differed up to {t.turn_spread:.1f}x")
    return problems
