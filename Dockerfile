# The official Airflow image with this provider installed, every version taken from the project's lock.
#
#   docker compose build        (docker-compose.yml builds it as airflow-provider-media-upload:local)
#
# The lock pins the same apache-airflow as the base image, so installing the provider upgrades nothing
# Airflow depends on behind its back; the example DAGs ship inside the package (media_upload/example_dags).
FROM apache/airflow:3.3.2-python3.11

COPY --chown=airflow:root pyproject.toml README.md requirements.lock /opt/media-upload/
COPY --chown=airflow:root plugins /opt/media-upload/plugins
RUN pip install --no-cache-dir --constraint /opt/media-upload/requirements.lock \
        "/opt/media-upload[celery]" \
    && rm -rf /opt/media-upload/plugins
