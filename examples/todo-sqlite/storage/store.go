// Package storage keeps the todos in one SQLite database file.
//
// The database runs in WAL mode with synchronous=FULL, so an acknowledged
// write survives a crash or power loss, and with a busy timeout, so concurrent
// writers wait for each other instead of failing with "database is locked".
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// ErrNotFound is returned when no todo has the requested id.
var ErrNotFound = errors.New("todo not found")

// Todo is one stored todo.
type Todo struct {
	ID        int64
	Title     string
	Completed bool
	CreatedAt time.Time // UTC, second precision
}

// busyTimeout is how long a statement waits for another connection's write
// lock before failing.
const busyTimeout = 5 * time.Second

const schema = `CREATE TABLE IF NOT EXISTS todos (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	title TEXT NOT NULL,
	completed INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL
)`

const todoColumns = `id, title, completed, created_at`

// Store is the todo table of one SQLite database. It holds a single *sql.DB
// for the life of the process and is safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// Open opens the SQLite database at path, creating the file when it does not
// exist, checks that it runs in WAL mode and creates the todos table when it
// is missing. The caller must Close the Store.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// dsn builds a file: URI for path whose query applies the pragmas to every
// connection the pool opens. '%', '?' and '#' are escaped so that any file
// name survives URI parsing.
func dsn(path string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return fmt.Sprintf("file:%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)",
		escaped, busyTimeout.Milliseconds())
}

func (s *Store) init(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal (is the file read-only or on a file system without WAL support?)", mode)
	}
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// List returns every todo, oldest first.
func (s *Store) List(ctx context.Context) ([]Todo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+todoColumns+` FROM todos ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list todos: %w", err)
	}
	defer rows.Close()
	todos := []Todo{}
	for rows.Next() {
		t, err := scanTodo(rows)
		if err != nil {
			return nil, fmt.Errorf("list todos: %w", err)
		}
		todos = append(todos, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list todos: %w", err)
	}
	return todos, nil
}

// Get returns the todo with id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id int64) (Todo, error) {
	t, err := scanOne(s.db.QueryRowContext(ctx, `SELECT `+todoColumns+` FROM todos WHERE id = ?`, id))
	if err != nil {
		return Todo{}, fmt.Errorf("get todo %d: %w", id, err)
	}
	return t, nil
}

// Create stores a new, not completed todo and returns it.
func (s *Store) Create(ctx context.Context, title string) (Todo, error) {
	created := s.now().UTC().Format(time.RFC3339)
	t, err := scanOne(s.db.QueryRowContext(ctx,
		`INSERT INTO todos (title, completed, created_at) VALUES (?, 0, ?) RETURNING `+todoColumns, title, created))
	if err != nil {
		return Todo{}, fmt.Errorf("create todo: %w", err)
	}
	return t, nil
}

// Toggle flips the completed flag of the todo with id in one statement and
// returns the updated todo, or ErrNotFound.
func (s *Store) Toggle(ctx context.Context, id int64) (Todo, error) {
	t, err := scanOne(s.db.QueryRowContext(ctx,
		`UPDATE todos SET completed = 1 - completed WHERE id = ? RETURNING `+todoColumns, id))
	if err != nil {
		return Todo{}, fmt.Errorf("toggle todo %d: %w", id, err)
	}
	return t, nil
}

// Delete removes the todo with id, or returns ErrNotFound.
func (s *Store) Delete(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM todos WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete todo %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete todo %d: %w", id, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// scanOne scans a single-row result; no row is ErrNotFound.
func scanOne(row *sql.Row) (Todo, error) {
	t, err := scanTodo(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Todo{}, ErrNotFound
	}
	return t, err
}

func scanTodo(row interface{ Scan(...any) error }) (Todo, error) {
	var (
		t       Todo
		created string
	)
	if err := row.Scan(&t.ID, &t.Title, &t.Completed, &created); err != nil {
		return Todo{}, err
	}
	at, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return Todo{}, fmt.Errorf("todo %d: created_at: %w", t.ID, err)
	}
	t.CreatedAt = at.UTC()
	return t, nil
}
