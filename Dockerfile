# Image for `swarmqueue worker` (see docker-compose.yml): Python, tmux, and the package.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends tmux \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY distributor ./distributor
COPY workers ./workers
RUN pip install --no-cache-dir .
CMD ["swarmqueue", "worker"]
