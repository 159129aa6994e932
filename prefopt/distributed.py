"""Work split across the processes of ``accelerate launch``: every process computes a share, every process gets all.

    out = shard_map(fn, items)            fn(share) on each process's contiguous share; the results, in order
    out = shard_map(fn, items, unit=16)   fn called once per chunk of 16 items: exact on any number of processes
    scores = shard_call(scorer, prompts, lists)   the same for a function of several aligned columns
    outs = shard_batches(fn, batches)     fn(batch) for given batches (e.g. ``sorted_batches``), one result each
    value = main_value(value)             the main process's value on every process (a decision all must share)
    is_main_process()                     whether this process writes the run folder

Built on accelerate's ``PartialState.split_between_processes`` and ``gather_object`` (an ``all_gather_object``), so
with one process, or outside ``accelerate launch``, ``shard_map(fn, items)`` is simply ``fn(items)``.

Every stage that runs a model over a round's prompts goes through here (generation, scoring and judging, CHES,
reference log-probs, the reward evaluation), so N processes each do 1/N of the work. Results are gathered on every
process, not just the main one: every process trains on the round's lists and must hold them. The contract that
makes the output independent of the number of processes is the caller's: ``fn`` must compute each item from the
item alone (per-prompt seeds, no state carried from one item to the next), as every stage here does.

Exactly, not just up to rounding: a model's output for one sequence can change in its last bits with the batch it
is computed in (a different padded width changes how the attention kernels sum; measured on CPU in fp32 at ~1e-7).
So the stages fix their batches first, from the whole work list and never from the number of processes (consecutive
chunks of ``unit`` items, or ``sorted_batches``), and each process computes whole batches with one call each: every
batch, and so every bit of every result, is then the same on 1 or N processes.

Shares are padded to equal length by repeating the last item (accelerate's ``apply_padding``) and the padding is
dropped after gathering. Equal shares give every process the same number of batches, which a policy sharded with
FSDP or DeepSpeed ZeRO-3 needs: each of its forwards is a collective that all processes must join.

A failure on one process (a reward function raising, an out-of-memory error) must not leave the others waiting in
the gather forever: each process gathers its error along with its results, and every process raises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from accelerate import PartialState
from accelerate.utils import broadcast_object_list, gather_object

T = TypeVar("T")


class ShardError(RuntimeError):
    """Another process failed while computing its share; its message is repeated here."""


def _state() -> PartialState:
    return PartialState()


def is_main_process() -> bool:
    return _state().is_main_process


def shard_map(fn: Callable[[list], Sequence[T]], items: Sequence, *, unit: int | None = None,
              desc: str | None = None) -> list[T]:
    """``fn`` applied to this process's contiguous share of ``items``; all shares' results, in item order.

    Args:
        fn: ``fn(share) -> results``, one result per item of ``share`` (a list), in the same order. Each result
            must depend on its item alone. It is not called on an empty share.
        items: the whole work list, identical on every process.
        unit: when given, ``items`` is cut into consecutive chunks of ``unit`` and ``fn`` is called once per chunk,
            so its results are bit-for-bit the same on any number of processes even when they depend on the batch
            they were computed in (give the stage's batch size, or a multiple). Without it, ``fn`` gets the whole
            share in one call.
        desc: with ``unit``, a tqdm bar over the main process's chunks.
    Returns:
        ``len(items)`` results, on every process (gathered with ``accelerate.utils.gather_object``).
    Raises:
        the original exception on a process whose ``fn`` failed, ``ShardError`` with its message on the others.
    """
    items = list(items)
    state = _state()
    if not items:  # the same on every process, so all return here together
        return []
    if unit is not None:
        if unit < 1:
            raise ValueError(f"shard_map: unit must be >= 1, got {unit}")
        chunks = [items[start:start + unit] for start in range(0, len(items), unit)]
        parts = shard_batches(lambda chunk: _checked(fn(chunk), len(chunk), state.process_index), chunks, desc=desc)
        return [result for part in parts for result in part]
    if state.num_processes == 1:
        return _checked(fn(items), len(items), 0)
    with state.split_between_processes(items) as share:
        n_own = len(share)
    with state.split_between_processes(items, apply_padding=True) as padded:
        try:
            out, error = (_checked(fn(padded), len(padded), state.process_index) if padded else []), None
        except Exception as err:  # re-raised below, after every process has reported
            out, error = [], err
    reports = gather_object([(out[:n_own], None if error is None else f"{type(error).__name__}: {error}")])
    if error is not None:
        raise error
    failed = [(rank, msg) for rank, (_, msg) in enumerate(reports) if msg is not None]
    if failed:
        rank, msg = failed[0]
        raise ShardError(f"process {rank} failed on its share of {len(items)} items: {msg}")
    return [result for part, _ in reports for result in part]


def _checked(results: Sequence[T], n: int, rank: int) -> list[T]:
    results = list(results)
    if len(results) != n:
        raise ValueError(f"shard_map: the function returned {len(results)} results for {n} items (process {rank})")
    return results


def shard_call(fn: Callable[..., Sequence[T]], *columns: Sequence, unit: int | None = None) -> list[T]:
    """``fn(*columns)`` computed share by share: the columns (equal length) are split together, row by row."""
    rows = list(zip(*columns, strict=True))
    return shard_map(lambda part: fn(*(list(column) for column in zip(*part, strict=True))), rows, unit=unit)


def shard_batches(fn: Callable[[list], T], batches: Sequence[Sequence], *, desc: str | None = None) -> list[T]:
    """``fn(batch)`` for every batch, each computed whole by one process; the results in batch order, everywhere.

    A batch's result is what one process computing that batch alone gets, on any number of processes. ``desc``:
    a tqdm bar over the main process's batches.
    """
    from tqdm.auto import tqdm

    show = desc is not None and _state().is_main_process
    return shard_map(lambda share: [fn(list(b)) for b in tqdm(share, desc=desc, unit="batch", disable=not show)],
                     batches)


def sorted_batches(lengths: Sequence[int], size: int) -> list[list[int]]:
    """Indices cut into batches of ``size``, longest first (similar lengths share a batch: less padding).

    The plan depends on the lengths alone, not on the number of processes; ties keep their index order.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[start:start + size] for start in range(0, len(order), max(1, size))]


def main_value(value: Any) -> Any:
    """The main process's ``value`` on every process (e.g. whether a file it can see exists)."""
    if _state().num_processes == 1:
        return value
    return broadcast_object_list([value])[0]
