# syntax=docker/dockerfile:1
# Latchkey: build with every dependency, run with production dependencies only, as the unprivileged `node` user.
# The runtime starts exactly what `npm start` and the tests start: node dist/main.js (test/process/container.test.ts).

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: `prepare` needs the sources (copied next) and nothing else needs one (@node-rs/argon2 ships prebuilt
# binaries; Prisma's native engines are never used).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
# Generates the Prisma client into src/generated and compiles src/ to dist/ and the examples to dist-examples/
# (scripts/prepare.mjs).
RUN npm run build

FROM node:24-bookworm-slim AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
# The generated client in dist/generated needs @prisma/client's runtime, a production dependency.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The example MCP server (examples/mcp-server), compiled: see the mcp-server place in docker-compose.yml.
COPY --from=build /app/dist-examples ./dist-examples
COPY bin ./bin
COPY prisma ./prisma
COPY templates ./templates
# `latchkey` on the PATH: docker compose exec latchkey latchkey user add …
RUN ln -s /app/bin/latchkey.js /usr/local/bin/latchkey \
  && mkdir -p /data \
  && chown node:node /data
USER node
ENV HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 3000
# The image has no curl: node asks /readyz (the database answers) on the configured port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
