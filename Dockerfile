FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service service
COPY workers workers
COPY tributary tributary
COPY config config
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin tributary
# The config is read from here; docker-compose.yml mounts ./config over it, read-only.
ENV TRIBUTARY_CONFIG=/app/config/tributary.toml
# Never root: the processes only read the config and talk to Redis and the network.
USER tributary
EXPOSE 8080
CMD ["tributary", "serve"]
