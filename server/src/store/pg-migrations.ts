// The PostgreSQL dialect of migrations.ts: entry N here makes what entry N
// there makes, so both engines report the same schema version. Types follow
// what the rows hold: timestamps are timestamptz, 0/1 flags boolean, SQLite's
// 64-bit INTEGER is bigint (read back as a JS number), REAL is double
// precision (real would round 0.8 to 0.800000011920929). Documents handed back
// as they were written are json, which keeps their key order; arrays that are
// searched (tags) are jsonb. Applied versions are rows of schema_migrations.
// Append new ones in step with migrations.ts; never edit a shipped one.

export const pgMigrations: string[] = [
  // 1: jobs, training steps, snapshots, models; in PostgreSQL also the blobs
  // (every host reaches them here, not in a var/ directory) and the key that
  // makes a retried batch of steps land once (flush_id, flush_row).
  `
  CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    device_id    TEXT,
    state        TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed')),
    done         BIGINT NOT NULL DEFAULT 0,
    total        BIGINT NOT NULL DEFAULT 0,
    params       JSON NOT NULL DEFAULT '{}',
    result       JSON,
    error        JSON,
    created_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
  );
  CREATE INDEX jobs_device ON jobs(device_id, created_at);
  CREATE INDEX jobs_state ON jobs(state);

  CREATE TABLE steps (
    seq           BIGSERIAL PRIMARY KEY,
    device_id     TEXT NOT NULL,
    job_id        TEXT,
    step_id       BIGINT NOT NULL,
    sample_index  BIGINT NOT NULL,
    loss_ppm      BIGINT NOT NULL,
    counter       BIGINT NOT NULL,
    counter_unit  TEXT NOT NULL,
    updated_ppm   BIGINT NOT NULL,
    correct       BOOLEAN NOT NULL,
    peak_ram      BIGINT NOT NULL,
    energy_uj     DOUBLE PRECISION,
    energy_source TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    flush_id      TEXT NOT NULL,
    flush_row     INTEGER NOT NULL
  );
  CREATE INDEX steps_device ON steps(device_id, seq);
  CREATE UNIQUE INDEX steps_flush ON steps(flush_id, flush_row);

  CREATE TABLE models (
    sha256        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    seed          BIGINT,
    bytes         BIGINT NOT NULL,
    weights_bytes BIGINT,
    input_bytes   BIGINT,
    classes       BIGINT,
    created_at    TIMESTAMPTZ NOT NULL
  );

  CREATE TABLE snapshots (
    id            TEXT PRIMARY KEY,
    sha256        TEXT NOT NULL,
    bytes         BIGINT NOT NULL,
    device_id     TEXT NOT NULL,
    model_sha256  TEXT NOT NULL,
    model_name    TEXT,
    step          BIGINT NOT NULL,
    tags          JSONB NOT NULL DEFAULT '[]',
    accuracy      DOUBLE PRECISION,
    good          BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL
  );
  CREATE INDEX snapshots_device ON snapshots(device_id, created_at);
  CREATE INDEX snapshots_sha ON snapshots(sha256);

  CREATE TABLE blobs (
    sha256        TEXT PRIMARY KEY,
    data          BYTEA NOT NULL,
    bytes         INTEGER NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
  );
  `,
  // 2: per-device counters that must survive a daemon restart
  `
  CREATE TABLE device_state (
    device_id     TEXT PRIMARY KEY,
    model_sha256  TEXT,
    model_name    TEXT,
    boot_id       BIGINT,
    updated_at    TIMESTAMPTZ NOT NULL
  );
  `,
  // 3: who started each job (the token's name)
  `
  ALTER TABLE jobs ADD COLUMN actor TEXT;
  `,
  // 4: models defined by users: where a model came from, its plan, the JSON it was built from, who added it
  `
  ALTER TABLE models ADD COLUMN source TEXT NOT NULL DEFAULT 'zoo';
  ALTER TABLE models ADD COLUMN plan JSON;
  ALTER TABLE models ADD COLUMN spec JSON;
  ALTER TABLE models ADD COLUMN actor TEXT;
  CREATE INDEX models_name ON models(name, source);
  `,
  // 5: the dataset slice a snapshot's accuracy was measured on ({dataset, split, offset, count})
  `
  ALTER TABLE snapshots ADD COLUMN evaluated_on JSON;
  `,
  // 6: regression runs, each suite's baseline, and reservations of boards (leases that expire)
  `
  CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    suite        TEXT NOT NULL,
    state        TEXT NOT NULL,
    doc          JSON NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ
  );
  CREATE INDEX runs_suite ON runs(suite, created_at);
  CREATE TABLE baselines (
    suite        TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    set_at       TIMESTAMPTZ NOT NULL,
    actor        TEXT
  );
  CREATE TABLE leases (
    id           TEXT PRIMARY KEY,
    device_ids   JSONB NOT NULL,
    holder       TEXT NOT NULL,
    reason       TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    ended_by     TEXT
  );
  `,
  // 7: many rig hosts: the host that runs each job, the hosts registered, and the boards each owns
  `
  ALTER TABLE jobs ADD COLUMN host_id TEXT;
  CREATE INDEX jobs_host ON jobs(host_id, state);
  CREATE TABLE hosts (
    id            TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    version       TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    heartbeat_at  TIMESTAMPTZ NOT NULL,
    stopped_at    TIMESTAMPTZ
  );
  CREATE TABLE boards (
    device_id     TEXT PRIMARY KEY,
    host_id       TEXT NOT NULL,
    doc           JSON NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
  );
  CREATE INDEX boards_host ON boards(host_id);
  `,
];
