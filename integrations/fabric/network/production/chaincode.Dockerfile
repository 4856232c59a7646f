# syntax=docker/dockerfile:1
#
# medshare chaincode-as-a-service image (cmd/medshare-chaincode, its own Go
# module with a replace pointing at the repository root, hence the root context):
#   docker build -f integrations/fabric/network/production/chaincode.Dockerfile -t medshare/medshare-chaincode:VERSION .
#
# No secrets in the image: the chaincode server's TLS key pair and the CA of the
# peers' client certificates are mounted at run time (compose secrets) and named
# by CHAINCODE_TLS_CERT, CHAINCODE_TLS_KEY and CHAINCODE_CLIENT_CA_CERT.

ARG GO_VERSION=1.26.8
ARG ALPINE_VERSION=3.22.2

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
COPY cmd/medshare-chaincode/go.mod cmd/medshare-chaincode/go.sum ./cmd/medshare-chaincode/
RUN --mount=type=cache,target=/go/pkg/mod cd cmd/medshare-chaincode && go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd cmd/medshare-chaincode \
 && go build -trimpath -tags timetzdata -ldflags "-s -w" -o /out/medshare-chaincode .

# Alpine rather than distroless: the entrypoint reads the package id from a file
# and busybox nc is the healthcheck's port probe.
FROM alpine:${ALPINE_VERSION}
RUN addgroup -S -g 10001 chaincode \
 && adduser -S -D -H -u 10001 -G chaincode -h /nonexistent -s /sbin/nologin chaincode
COPY --from=build /out/medshare-chaincode /usr/local/bin/medshare-chaincode
COPY --chmod=0755 integrations/fabric/network/production/chaincode-entrypoint.sh /usr/local/bin/medshare-chaincode-entrypoint
USER 10001:10001
ENV CHAINCODE_SERVER_ADDRESS=0.0.0.0:9999
EXPOSE 9999
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=4 \
    CMD nc -z 127.0.0.1 9999 || exit 1
ENTRYPOINT ["/usr/local/bin/medshare-chaincode-entrypoint"]
