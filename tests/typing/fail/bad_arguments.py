from nexus_pool import Pool

Pool("4", bytearray)  # E: arg-type
Pool(4, bytearray, backend=3)  # E: arg-type
Pool(4, bytearray()).acquire()  # E: arg-type
Pool(4, bytearray).acquire(timeout="1")  # E: arg-type
