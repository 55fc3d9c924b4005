package jobs

import (
	"context"
	"errors"
	"fmt"
	"log"
)

// Runner runs job attempts against a Store. It is safe for concurrent use.
type Runner struct {
	store  *Store
	logger *log.Logger
}

// NewRunner returns a Runner over store that logs to logger.
func NewRunner(store *Store, logger *log.Logger) *Runner {
	return &Runner{store: store, logger: logger}
}

// Run executes attempt a: it claims the job, runs its kind and records the
// outcome, every write fenced by a.Epoch. It returns the job's final state.
// A job that fails (kind fail, or its own error) is recorded as failed and
// is not an error of Run: the attempt did its work. Run returns an error when
// the database refused a write (ErrFenced: a newer epoch holds the job) or
// could not be written, so the runtime does not record this attempt as done.
func (r *Runner) Run(ctx context.Context, a Attempt) (string, error) {
	job, done, err := r.store.Claim(ctx, a)
	if err != nil {
		r.logf(a, "claim refused: %v", err)
		return "", err
	}
	if done {
		r.logf(a, "already %s; nothing to run", job.State)
		return job.State, nil
	}
	result, runErr := execute(ctx, job.Kind, job.Payload)
	if runErr != nil && ctx.Err() != nil {
		// The node is stopping: leave the job running for the attempt that
		// takes it over.
		return "", fmt.Errorf("job %s interrupted: %w", a.JobID, runErr)
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
	}
	if err := r.store.Finish(ctx, a, result, msg); err != nil {
		if errors.Is(err, ErrFenced) {
			r.logf(a, "fenced write refused: %v", err)
		} else {
			r.logf(a, "finish failed: %v", err)
		}
		return "", err
	}
	if msg != "" {
		return StateFailed, nil
	}
	return StateSucceeded, nil
}

func (r *Runner) logf(a Attempt, format string, args ...any) {
	if r.logger == nil {
		return
	}
	r.logger.Printf("job=%s attempt_id=%s epoch=%d node=%s "+format,
		append([]any{a.JobID, a.AttemptID, a.Epoch, a.Node}, args...)...)
}
