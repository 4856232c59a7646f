# syntax=docker/dockerfile:1
#
# medshare API image (cmd/medshare). Build from the repository root:
#   docker build -f integrations/fabric/network/production/medshare.Dockerfile -t medshare/medshare:VERSION .
# (docker-compose.yml does this for the medshare-* services.)
#
# No secrets in the image: KEK, pepper, receipt-signing key, the Fabric client
# identity and TLS CAs are mounted at run time (compose secrets). The data volume
# /var/lib/medshare is created here owned by the runtime user so that secrets
# mounted into /var/lib/medshare/keys leave the directory writable for keys the
# node creates itself.
#
# Pin the bases by digest in your registry mirror (tag@sha256:...) for
# byte-for-byte reproducible builds; the tags below pin the versions.

ARG GO_VERSION=1.26.8
ARG ALPINE_VERSION=3.22.2

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags timetzdata -ldflags "-s -w" -o /out/medshare ./cmd/medshare

# Alpine rather than distroless: busybox wget is the healthcheck's HTTP client.
FROM alpine:${ALPINE_VERSION}
RUN addgroup -S -g 10001 medshare \
 && adduser -S -D -H -u 10001 -G medshare -h /var/lib/medshare -s /sbin/nologin medshare \
 && mkdir -p /var/lib/medshare/keys \
 && chown -R 10001:10001 /var/lib/medshare \
 && chmod 0700 /var/lib/medshare /var/lib/medshare/keys
COPY --from=build /out/medshare /usr/local/bin/medshare
USER 10001:10001
ENV MEDSHARE_ADDR=0.0.0.0:8080 \
    MEDSHARE_DATA=/var/lib/medshare
VOLUME ["/var/lib/medshare"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
    CMD wget -q -O /dev/null http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/medshare"]
CMD ["serve"]
