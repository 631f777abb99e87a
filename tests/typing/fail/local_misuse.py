from nexus_pool import local


def clear_list(items: list[int]) -> None:
    items.clear()


growable = local.Pool(bytearray)
growable.try_acquire().value  # E: union-attr
growable.put("text")  # E: arg-type
growable.capacity  # E: attr-defined
bounded = local.BoundedPool(2, list[int], list.clear)
bounded.take()  # E: attr-defined
buffers: local.BoundedPool[bytearray] = local.BoundedPool(2, bytearray, clear_list)  # E: arg-type
