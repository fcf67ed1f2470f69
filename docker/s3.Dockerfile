# syntax=docker/dockerfile:1
# The optional S3-compatible server of compose.yaml's `s3` profile: s3s-fs from crates.io (a
# real S3 implementation: SigV4, multipart uploads, ranged reads), keeping each bucket as a
# folder of /data. The bucket named by S3_BUCKET is made at start.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
# 0.14.1: the newest release that builds with this Rust.
RUN cargo install s3s-fs --locked --version 0.14.1 --features binary --root /opt/s3s

FROM debian:${DEBIAN}-slim
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir /data && chown 10001:10001 /data
COPY --from=build /opt/s3s/bin/s3s-fs /usr/local/bin/
USER 10001:10001
EXPOSE 9000
ENTRYPOINT ["/bin/bash", "-c", "mkdir -p \"/data/${S3_BUCKET:?}\" && exec s3s-fs --host 0.0.0.0 --port 9000 --access-key \"${S3_ACCESS_KEY_ID:?}\" --secret-key \"${S3_SECRET_ACCESS_KEY:?}\" /data"]
