# flashsale-worker image: one worker process per container, configured only by environment variables.
#   docker build -t flashsale-worker .
# The same image runs the migrations (node dist/src/tools/migrate/migrate.js) and the load test
# (node dist/scripts/loadtest.js); see docs/deployment.md.

# Node 24 LTS (package.json `engines`, .nvmrc) on Debian slim: glibc, as on the development machines.
ARG NODE_IMAGE=node:24-bookworm-slim

# Both stages install exactly what package-lock.json lists (`npm ci`). The build stage needs the dev
# dependencies (Nest CLI, Prisma CLI, TypeScript); the runtime stage gets none of them.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# The manifests of the npm workspaces (package.json `workspaces`), which package-lock.json lists: `npm ci`
# links them into node_modules (@flashsale/contract, @flashsale/publisher, which the worker imports). The
# example API is not built into the image; its manifest only keeps the lock in step.
COPY packages/contract/package.json ./packages/contract/
COPY packages/publisher/package.json ./packages/publisher/
COPY examples/flash-sale-api/package.json ./examples/flash-sale-api/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json nest-cli.json prisma.config.ts ./
COPY packages ./packages
COPY prisma ./prisma
COPY src ./src
COPY scripts ./scripts
# `npm run build` = the packages (tsc into packages/*/dist) + prisma generate (the client under src/generated,
# compiled into dist/src/generated) + nest build.
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/contract/package.json ./packages/contract/
COPY packages/publisher/package.json ./packages/publisher/
COPY examples/flash-sale-api/package.json ./examples/flash-sale-api/
# --omit=optional: the lock marks @prisma/client's optional peers (the prisma CLI, TypeScript: 250 MB) as
# dev-or-optional, so --omit=dev alone keeps them; it also leaves out pg-cloudflare, which the worker does not use.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The built packages behind node_modules/@flashsale/* (workspace links): the worker's contract, the load
# test's publisher.
COPY --from=build /app/packages/contract/dist ./packages/contract/dist
COPY --from=build /app/packages/publisher/dist ./packages/publisher/dist
# migrate.js reads prisma/migrations/*/migration.sql relative to dist/.
COPY prisma ./prisma
USER node
EXPOSE 3000
# The worker drains on SIGTERM within SHUTDOWN_DEADLINE_MS (25 s by default) and forces an exit 2 s later:
# stop it with more than that (compose: stop_grace_period 30 s, Kubernetes: 40 s, `docker stop -t 30`;
# plain `docker stop` waits only 10 s).
STOPSIGNAL SIGTERM
# Liveness only: /ready is for orchestrators that route or scale on readiness. Node, since slim has no curl.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HTTP_PORT || 3000}/health`, { signal: AbortSignal.timeout(4000) }).then((response) => process.exit(response.ok ? 0 : 1), () => process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (it installs its own handlers, so no init is needed).
# start.js re-executes node in place (same PID) with the worker's flags, src/node-flags.ts, on main.js.
CMD ["node", "dist/src/start.js"]
