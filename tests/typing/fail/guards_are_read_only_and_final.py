from nexus_pool import Pool, Pooled

guard = Pool(4, bytearray).acquire()
guard.value = bytearray()  # E: misc


class MyPool(Pool[int]):  # E: misc
    pass


class MyGuard(Pooled[int]):  # E: misc
    pass
