from nexus_pool import Pool

pool = Pool(4, bytearray)
with pool.acquire() as buffer:
    buffer.append("x")  # E: arg-type
text: str = pool.acquire().value  # E: assignment
