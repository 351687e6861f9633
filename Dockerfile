# kycd's image, built from a clone: docker build -t kycd .
# (The release image is deploy/Dockerfile.release, made from the release
# build's static binary; both end in the same final stage.)
#
# Build arguments stamp what kycd version prints:
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(git log -1 --format=%cI) -t kycd .
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG COMMIT=""
ARG DATE=""
# Static (CGO_ENABLED=0: the SQLite driver is pure Go), so the final stage
# needs no libc.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/kycd ./cmd/kycd
# The image's files, staged as deploy/Dockerfile.release has them: the
# volume's directory (data, for the user kycd runs as: a new named volume
# takes its owner from it), /tmp for SQLite's temporary files, the CA
# certificates for HTTPS sinks and Ralio's API.
RUN mkdir -p /stage/data /stage/rootfs/tmp /stage/rootfs/var/lib /stage/rootfs/etc/ssl/certs \
 && chmod 1777 /stage/rootfs/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /stage/rootfs/etc/ssl/certs/ \
 && cp /out/kycd /stage/rootfs/kycd

FROM scratch
# The data directory first, then the rest: COPY --chown gives the
# directories it creates on the way (/var, /var/lib) to the user too, and
# the rootfs copy after it gives them back to root.
COPY --from=build --chown=65532:65532 /stage/data/ /var/lib/kycd/
COPY --from=build /stage/rootfs/ /
# --- the final stage, the same in deploy/Dockerfile.release ---
# No shell, no package manager, no root: user and group 65532 (nonroot).
USER 65532:65532
ENV KYCD_ADDR=0.0.0.0:8080 \
    KYCD_DATABASE=sqlite:/var/lib/kycd/kycd.db
# Both SQLite files (kycd.db and kycd.db-log) live here: keep them together.
VOLUME ["/var/lib/kycd"]
EXPOSE 8080
# kycd itself checks: the image has no shell or curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/kycd", "healthcheck"]
ENTRYPOINT ["/kycd"]
CMD ["serve"]
