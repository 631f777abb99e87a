from nexus_pool import Pool


def clear_list(items: list[int]) -> None:
    items.clear()


buffers: Pool[bytearray] = Pool(4, bytearray, clear_list)  # E: arg-type
Pool(4, bytearray, clear_list)  # E: misc
