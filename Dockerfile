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
# The container overlay: listen on all interfaces, buffer on the volume.
# Mount more files and pass more --config flags to configure a region.
COPY <<YAML /etc/baton/container.yml
server:
  listen: 0.0.0.0:3000
buffer:
  dir: /var/lib/baton
kafka:
  embedded:
    listen: 0.0.0.0:9092
YAML
# The durable buffer lives here, owned by the non-root user; mount a volume so
# acked data survives the container.
COPY --from=build --chown=65532:65532 /out/data /var/lib/baton
VOLUME ["/var/lib/baton"]
WORKDIR /var/lib/baton
EXPOSE 3000
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/baton"]
CMD ["run", "--config", "/etc/baton/container.yml"]
