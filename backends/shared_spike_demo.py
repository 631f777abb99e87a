import hashlib, multiprocessing as mp, os, signal, time
from nexus_pool import shared, ReleasedError

def worker(inbox, outbox):
    while (handle := inbox.get()) is not None:
        with shared.receive(handle) as buf:
            outbox.put((handle.slot, hashlib.sha256(buf).hexdigest()))

def holder(inbox, ready):
    handle = inbox.get()
    lease = shared.receive(handle)   # claims, then dies holding it
    ready.set()
    time.sleep(60)

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    pool = shared.SharedBufferPool(8, 1 << 16)
    inbox, outbox = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(inbox, outbox)) for _ in range(2)]
    for p in procs: p.start()
    expected = []
    t = time.perf_counter()
    for i in range(2000):
        lease = pool.acquire(timeout=10)
        lease.buffer[:8] = i.to_bytes(8, "little")
        expected.append(hashlib.sha256(bytes(lease.buffer)).hexdigest())
        inbox.put(lease.send())
    got = sorted(outbox.get()[1] for _ in range(2000))
    print("fan-out ok:", got == sorted(expected), f"{(time.perf_counter()-t)*1e6/2000:.0f} us/chunk", "available", pool.available())
    for _ in procs: inbox.put(None)
    for p in procs: p.join()
    # duplicate and stale handles
    lease = pool.acquire(); h = lease.send()
    with shared.receive(h): pass
    try: shared.receive(h)
    except ReleasedError as e: print("duplicate refused:", e)
    # SIGKILLed holder
    ready = ctx.Event(); p = ctx.Process(target=holder, args=(inbox, ready)); p.start()
    inbox.put(pool.acquire().send()); ready.wait(10)
    print("before kill available", pool.available())
    os.kill(p.pid, signal.SIGKILL); p.join()
    print("reclaimed", pool.reclaim(), "available", pool.available())
    # blocking wake-up latency
    leases = [pool.acquire() for _ in range(8)]
    def release_later(h, t0):
        time.sleep(0.05)
        with shared.receive(h): pass
    hs = leases[0].send()
    q = ctx.Process(target=release_later, args=(hs, 0)); q.start()
    t0 = time.perf_counter(); l = pool.acquire(timeout=5); print(f"blocked acquire woke after {(time.perf_counter()-t0)*1e3:.1f} ms")
    q.join(); l.release()
    for x in leases[1:]: x.release()
    print("final available", pool.available())
    pool.close()
