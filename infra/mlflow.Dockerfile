# The MLflow tracking server of infra/docker-compose.yml: the official image at the version requirements.lock pins
# (mlflow==3.17.2), plus the PostgreSQL driver its backend store needs (the official image ships none), pinned to
# the lock's psycopg2-binary.
FROM ghcr.io/mlflow/mlflow:v3.17.2
RUN pip install --no-cache-dir psycopg2-binary==2.9.13
