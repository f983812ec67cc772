FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service service
COPY workers workers
COPY tributary tributary
COPY config config
RUN pip install --no-cache-dir .
ENV TRIBUTARY_CONFIG=/app/config/tributary.toml
EXPOSE 8080
CMD ["tributary", "serve"]
