# leadprep serve in a container: the sales org's review server.
# README: "One server for the sales org" (deploy/ has the compose file with oauth2-proxy in front).
#
#   docker build -t leadprep .
#   docker run -v leadprep-data:/data -v ./leadprep.yaml:/config/leadprep.yaml:ro \
#              --env-file leadprep.env -p 127.0.0.1:8765:8765 leadprep
FROM python:3.11-slim

# WeasyPrint (the PDFs) needs Pango; DejaVu so the sheets print the same everywhere.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

COPY . /src
RUN pip install --no-cache-dir '/src[pdf]' && rm -rf /src

# Never root; everything leadprep writes (state, sheets, outbox) lives on the /data volume.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin leadprep \
 && mkdir -p /data /config && chown leadprep /data
USER leadprep
WORKDIR /data
VOLUME ["/data"]
ENV LEADPREP_CONFIG=/config/leadprep.yaml \
    LEADPREP_STATE=/data/state.db \
    PYTHONUNBUFFERED=1

EXPOSE 8765
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8765/health', timeout=4).status != 200)"]
# SIGTERM: uvicorn finishes the requests in flight; a scheduled run in progress finishes first.
STOPSIGNAL SIGTERM
CMD ["leadprep", "serve", "--host", "0.0.0.0", "--port", "8765"]
