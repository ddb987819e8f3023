FROM python:3.11.13-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The locked dependencies (scripts/lock.sh) in a layer of their own, then the application without
# resolving anything again: the image runs exactly the versions CI tested.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY api ./api
COPY models ./models
COPY providers ./providers
COPY workers ./workers
COPY tasks ./tasks
COPY simulator ./simulator
COPY cli ./cli
COPY migrations ./migrations
RUN pip install --no-cache-dir --no-deps .
RUN useradd --create-home k4u && mkdir -p /data && chown k4u /data
USER k4u
ENV K4U_DATA_DIR=/data
EXPOSE 8000
CMD ["k4u", "api", "--host", "0.0.0.0", "--port", "8000"]
