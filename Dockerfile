# syntax=docker/dockerfile:1
#
# token-broker container image.
#
#   docker build -t token-broker .
#   docker run --rm -p 127.0.0.1:8080:8080 -v "$PWD/broker.config.json:/etc/token-broker/broker.config.json:ro" \
#     -e BROKER_CONFIG=/etc/token-broker/broker.config.json token-broker
#
# The default target (`runtime`, the last stage) carries the broker alone. The local Adobe simulator
# is a separate target that shares nothing with it at run time:
#
#   docker build --target simulator -t token-broker-simulator .
#
# Base image: node:24-alpine.
# - Node 24 is the current Active LTS (Node 22 is in maintenance), so it is supported the longest.
# - Every production dependency (fastify, ioredis, undici, pino, prom-client) is pure JavaScript:
#   no native addon cares about musl vs glibc, so the smaller alpine image (fewer OS packages,
#   fewer CVEs to triage) costs nothing.
# - Pin it by digest in your registry mirror for reproducible builds:
#   docker build --build-arg NODE_IMAGE=node:24-alpine@sha256:... .
ARG NODE_IMAGE=node:24-alpine

# ---- build: all dependencies (dev included), compile TypeScript to dist/ ----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The client library is a workspace of the root: npm ci needs its manifest, the build its source.
COPY client/package.json ./client/
# --ignore-scripts: tsc needs no install hook, and no third-party script runs at build time.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY client ./client
# The simulator's compiled files leave dist/ here, so the broker's image cannot carry them; the
# simulator stage takes them from /out. Its demo launcher runs from a checkout, never in an image.
RUN npm run build \
    && mkdir -p /out \
    && mv dist/simulator /out/simulator \
    && rm -f /out/simulator/demo.js /out/simulator/demo.js.map

# ---- prod-deps: production dependencies only --------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY client/package.json ./client/
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- simulator: the local stand-in for Adobe IMS and EQP (docker compose; never production) -----
# Plain node:http, no npm dependency: only package.json ("type": "module") and its own files.
FROM ${NODE_IMAGE} AS simulator
ENV NODE_ENV=production \
    SIMULATOR_HOST=0.0.0.0 \
    SIMULATOR_PORT=8081
WORKDIR /app
COPY package.json ./
COPY --from=build /out/simulator ./dist/simulator
USER node
EXPOSE 8081
STOPSIGNAL SIGTERM
# Healthy as soon as its port answers HTTP at all.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=10 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.SIMULATOR_PORT||8081)+'/',{signal:AbortSignal.timeout(2500)}).then(()=>process.exit(0),()=>process.exit(1))"]
CMD ["node", "dist/simulator/main.js"]

# ---- runtime: the broker (the default target, so it stays the last stage) ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
# Files stay owned by root and are only readable by the runtime user: the process cannot modify
# its own code or dependencies.
COPY package.json package-lock.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The base image's unprivileged `node` user (uid 1000).
USER node
EXPOSE 8080
# node itself is PID 1 (no npm, no shell in between): it receives SIGTERM directly and the service
# drains and exits 0 on it; SIGHUP (reload of config and secrets) reaches it the same way.
# It spawns no children, so no zombie reaping is needed (`docker run --init` adds tini if wanted).
STOPSIGNAL SIGTERM
# Liveness through node itself: the image has no curl or wget to rely on. With TLS_CERT_FILE set the
# listener speaks HTTPS: the probe follows, presents no client certificate (/healthz needs none under
# mTLS) and does not verify the server's, which names the service, not 127.0.0.1: it asks only
# whether this very process answers on loopback.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["node", "-e", "const e=process.env,s=!!e.TLS_CERT_FILE;require(s?'node:https':'node:http').get({host:'127.0.0.1',port:e.PORT||8080,path:'/healthz',rejectUnauthorized:false,timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# The node flags are those of src/node-flags.ts (test/docker/static.test.ts keeps them in step).
CMD ["node", "--max-semi-space-size=4", "--heap-growing-percent=50", "--v8-pool-size=1", "dist/server.js"]
