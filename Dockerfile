# The tinyrig daemon with its firmware tools (host twin, tinyrig-train, QEMU
# images) so it can serve real boards or an emulated rig.
#   docker compose up -d                      daemon over real boards
#   docker compose --profile emulated up -d   emulated rig + its daemon
FROM node:20-bookworm-slim

# Build tools for the firmware and native npm modules (better-sqlite3 falls
# back to a source build), the Cortex-M toolchain and QEMU for the emulated
# boards, socat for PTY plumbing, and the Fashion-MNIST files the daemon streams.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      make gcc g++ libc6-dev python3 ca-certificates \
      gcc-arm-none-eabi libnewlib-arm-none-eabi \
      qemu-system-arm socat dataset-fashion-mnist \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first so source edits do not re-run npm ci.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && sha256sum package-lock.json | cut -d' ' -f1 > node_modules/.tinyrig-lock-sha

COPY tsconfig.json ./
COPY firmware ./firmware
# tools/: host tools the firmware build compiles (linksim) and the process
# plumbing scripts/rig imports (tools/proc)
COPY tools ./tools
COPY protocol ./protocol
COPY server ./server
COPY scripts ./scripts
COPY bin ./bin

RUN make -s -C firmware -j"$(nproc)"

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    TINYRIG_VAR=/app/var
VOLUME ["/app/var"]
EXPOSE 8080

CMD ["npx", "tsx", "server/src/server.ts"]
