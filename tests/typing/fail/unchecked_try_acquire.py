from nexus_pool import Pool

pool = Pool(4, bytearray)
pool.try_acquire().value.extend(b"data")  # E: union-attr
