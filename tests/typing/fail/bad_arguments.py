from nexus_pool import Pool

Pool("4", bytearray)  # E: arg-type
Pool(4, bytearray, backend=3)  # E: arg-type
Pool(4, bytearray()).acquire()  # E: arg-type
Pool(4, bytearray).acquire(timeout="1")  # E: arg-type
Pool(4, bytearray, track="sometimes")  # E: arg-type
Pool(4, bytearray, warn_after="soon")  # E: arg-type
Pool(4, bytearray).holders()[0].seconds = 1.0  # E: misc
