# syntax=docker/dockerfile:1
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/baton ./cmd/baton

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/baton /usr/local/bin/baton
# The durable buffer lives here; mount a volume so acked data survives the container.
VOLUME ["/var/lib/baton"]
WORKDIR /var/lib/baton
EXPOSE 3000
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/baton"]
CMD ["run"]
