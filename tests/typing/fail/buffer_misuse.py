from nexus_pool import BufferPool

pool = BufferPool(2, 1024)
with pool.acquire() as buffer:
    buffer.append(1)  # E: attr-defined
    buffer.write("text")  # E: arg-type
    buffer.readinto(b"not a file")  # E: arg-type
pool.is_shutdown = False  # E: misc
