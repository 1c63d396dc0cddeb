# syntax=docker/dockerfile:1.4
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/baton ./cmd/baton \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/baton /usr/local/bin/baton
# The container overlay: listen on all interfaces, buffer on the volume,
# the embedded broker advertising an address clients outside the container
# can reach (with `-p 9092:9092`, 127.0.0.1:9092 from the host; set
# BATON_KAFKA_ADVERTISED to the name other hosts or containers use). The
# drain (server.shutdown_timeout, and at most a second more for the sinks)
# ends within `docker stop`'s default 10s grace period; pass a longer
# `--stop-timeout` together with a longer shutdown_timeout.
# Mount more files and pass more --config flags to configure a region.
COPY <<"YAML" /etc/baton/container.yml
server:
  listen: 0.0.0.0:3000
  shutdown_timeout: 8s
buffer:
  dir: /var/lib/baton
kafka:
  embedded:
    listen: 0.0.0.0:9092
    advertised: ${BATON_KAFKA_ADVERTISED:-127.0.0.1:9092}
YAML
# The durable buffer lives here, owned by the non-root user; mount a volume so
# acked data survives the container. The embedded broker keeps its topics in
# memory only: they are empty after every restart.
COPY --from=build --chown=65532:65532 /out/data /var/lib/baton
VOLUME ["/var/lib/baton"]
WORKDIR /var/lib/baton
# HTTP (SDKs, health checks) and the embedded Kafka broker.
EXPOSE 3000 9092
USER nonroot:nonroot
# Baton handles SIGTERM itself (a second one stops at once, keeping unsent
# records in the buffer).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/baton"]
CMD ["run", "--config", "/etc/baton/container.yml"]
