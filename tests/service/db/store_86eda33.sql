-- The tables as commit 86eda33's code created them on PostgreSQL: the DDL its service/jobs/tables.py
-- emits through MetaData.create_all (SQLAlchemy's mock engine). On SQLite the same, but SERIAL is INTEGER.
CREATE TABLE jobs (
	id VARCHAR(32) NOT NULL,
	status VARCHAR(16) NOT NULL,
	family VARCHAR(16) NOT NULL,
	name VARCHAR(64) NOT NULL,
	promote BOOLEAN NOT NULL,
	spec JSON NOT NULL,
	created_at FLOAT NOT NULL,
	started_at FLOAT,
	finished_at FLOAT,
	owner VARCHAR(200),
	worker_pid INTEGER,
	heartbeat_at FLOAT,
	cancel_requested BOOLEAN NOT NULL,
	cancel_reason TEXT,
	iteration INTEGER NOT NULL,
	total_iterations INTEGER NOT NULL,
	elapsed FLOAT,
	last_loss FLOAT,
	metrics JSON,
	model_name VARCHAR(64),
	model_version INTEGER,
	error TEXT,
	PRIMARY KEY (id)
);

CREATE INDEX ix_jobs_status ON jobs (status);

CREATE INDEX ix_jobs_created ON jobs (created_at);

CREATE TABLE model_aliases (
	model VARCHAR(64) NOT NULL,
	alias VARCHAR(32) NOT NULL,
	version INTEGER NOT NULL,
	updated_at FLOAT NOT NULL,
	PRIMARY KEY (model, alias)
);

CREATE TABLE alias_moves (
	seq SERIAL NOT NULL,
	model VARCHAR(64) NOT NULL,
	alias VARCHAR(32) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	from_version INTEGER,
	to_version INTEGER NOT NULL,
	actor VARCHAR(80) NOT NULL,
	reason TEXT NOT NULL,
	at FLOAT NOT NULL,
	PRIMARY KEY (seq)
);

CREATE INDEX ix_alias_moves_model ON alias_moves (model, seq);

CREATE TABLE model_traffic (
	model VARCHAR(64) NOT NULL,
	weights JSON NOT NULL,
	shadow VARCHAR(32),
	updated_at FLOAT NOT NULL,
	PRIMARY KEY (model)
);

CREATE TABLE job_curve (
	seq SERIAL NOT NULL,
	job_id VARCHAR(32) NOT NULL,
	first_iteration INTEGER NOT NULL,
	losses JSON NOT NULL,
	accuracy JSON NOT NULL,
	PRIMARY KEY (seq),
	FOREIGN KEY(job_id) REFERENCES jobs (id) ON DELETE CASCADE
);

CREATE INDEX ix_job_curve_job ON job_curve (job_id, seq);
