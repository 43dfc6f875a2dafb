"""The greenlet bridge under the async twins: calls reuse their greenlets without
carrying anything from one call to the next (context variables, exceptions)."""

from __future__ import annotations

import asyncio
import contextvars

import greenlet
import pytest

from dorm.db.bridge import await_, in_bridge, run_sync

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def _who() -> tuple[str, int]:
    assert in_bridge()
    return request_id.get(), id(greenlet.getcurrent())


def _fails(message: str) -> None:
    raise LookupError(message)


async def _sleep_then(value: int) -> int:
    await asyncio.sleep(0.01)
    return value


def _awaits(value: int) -> int:
    return await_(_sleep_then(value)) + 1


def test_calls_reuse_a_greenlet_and_see_their_own_context() -> None:
    async def as_request(name: str) -> tuple[str, int]:
        request_id.set(name)
        return await run_sync(_who)

    async def main() -> list[tuple[str, int]]:
        first = await as_request("a")
        second = await as_request("b")
        concurrent = await asyncio.gather(*(as_request(f"c{i}") for i in range(3)))
        return [first, second, *concurrent]

    results = asyncio.run(main())
    assert [name for name, _ in results] == ["a", "b", "c0", "c1", "c2"]
    assert results[0][1] == results[1][1]  # one greenlet served both sequential calls


def test_an_exception_reaches_the_caller_and_the_next_call_runs_clean() -> None:
    async def main() -> tuple[str, int, list[int]]:
        with pytest.raises(LookupError, match="first") as info:
            await run_sync(_fails, "first")
        after = await run_sync(_awaits, 41)
        many = await asyncio.gather(*(run_sync(_awaits, n) for n in range(4)))
        return str(info.value), after, many

    message, after, many = asyncio.run(main())
    assert message == "first"
    assert after == 42
    assert many == [1, 2, 3, 4]


def test_a_cancelled_call_raises_cancelled_error_and_the_bridge_is_reusable() -> None:
    async def main() -> int:
        task = asyncio.create_task(run_sync(_awaits, 1))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await run_sync(_awaits, 9)

    assert asyncio.run(main()) == 10
