# syntax=docker/dockerfile:1
# Terrarium in one container: the host runs under tini as PID 1, as root, so
# that it can give agents their own users and reap every process.
#
#   buildah bud --build-arg GO_IMAGE=... --build-arg RUNTIME_IMAGE=... -t terrarium .
#   docker run --rm terrarium run scenarios/axelrod.hcl
ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/terrarium ./cmd/terrarium

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/terrarium /usr/local/bin/terrarium
COPY scenarios /opt/terrarium/scenarios
WORKDIR /opt/terrarium
USER root
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/terrarium"]
CMD ["run", "scenarios/axelrod.hcl"]
