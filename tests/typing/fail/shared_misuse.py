# mypy: enable-error-code="deprecated"
from nexus_pool import shared

pool = shared.SharedBufferPool(2, 1024)
pool.try_acquire().send()  # E: union-attr
shared.receive(("name", 0, 1))  # E: arg-type
handle = pool.acquire().send()
handle.slot = 3  # E: misc
pool.acquire(timeout="soon")  # E: arg-type
with pool.acquire() as buffer:
    buffer.append(1)  # E: attr-defined
    buffer.write("text")  # E: arg-type
pool.queue.put(handle)  # E: arg-type
pool.is_shutdown = False  # E: misc
pool.buffer_size  # E: deprecated
pool.acquire().buffer  # E: deprecated
