# Tally: a token service. Build: docker build -t tally .
# Run:  docker run -p 50051:50051 -p 8080:8080 -e TALLY_REDIS_URL=redis://… \
#         -e TALLY_MASTER_KEY_FILE=/run/secrets/tally-master-key tally
# Secrets (the master key, the callers file) are given at run time, never baked in.

# Build stage: dev dependencies (TypeScript) are needed to compile, and stay here.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# The lock file alone decides the dependency layer, so a source change reuses it.
COPY package.json package-lock.json ./
# The npm cache is a BuildKit cache mount: shared between builds, never in a layer.
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json tsconfig.build.json ./
# The build generates code for the third-party protos (health, reflection,
# Envoy ext_authz) from the npm packages installed above.
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the compiled output only.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts run: no production dependency needs one (protobufjs's only
# prints a version notice), and a compromised package cannot run code here.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts
COPY --from=build /app/dist ./dist
# The operator's command, `docker exec CONTAINER npx tally …`, runs dist/cli/ here.
# npx links the project's own bin into its cache and marks it executable, which
# only the file's owner may do: so this one launcher belongs to "node" (the
# server never runs it; dist/ and node_modules/ stay root's).
COPY --chown=node:node bin ./bin
# The base image's unprivileged "node" user (uid 1000); nothing in /app is writable by it.
USER node
# gRPC (TokenService, health, reflection, ext_authz) and HTTP (Connect, RFC 7662/7009, JWKS, probes).
EXPOSE 50051 8080
# The slim image has no curl; node's fetch probes the liveness endpoint instead.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.TALLY_HTTP_PORT || 8080) + '/healthz').then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
