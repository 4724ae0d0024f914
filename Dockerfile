# One image for the three services; the command picks the service (python -m services.<name>).
# Production only: the services and the generated code, Postgres through DATABASE_URL.
FROM python:3.11-slim AS build
WORKDIR /app
RUN python -m venv /venv
ENV PATH=/venv/bin:$PATH
COPY pyproject.toml ./
COPY gen ./gen
COPY services ./services
RUN pip install --no-cache-dir .

FROM python:3.11-slim
# A numeric user: Kubernetes' runAsNonRoot can only verify a numeric one (see deploy/kubernetes).
RUN groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid 10001 app
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["services.registry"]
