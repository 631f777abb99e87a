import asyncio

from nexus_pool import Pool

pool = Pool(4, bytearray)


async def main() -> None:
    guard = pool.acquire_async()
    guard.release()  # E: attr-defined
    async with pool.acquire_async() as buffer:
        text: str = buffer  # E: assignment
    with pool.acquire_async():  # E: attr-defined
        pass
    pool.stats().in_use = 3  # E: misc


asyncio.run(main())
