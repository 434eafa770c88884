# syntax=docker/dockerfile:1
# Multi-stage: a static binary in a distroless, non-root image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/wscanary ./cmd/wscanary \
 && mkdir -p /out/checks.d /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wscanary /usr/local/bin/wscanary
COPY --chown=65532:65532 docker/wscanary.yaml /etc/wscanary/wscanary.yaml
# An empty checks.d: mount yours over it (-v $PWD/checks.d:/etc/wscanary/checks.d:ro).
COPY --from=build --chown=65532:65532 /out/checks.d /etc/wscanary/checks.d
COPY --from=build --chown=65532:65532 /out/state /var/lib/wscanary
USER 65532:65532
ENV WSCANARY_CONFIG=/etc/wscanary/wscanary.yaml STATE_DIRECTORY=/var/lib/wscanary
VOLUME ["/var/lib/wscanary"]
# The listener must bind beyond loopback inside a container for the healthcheck
# and Prometheus to reach it; docker/wscanary.yaml sets listen: 0.0.0.0:9464.
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["/usr/local/bin/wscanary", "health", "--url", "http://127.0.0.1:9464/healthz"]
ENTRYPOINT ["/usr/local/bin/wscanary"]
CMD ["run"]
