package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Job states.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StateFailed    = "failed"
)

// States lists the job states in lifecycle order.
var States = []string{StateQueued, StateRunning, StateSucceeded, StateFailed}

// MaxListLimit bounds one page of List; DefaultListLimit is used when the
// caller gives none.
const (
	MaxListLimit     = 100
	DefaultListLimit = 20
)

// Errors the Store returns, possibly wrapped; match them with errors.Is.
var (
	// ErrNotFound: no job has the requested id.
	ErrNotFound = errors.New("job not found")
	// ErrIdempotencyConflict: the idempotency key was used for another job.
	ErrIdempotencyConflict = errors.New("idempotency key already used with a different job")
	// ErrFenced: a newer attempt (higher promotion epoch) has written the
	// job; the database refused this attempt's write and counted it.
	ErrFenced = errors.New("write refused: a newer attempt holds the job")
	// ErrNotMigrated: the jobs table does not exist yet.
	ErrNotMigrated = errors.New("database schema is not migrated")
)

// Pool bounds: small enough that a pair stays far inside PostgreSQL's
// default connection limit; a job holds a connection only while it writes.
const (
	minConns       = 1
	maxConns       = 8
	connectTimeout = 5 * time.Second
)

const undefinedTable = "42P01"

// Job is one stored job. Field order is the JSON key order of the API.
type Job struct {
	ID                  string          `json:"id"`
	Kind                string          `json:"kind"`
	Payload             json.RawMessage `json:"payload"`
	State               string          `json:"state"`
	Attempts            int             `json:"attempts"`
	AttemptID           string          `json:"attempt_id"`
	ExecutionNode       string          `json:"execution_node"`
	FenceEpoch          uint64          `json:"fence_epoch"`
	Completions         int             `json:"completions"`
	FencedWritesRefused int             `json:"fenced_writes_refused"`
	Result              json.RawMessage `json:"result"`
	Error               string          `json:"error"`
	CreatedAt           time.Time       `json:"created_at"`
	StartedAt           *time.Time      `json:"started_at"`
	FinishedAt          *time.Time      `json:"finished_at"`
	idempotencyKey      string
}

// Attempt is one execution of a job: the continuity identity the Mesh
// runtime gave it and the node it runs on.
type Attempt struct {
	JobID     string
	AttemptID string
	Epoch     uint64
	Node      string
}

// Signals are the backend's recovery signals, read from the database so
// every node reports the same figures and they survive restarts.
type Signals struct {
	// RestartCount is the number of times an attempt took over a job an
	// earlier attempt had left running.
	RestartCount int64 `json:"restart_count"`
	// RecoveredJobs is the number of jobs that were taken over at least once
	// and then succeeded.
	RecoveredJobs int64 `json:"recovered_jobs"`
	// LastRecoveryAt and LastRecoveryJobID name the newest take-over.
	LastRecoveryAt    *time.Time `json:"last_recovery_at"`
	LastRecoveryJobID string     `json:"last_recovery_job_id"`
	// LastExitReason says how the attempt taken over last ended.
	LastExitReason string `json:"last_exit_reason"`
	// FencedWritesRefused counts the writes the database refused because a
	// newer epoch had written the job first.
	FencedWritesRefused int64 `json:"fenced_writes_refused"`
}

// Connect opens a pool to the database at url and checks that it answers.
// The caller must Close the pool. Errors come from the driver, which does not
// echo the password; redact them anyway before logging.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("parse DATABASE_URL: invalid connection string")
	}
	cfg.MinConns = minConns
	cfg.MaxConns = maxConns
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Store is the jobs table, used through a pool. It is safe for concurrent
// use and does not own the pool.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const jobColumns = `id::text, kind, payload, state, attempts, attempt_id, execution_node, fence_epoch,
	completions, fenced_writes_refused, result, error, created_at, started_at, finished_at,
	coalesce(idempotency_key, '')`

func scanJob(row pgx.Row) (Job, error) {
	var j Job
	var result []byte
	if err := row.Scan(&j.ID, &j.Kind, &j.Payload, &j.State, &j.Attempts, &j.AttemptID, &j.ExecutionNode,
		&j.FenceEpoch, &j.Completions, &j.FencedWritesRefused, &result, &j.Error, &j.CreatedAt,
		&j.StartedAt, &j.FinishedAt, &j.idempotencyKey); err != nil {
		return Job{}, err
	}
	if result != nil {
		j.Result = result
	}
	j.CreatedAt = j.CreatedAt.UTC()
	for _, t := range []*time.Time{j.StartedAt, j.FinishedAt} {
		if t != nil {
			*t = t.UTC()
		}
	}
	return j, nil
}

// Create stores a new queued job with id, or, when idempotencyKey is not
// empty and already names a job, returns that job with created false. A key
// that names a job of another kind or payload is ErrIdempotencyConflict.
// payload must come from Validate.
func (s *Store) Create(ctx context.Context, id, kind string, payload json.RawMessage, idempotencyKey string) (Job, bool, error) {
	var key any
	if idempotencyKey != "" {
		key = idempotencyKey
	}
	j, err := scanJob(s.pool.QueryRow(ctx, `INSERT INTO jobs (id, idempotency_key, kind, payload)
		VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING RETURNING `+jobColumns,
		id, key, kind, string(payload)))
	if err == nil {
		return j, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) || idempotencyKey == "" {
		return Job{}, false, fmt.Errorf("create job: %w", classify(err))
	}
	j, err = scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE idempotency_key = $1`, idempotencyKey))
	if err != nil {
		return Job{}, false, fmt.Errorf("find job by idempotency key: %w", classify(err))
	}
	if j.Kind != kind || !sameJSON(j.Payload, payload) {
		return Job{}, false, ErrIdempotencyConflict
	}
	return j, false, nil
}

// sameJSON reports whether a and b encode the same JSON value (jsonb
// normalises key order and spacing, so compare decoded values).
func sameJSON(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	ea, _ := json.Marshal(va)
	eb, _ := json.Marshal(vb)
	return bytes.Equal(ea, eb)
}

// Get returns the job with id, or ErrNotFound. id must be a UUID.
func (s *Store) Get(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if err != nil {
		return Job{}, fmt.Errorf("get job %s: %w", id, classify(err))
	}
	return j, nil
}

// List returns up to limit jobs, newest first, in state when state is not
// empty. limit is clamped to 1..MaxListLimit.
func (s *Store) List(ctx context.Context, state string, limit int) ([]Job, error) {
	limit = max(1, min(limit, MaxListLimit))
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE ($1 = '' OR state = $1) ORDER BY created_at DESC, id LIMIT $2`, state, limit)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", classify(err))
	}
	jobs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Job, error) { return scanJob(row) })
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", classify(err))
	}
	return jobs, nil
}

// Refuse fails a job that is still queued because the cluster refused to
// accept its work (reason is the runtime's refusal reason). It changes
// nothing once an attempt has claimed the job.
func (s *Store) Refuse(ctx context.Context, id, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE jobs SET state = 'failed', error = $2, finished_at = now()
		WHERE id = $1 AND state = 'queued' AND attempts = 0`, id, "not accepted by the cluster: "+reason)
	if err != nil {
		return fmt.Errorf("refuse job %s: %w", id, classify(err))
	}
	return nil
}

// Claim starts attempt a on its job: state running, attempts + 1, the
// attempt's id, node and epoch. The write is fenced: it is refused (and
// counted) when the job already carries a higher epoch, and Claim returns
// ErrFenced. When the job is already succeeded or failed, Claim changes
// nothing and returns it with done true: an attempt re-run after the job
// finished must not run it again. When the job was left running by another
// attempt, Claim records the take-over in job_recoveries.
func (s *Store) Claim(ctx context.Context, a Attempt) (job Job, done bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1 FOR UPDATE`, a.JobID))
		if err != nil {
			return err
		}
		if cur.State == StateSucceeded || cur.State == StateFailed {
			job, done = cur, true
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1, attempt_id = $2,
			execution_node = $3, fence_epoch = $4, started_at = now()
			WHERE id = $1 AND fence_epoch <= $4 AND state IN ('queued', 'running')`,
			a.JobID, a.AttemptID, a.Node, int64(a.Epoch))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refuse(ctx, tx, a.JobID)
		}
		if cur.State == StateRunning && cur.AttemptID != a.AttemptID {
			reason := "owner_lost:" + cur.ExecutionNode
			if cur.ExecutionNode == a.Node {
				reason = "attempt_superseded"
			}
			if _, err := tx.Exec(ctx, `INSERT INTO job_recoveries (job_id, previous_attempt_id, previous_epoch,
				previous_node, attempt_id, epoch, node, exit_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				a.JobID, cur.AttemptID, int64(cur.FenceEpoch), cur.ExecutionNode, a.AttemptID, int64(a.Epoch), a.Node, reason); err != nil {
				return err
			}
		}
		job, err = scanJob(tx.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, a.JobID))
		return err
	})
	if errors.Is(err, ErrFenced) {
		return Job{}, false, fmt.Errorf("claim job %s at epoch %d: %w", a.JobID, a.Epoch, err)
	}
	if err != nil {
		return Job{}, false, fmt.Errorf("claim job %s: %w", a.JobID, classify(err))
	}
	return job, done, nil
}

// Finish records the outcome of attempt a: succeeded with result, or failed
// with errMsg when errMsg is not empty. The write is fenced like Claim's and
// applies only while the job is running, so a job succeeds at most once
// (completions counts the writes that finished it). A refused write returns
// ErrFenced; a job another attempt already finished is left as it is.
func (s *Store) Finish(ctx context.Context, a Attempt, result json.RawMessage, errMsg string) error {
	state := StateSucceeded
	var res any
	if errMsg != "" {
		state = StateFailed
	} else if result != nil {
		res = string(result)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE jobs SET state = $2, result = $3, error = $4, finished_at = now(),
			completions = completions + 1
			WHERE id = $1 AND fence_epoch <= $5 AND state = 'running'`,
			a.JobID, state, res, errMsg, int64(a.Epoch))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var epoch int64
		if err := tx.QueryRow(ctx, `SELECT fence_epoch FROM jobs WHERE id = $1 FOR UPDATE`, a.JobID).Scan(&epoch); err != nil {
			return err
		}
		if uint64(epoch) > a.Epoch {
			return refuse(ctx, tx, a.JobID)
		}
		return nil // finished by another attempt of the same epoch: its outcome stands
	})
	if errors.Is(err, ErrFenced) {
		return fmt.Errorf("finish job %s at epoch %d: %w", a.JobID, a.Epoch, err)
	}
	if err != nil {
		return fmt.Errorf("finish job %s: %w", a.JobID, classify(err))
	}
	return nil
}

// refuse counts a refused fenced write on the job and returns ErrFenced so
// the transaction commits the count and the caller sees the refusal.
func refuse(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `UPDATE jobs SET fenced_writes_refused = fenced_writes_refused + 1 WHERE id = $1`, id); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	return ErrFenced
}

// Signals returns the recovery signals.
func (s *Store) Signals(ctx context.Context) (Signals, error) {
	var sig Signals
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM job_recoveries),
		(SELECT count(DISTINCT r.job_id) FROM job_recoveries r JOIN jobs j ON j.id = r.job_id WHERE j.state = 'succeeded'),
		(SELECT coalesce(sum(fenced_writes_refused), 0) FROM jobs)`).Scan(&sig.RestartCount, &sig.RecoveredJobs, &sig.FencedWritesRefused)
	if err != nil {
		return Signals{}, fmt.Errorf("read recovery signals: %w", classify(err))
	}
	var at time.Time
	err = s.pool.QueryRow(ctx, `SELECT recovered_at, job_id::text, exit_reason FROM job_recoveries
		ORDER BY recovered_at DESC, id DESC LIMIT 1`).Scan(&at, &sig.LastRecoveryJobID, &sig.LastExitReason)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return Signals{}, fmt.Errorf("read last recovery: %w", classify(err))
	default:
		at = at.UTC()
		sig.LastRecoveryAt = &at
	}
	return sig, nil
}

// classify maps "no rows" to ErrNotFound and a missing table to
// ErrNotMigrated, keeping the driver error in the chain for the log.
func classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == undefinedTable {
		return fmt.Errorf("%w: %w", ErrNotMigrated, err)
	}
	return err
}
