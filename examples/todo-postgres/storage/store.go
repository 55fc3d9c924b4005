// Package storage keeps the todos in PostgreSQL through a pgx connection
// pool. The schema belongs to the migrations (migrations/ and
// deploy/schema.up.sql); this package never creates tables.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors the Store returns, possibly wrapped; match them with errors.Is.
var (
	// ErrNotFound: no todo has the requested id.
	ErrNotFound = errors.New("todo not found")
	// ErrNotMigrated: the todos table does not exist yet.
	ErrNotMigrated = errors.New("database schema is not migrated")
)

// Pool bounds. A small pool is plenty for a todo service and keeps two nodes
// well inside PostgreSQL's default connection limit.
const (
	minConns       = 1
	maxConns       = 4
	connectTimeout = 5 * time.Second
)

// undefinedTable is the SQLSTATE of "relation does not exist".
const undefinedTable = "42P01"

// Todo is one stored todo.
type Todo struct {
	ID        string // UUID, lower case
	Title     string
	Completed bool
	CreatedAt time.Time
}

// Connect opens a pool to the database at url (min 1, max 4 connections,
// 5 s connect timeout) and checks that the database answers. The caller must
// Close the pool. Errors come from the driver, which does not echo the
// password; redact them anyway before logging.
func Connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
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

const todoColumns = `id::text, title, completed, created_at`

// Store is the todos table, used through a pool. It is safe for concurrent
// use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool. The Store does not own the pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// List returns every todo, newest first.
func (s *Store) List(ctx context.Context) ([]Todo, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+todoColumns+` FROM todos ORDER BY created_at DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("list todos: %w", classify(err))
	}
	todos, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Todo, error) { return scanTodo(row) })
	if err != nil {
		return nil, fmt.Errorf("list todos: %w", classify(err))
	}
	return todos, nil
}

// Get returns the todo with id, or ErrNotFound. id must be a UUID.
func (s *Store) Get(ctx context.Context, id string) (Todo, error) {
	t, err := scanTodo(s.pool.QueryRow(ctx, `SELECT `+todoColumns+` FROM todos WHERE id = $1`, id))
	if err != nil {
		return Todo{}, fmt.Errorf("get todo %s: %w", id, classify(err))
	}
	return t, nil
}

// Create stores a new, not completed todo and returns it.
func (s *Store) Create(ctx context.Context, title string) (Todo, error) {
	t, err := scanTodo(s.pool.QueryRow(ctx, `INSERT INTO todos (title) VALUES ($1) RETURNING `+todoColumns, title))
	if err != nil {
		return Todo{}, fmt.Errorf("create todo: %w", classify(err))
	}
	return t, nil
}

// Toggle flips the completed flag of the todo with id in one statement and
// returns the updated todo, or ErrNotFound.
func (s *Store) Toggle(ctx context.Context, id string) (Todo, error) {
	t, err := scanTodo(s.pool.QueryRow(ctx,
		`UPDATE todos SET completed = NOT completed WHERE id = $1 RETURNING `+todoColumns, id))
	if err != nil {
		return Todo{}, fmt.Errorf("toggle todo %s: %w", id, classify(err))
	}
	return t, nil
}

// Delete removes the todo with id, or returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM todos WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete todo %s: %w", id, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ClearCompleted deletes, in one statement, the completed todos created at
// or before cutoff, and returns how many it deleted and how many todos
// remain.
func (s *Store) ClearCompleted(ctx context.Context, cutoff time.Time) (deleted, remaining int64, err error) {
	err = s.pool.QueryRow(ctx, `WITH gone AS (
		DELETE FROM todos WHERE completed AND created_at <= $1 RETURNING 1
	)
	SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM todos) - (SELECT count(*) FROM gone)`,
		cutoff).Scan(&deleted, &remaining)
	if err != nil {
		return 0, 0, fmt.Errorf("clear completed todos: %w", classify(err))
	}
	return deleted, remaining, nil
}

func scanTodo(row pgx.Row) (Todo, error) {
	var t Todo
	if err := row.Scan(&t.ID, &t.Title, &t.Completed, &t.CreatedAt); err != nil {
		return Todo{}, err
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return t, nil
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
