# syntax=docker/dockerfile:1
# The platform's images, one target per program (compose.yaml picks them): gateway, chat,
# call, worker and web (the browser UI). The Rust programs are compiled together, in one
# stage all five targets share, and their dependencies in a layer of their own (cargo-chef),
# so a change to our code recompiles only our crates. Runtime images are debian-slim with one
# binary, run as an unprivileged user.

ARG RUST_VERSION=1.95
ARG NODE_VERSION=22
ARG DEBIAN=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe holds the manifests and the lock file only: it changes when dependencies do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Chat apart from the others: built together, cargo would give every program the features
# any of them asks of platform-core, and only chat serves Socket.IO.
RUN cargo chef cook --release --locked --recipe-path recipe.json -p chat \
 && cargo chef cook --release --locked --recipe-path recipe.json -p gateway -p call -p worker -p web -p chatctl
COPY . .
# The context has no .git: the commit `build_info` reports is passed in
# (`--build-arg CHAT_BUILD_COMMIT=$(git rev-parse --short=12 HEAD)`), else `unknown`.
ARG CHAT_BUILD_COMMIT=
RUN cargo build --release --locked -p chat \
 && cargo build --release --locked -p gateway -p call -p worker -p web -p chatctl \
 && mkdir /out \
 && cp target/release/gateway target/release/chat target/release/call \
       target/release/worker target/release/web target/release/chatctl /out/

# The browser bundle: package files first, so `npm ci` is redone only when they change. The
# UI's contract types come from the client package, a `file:../clients/typescript` dependency.
FROM node:${NODE_VERSION}-${DEBIAN}-slim AS ui
WORKDIR /ui/frontend
COPY clients/typescript/package.json ../clients/typescript/
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY clients/typescript/src ../clients/typescript/src
COPY frontend/ ./
RUN npm run build

FROM debian:${DEBIAN}-slim AS runtime
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --chmod=755 docker/healthcheck /usr/local/bin/healthcheck
USER 10001:10001
STOPSIGNAL SIGTERM

FROM runtime AS gateway
COPY --from=builder /out/gateway /usr/local/bin/
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/gateway"]

FROM runtime AS chat
COPY --from=builder /out/chat /usr/local/bin/
# Uploaded files when no S3 is configured (the local attachment store), owned by the service's
# user: compose mounts a volume here, and a new volume takes this folder's owner.
USER 0:0
RUN mkdir -p /var/lib/chat/attachments && chown 10001:10001 /var/lib/chat/attachments
USER 10001:10001
ENV ATTACHMENT_DIR=/var/lib/chat/attachments
EXPOSE 3001
ENTRYPOINT ["/usr/local/bin/chat"]

FROM runtime AS call
COPY --from=builder /out/call /usr/local/bin/
EXPOSE 3002
ENTRYPOINT ["/usr/local/bin/call"]

FROM runtime AS worker
# The admin tool beside it: `docker compose exec worker chatctl --help`, with the same
# environment (database, Redis, namespace).
COPY --from=builder /out/worker /out/chatctl /usr/local/bin/
ENTRYPOINT ["/usr/local/bin/worker"]

FROM runtime AS web
COPY --from=builder /out/web /usr/local/bin/
COPY --from=ui /ui/frontend/dist /srv/ui
ENV STATIC_DIR=/srv/ui
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/web"]
