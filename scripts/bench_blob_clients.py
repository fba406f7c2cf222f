"""How docs/benchmarks.md ("Blob store client") measured the asyncio S3 clients.

Not part of the test suite: each client goes into a scratch venv of its own, with
psutil (python -m venv v-NAME && v-NAME/bin/pip install NAME psutil), against a
SeaweedFS started by hand with the access key and secret below in its -s3.config:

    v-aiobotocore/bin/python scripts/bench_blob_clients.py aiobotocore http://127.0.0.1:PORT
    MODE: aiobotocore | aioboto3 | aioboto3-managed | miniopy-async
    (CKS=when_required: aiobotocore without the flexible checksums)
"""
import asyncio, os, sys, time, json, resource
import psutil

MODE = sys.argv[1]
ENDPOINT = sys.argv[2]  # http://127.0.0.1:PORT
AK, SK = "tidingsaccess", "tidings-secret-key-123"
BUCKET = "bench"
TOTAL = 256 * 1024 * 1024
PART = 8 * 1024 * 1024
CHUNK = 64 * 1024  # the size a web server hands a writer
proc = psutil.Process()

t0 = time.perf_counter()
if MODE in ("aiobotocore",):
    import aiobotocore.session
elif MODE.startswith("aioboto3"):
    import aioboto3
elif MODE == "miniopy-async":
    from miniopy_async import Minio
import_s = time.perf_counter() - t0

block = os.urandom(PART)
CPU = {}

class Peak:
    def __init__(self): self.peak = 0; self._t = None
    async def _run(self):
        while True:
            self.peak = max(self.peak, proc.memory_info().rss); await asyncio.sleep(0.01)
    def start(self): self.peak = proc.memory_info().rss; self._t = asyncio.create_task(self._run())
    async def stop(self):
        self._t.cancel()
        self.peak = max(self.peak, proc.memory_info().rss)
        return self.peak

def chunks():
    sent = 0
    while sent < TOTAL:
        for i in range(0, PART, CHUNK):
            yield block[i:i + CHUNK]
        sent += PART

class Reader:  # a file-like object fed from chunks (for managed uploads)
    def __init__(self): self.it = chunks(); self.buf = bytearray()
    async def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            try: self.buf += next(self.it)
            except StopIteration: break
        if n < 0: out = bytes(self.buf); self.buf.clear()
        else: out = bytes(self.buf[:n]); del self.buf[:n]
        return out

async def botocore_like(client, managed):
    try: await client.create_bucket(Bucket=BUCKET)
    except Exception: pass
    key = f"big-{MODE}"
    pk = Peak(); base = proc.memory_info().rss; pk.start(); t = time.perf_counter(); c0 = sum(proc.cpu_times()[:2])
    if managed:
        from boto3.s3.transfer import TransferConfig
        await client.upload_fileobj(Reader(), BUCKET, key, Config=TransferConfig(multipart_chunksize=PART, multipart_threshold=PART, max_concurrency=1))
    else:
        up = await client.create_multipart_upload(Bucket=BUCKET, Key=key)
        parts = []; buf = bytearray(); n = 1
        for c in chunks():
            buf += c
            if len(buf) >= PART:
                r = await client.upload_part(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=bytes(buf))
                parts.append({"ETag": r["ETag"], "PartNumber": n}); n += 1; buf.clear()
        await client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts})
    up_s = time.perf_counter() - t; up_peak = await pk.stop() - base; CPU["up"] = sum(proc.cpu_times()[:2]) - c0
    base = proc.memory_info().rss; pk.start(); t = time.perf_counter(); got = 0; c0 = sum(proc.cpu_times()[:2])
    r = await client.get_object(Bucket=BUCKET, Key=key)
    body = r["Body"]
    async for c in body.iter_chunks(CHUNK):
        got += len(c)
    body.close()
    down_s = time.perf_counter() - t; down_peak = await pk.stop() - base; CPU["down"] = sum(proc.cpu_times()[:2]) - c0
    assert got == TOTAL, got
    await client.delete_object(Bucket=BUCKET, Key=key)
    return up_s, up_peak, down_s, down_peak

async def main():
    rss0 = proc.memory_info().rss
    if MODE == "aiobotocore":
        from aiobotocore.config import AioConfig
        CFG = AioConfig(request_checksum_calculation=os.environ.get("CKS", "when_supported"))
        s = aiobotocore.session.get_session()
        async with s.create_client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK, config=CFG) as c:
            res = await botocore_like(c, False)
    elif MODE.startswith("aioboto3"):
        s = aioboto3.Session()
        async with s.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK) as c:
            res = await botocore_like(c, MODE == "aioboto3-managed")
    else:
        m = Minio(ENDPOINT.split("//")[1], access_key=AK, secret_key=SK, secure=False)
        if not await m.bucket_exists(BUCKET): await m.make_bucket(BUCKET)
        key = "big-minio"
        pk = Peak(); base = proc.memory_info().rss; pk.start(); t = time.perf_counter(); c0 = sum(proc.cpu_times()[:2])
        await m.put_object(BUCKET, key, Reader(), length=TOTAL, part_size=PART)
        up_s = time.perf_counter() - t; up_peak = await pk.stop() - base; CPU["up"] = sum(proc.cpu_times()[:2]) - c0
        base = proc.memory_info().rss; pk.start(); t = time.perf_counter(); got = 0; c0 = sum(proc.cpu_times()[:2])
        resp = await m.get_object(BUCKET, key)
        async for c in resp.content.iter_chunked(CHUNK): got += len(c)
        resp.release()
        down_s = time.perf_counter() - t; down_peak = await pk.stop() - base; CPU["down"] = sum(proc.cpu_times()[:2]) - c0
        assert got == TOTAL
        await m.remove_object(BUCKET, key)
        res = (up_s, up_peak, down_s, down_peak)
        await m.close_session() if hasattr(m, "close_session") else None
    up_s, up_peak, down_s, down_peak = res
    MiB = 1024 * 1024
    print(json.dumps({"mode": MODE, "import_s": round(import_s, 3), "up_MBps": round(TOTAL / up_s / 1e6, 1), "up_rss_growth_MiB": round(up_peak / MiB, 1),
                      "down_MBps": round(TOTAL / down_s / 1e6, 1), "down_rss_growth_MiB": round(down_peak / MiB, 1), "cpu_up_s": round(CPU["up"],2), "cpu_down_s": round(CPU["down"],2), "maxrss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))

asyncio.run(main())
