// Schema migrations, applied in order; each runs once, inside a transaction,
// and bumps PRAGMA user_version. Append new ones; never edit a shipped one.

export const migrations: string[] = [
  // 1: jobs, training steps, snapshots, models
  `
  CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    device_id    TEXT,
    state        TEXT NOT NULL CHECK (state IN ('queued','running','succeeded','failed')),
    done         INTEGER NOT NULL DEFAULT 0,
    total        INTEGER NOT NULL DEFAULT 0,
    params       TEXT NOT NULL DEFAULT '{}',
    result       TEXT,
    error        TEXT,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT
  );
  CREATE INDEX jobs_device ON jobs(device_id, created_at);
  CREATE INDEX jobs_state ON jobs(state);

  CREATE TABLE steps (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id     TEXT NOT NULL,
    job_id        TEXT,
    step_id       INTEGER NOT NULL,
    sample_index  INTEGER NOT NULL,
    loss_ppm      INTEGER NOT NULL,
    counter       INTEGER NOT NULL,
    counter_unit  TEXT NOT NULL,
    updated_ppm   INTEGER NOT NULL,
    correct       INTEGER NOT NULL,
    peak_ram      INTEGER NOT NULL,
    energy_uj     REAL,
    energy_source TEXT,
    created_at    TEXT NOT NULL
  );
  CREATE INDEX steps_device ON steps(device_id, seq);

  CREATE TABLE models (
    sha256        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    seed          INTEGER,
    bytes         INTEGER NOT NULL,
    weights_bytes INTEGER,
    input_bytes   INTEGER,
    classes       INTEGER,
    created_at    TEXT NOT NULL
  );

  CREATE TABLE snapshots (
    id            TEXT PRIMARY KEY,
    sha256        TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    device_id     TEXT NOT NULL,
    model_sha256  TEXT NOT NULL,
    model_name    TEXT,
    step          INTEGER NOT NULL,
    tags          TEXT NOT NULL DEFAULT '[]',
    accuracy      REAL,
    good          INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
  );
  CREATE INDEX snapshots_device ON snapshots(device_id, created_at);
  CREATE INDEX snapshots_sha ON snapshots(sha256);
  `,
  // 2: per-device counters that must survive a daemon restart
  `
  CREATE TABLE device_state (
    device_id     TEXT PRIMARY KEY,
    model_sha256  TEXT,
    model_name    TEXT,
    boot_id       INTEGER,
    updated_at    TEXT NOT NULL
  );
  `,
  // 3: who started each job (the token's name)
  `
  ALTER TABLE jobs ADD COLUMN actor TEXT;
  `,
  // 4: models defined by users: where a model came from, its plan, the JSON it was built from, who added it
  `
  ALTER TABLE models ADD COLUMN source TEXT NOT NULL DEFAULT 'zoo';
  ALTER TABLE models ADD COLUMN plan TEXT;
  ALTER TABLE models ADD COLUMN spec TEXT;
  ALTER TABLE models ADD COLUMN actor TEXT;
  CREATE INDEX models_name ON models(name, source);
  `,
  // 5: the dataset slice a snapshot's accuracy was measured on (JSON {dataset, split, offset, count})
  `
  ALTER TABLE snapshots ADD COLUMN evaluated_on TEXT;
  `,
  // 6: regression runs, each suite's baseline, and reservations of boards (leases that expire)
  `
  CREATE TABLE runs (
    id           TEXT PRIMARY KEY,
    suite        TEXT NOT NULL,
    state        TEXT NOT NULL,
    doc          TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    finished_at  TEXT
  );
  CREATE INDEX runs_suite ON runs(suite, created_at);
  CREATE TABLE baselines (
    suite        TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    set_at       TEXT NOT NULL,
    actor        TEXT
  );
  CREATE TABLE leases (
    id           TEXT PRIMARY KEY,
    device_ids   TEXT NOT NULL,
    holder       TEXT NOT NULL,
    reason       TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ended_at     TEXT,
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
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    stopped_at    TEXT
  );
  CREATE TABLE boards (
    device_id     TEXT PRIMARY KEY,
    host_id       TEXT NOT NULL,
    doc           TEXT NOT NULL,
    updated_at    TEXT NOT NULL
  );
  CREATE INDEX boards_host ON boards(host_id);
  `,
];
