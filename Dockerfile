# One image for every role. Build: docker build -t tidings .
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --create-home --home-dir /var/lib/tidings tidings
WORKDIR /app
# requirements.lock: what the server needs, nothing of the test toolchain (scripts/lock)
COPY requirements.lock ./
# --no-deps: every package is pinned there with its hashes (scripts/test says why)
RUN pip install --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps . && python -m compileall -q /usr/local/lib/python3.11/site-packages/tidings

USER tidings
WORKDIR /var/lib/tidings
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
# Behind a TLS-terminating load balancer on a private network: plain HTTP on all
# interfaces is what is wanted, and --insecure-http says so explicitly.
ENTRYPOINT ["tidings"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--insecure-http"]
