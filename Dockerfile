# ringkv node image.
#
#   docker build -t ringkv .
#   docker run --rm -p 8081:8081 -v ringkv-data:/data ringkv --id n1 --advertise 127.0.0.1:8081
#
# Container arguments are `ringkv node` flags (see SPEC §1); every flag can also be given as
# an env var RINGKV_<NAME>. The node listens on 0.0.0.0:8081 and keeps its LevelDB in /data.
#
# Base image: Node 24 ("Krypton") on Debian 12 slim. 24 is an LTS line supported until
# 2028-04-30, later than 22 (EOL 2027-04-30). Bookworm is glibc, which classic-level's
# prebuilt LevelDB binding (linux-x64 and linux-arm64) is built for, so nothing is compiled
# and the image needs no toolchain. To move to a newer LTS line: --build-arg NODE_VERSION=26.
ARG NODE_VERSION=24

# ---- build: dev dependencies + TypeScript compile ---------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is reused until package*.json change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies + compiled output, non-root -----------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
# jemalloc, preloaded below: glibc malloc leaves its heap fragmented after a write load.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libjemalloc2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

# The data directory must belong to the unprivileged user before VOLUME: a new named volume
# is initialised from the image's /data, ownership included.
RUN mkdir -p /data && chown node:node /data
ENV RINGKV_DATA=/data \
    RINGKV_LISTEN=0.0.0.0:8081 \
    MALLOC_ARENA_MAX=2 \
    LD_PRELOAD=libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2
# `node` (uid 1000) comes with the official Node images.
USER node
VOLUME ["/data"]
EXPOSE 8081

# The node traps SIGTERM and shuts down cleanly (flushes LevelDB, leaves gossip). As PID 1,
# node gets no default signal handlers, so the CLI's own handler is what makes this work.
STOPSIGNAL SIGTERM

# Slim images have no curl: probe with node's own fetch. The port follows RINGKV_LISTEN, so
# set the listen address through the env var (not --listen) if you change it; the probe
# always dials loopback, so listen on 0.0.0.0 or 127.0.0.1.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const p=(process.env.RINGKV_LISTEN||':8081').split(':').pop();fetch('http://127.0.0.1:'+p+'/v1/health',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Runtime settings (scripts/runtime.json, measured in docs/benchmarks.md, and used by
# `npm run bench`): a 4 MiB young generation (V8's default 16 MiB only holds more
# short-lived request garbage) keeps each node's resident set 25-45 MiB smaller; jemalloc
# (LD_PRELOAD above; the bare name works on every architecture) returns the pages that
# LevelDB's memtables and Node's buffers free, ~30 MiB per node after a write load; its
# MALLOC_CONF: a background thread purges freed pages after 1 s even on an idle node, and
# two arenas (not 4 per core) hold fewer of them. Two glibc malloc arenas
# (MALLOC_ARENA_MAX) only matter if jemalloc is taken out.
# --expose-gc lets a node that goes quiet after a burst collect that burst's garbage at once
# (src/runtime/idle-reclaim.ts; counted in ringkv_idle_collections_total).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--expose-gc", "dist/cli.js", "node"]
