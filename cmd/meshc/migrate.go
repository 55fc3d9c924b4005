package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

const migrateUsage = `Usage: meshc migrate [dir] up|down|status

Runs the SQL migrations in <dir>/migrations (default dir .) against the
PostgreSQL database named by the DATABASE_URL environment variable.

  up      apply every pending migration, oldest first
  down    roll back the most recently applied migration
  status  list applied and pending migrations

Migrations are goose SQL files named <version>_<description>.sql, with
-- +goose Up and -- +goose Down sections. Applied versions are recorded in the
goose_db_version table; concurrent runs are serialised by an advisory lock.
DATABASE_URL is never printed.

Examples:
  DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/my_todo meshc migrate . up
  meshc migrate my-todo status
`

// migrateActions are the actions of meshc migrate.
var migrateActions = []string{"up", "down", "status"}

// migrationsDir is the folder of a project that holds its migrations.
const migrationsDir = "migrations"

// connectTimeout bounds the first connection to the database.
const connectTimeout = 15 * time.Second

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("migrate", flag.ContinueOnError)
	pos, err := parseCommand(fset, args, migrateUsage, stdout)
	if err != nil {
		return err
	}
	dir, action := ".", ""
	switch len(pos) {
	case 1:
		action = pos[0]
	case 2:
		dir, action = pos[0], pos[1]
	default:
		return errors.New("usage: meshc migrate [dir] up|down|status; run 'meshc migrate --help'")
	}
	if !slices.Contains(migrateActions, action) {
		return fmt.Errorf("unknown migrate action '%s'; use up, down or status", action)
	}
	migDir := filepath.Join(dir, migrationsDir)
	if st, err := os.Stat(migDir); err != nil || !st.IsDir() {
		return fmt.Errorf("no %s directory in %s; pass the project directory (meshc migrate <dir> %s), which holds %s/", migrationsDir, dir, action, migrationsDir)
	}
	if files, _ := filepath.Glob(filepath.Join(migDir, "*.sql")); len(files) == 0 {
		return fmt.Errorf("no migrations in %s (expected <version>_<description>.sql files)", migDir)
	}
	databaseURL := os.Getenv("DATABASE_URL")
	if strings.TrimSpace(databaseURL) == "" {
		return errors.New("Missing required environment variable DATABASE_URL; export it first, e.g. export DATABASE_URL=postgres://user:password@127.0.0.1:5432/dbname")
	}
	// Every error below may quote the connection string or its password;
	// scrub them before they reach the terminal.
	red := newRedactor(databaseURL)
	if err := migrate(ctx, databaseURL, migDir, action, stdout); err != nil {
		return errors.New(red.scrub(err.Error()))
	}
	return nil
}

func migrate(ctx context.Context, databaseURL, migDir, action string, stdout io.Writer) error {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return fmt.Errorf("open DATABASE_URL: %w", err)
	}
	defer db.Close()
	pingCtx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return fmt.Errorf("connect to DATABASE_URL: %w; check that PostgreSQL runs and that the host, port, user, password and database in DATABASE_URL are right", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, sqlFiles{os.DirFS(migDir)},
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if errors.Is(err, goose.ErrNoMigrations) {
		return fmt.Errorf("no migrations in %s (expected <version>_<description>.sql files)", migDir)
	}
	if err != nil {
		return fmt.Errorf("read migrations in %s: %w", migDir, err)
	}
	switch action {
	case "up":
		return migrateUp(ctx, provider, stdout)
	case "down":
		return migrateDown(ctx, provider, stdout)
	default:
		return migrateStatus(ctx, provider, stdout)
	}
}

func migrateUp(ctx context.Context, p *goose.Provider, stdout io.Writer) error {
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	applied := 0
	for _, s := range statuses {
		if s.State != goose.StatePending {
			continue
		}
		fmt.Fprintf(stdout, "Applying: %s\n", filepath.Base(s.Source.Path))
		if _, err := p.UpByOne(ctx); err != nil {
			if errors.Is(err, goose.ErrNoNextVersion) {
				break // applied meanwhile by a concurrent run
			}
			return fmt.Errorf("apply %s: %w", filepath.Base(s.Source.Path), err)
		}
		applied++
	}
	fmt.Fprintf(stdout, "Applied %d migration(s)\n", applied)
	return nil
}

func migrateDown(ctx context.Context, p *goose.Provider, stdout io.Writer) error {
	res, err := p.Down(ctx)
	if errors.Is(err, goose.ErrNoNextVersion) {
		fmt.Fprintln(stdout, "Rolled back 0 migration(s)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("roll back: %w", err)
	}
	fmt.Fprintf(stdout, "Rolled back: %s\n", filepath.Base(res.Source.Path))
	fmt.Fprintln(stdout, "Rolled back 1 migration(s)")
	return nil
}

func migrateStatus(ctx context.Context, p *goose.Provider, stdout io.Writer) error {
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("read migration status: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tMIGRATION\tAPPLIED AT")
	var applied, pending int
	for _, s := range statuses {
		at := "-"
		if s.State == goose.StateApplied {
			applied++
			at = s.AppliedAt.UTC().Format(time.RFC3339)
		} else {
			pending++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.State, filepath.Base(s.Source.Path), at)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d applied, %d pending\n", applied, pending)
	return nil
}

// sqlFiles shows goose only the .sql files of a directory: meshc runs SQL
// migrations, and a stray .go file would otherwise be taken for an
// unregistered Go migration.
type sqlFiles struct{ fs.FS }

// ReadDir lists the .sql files and subdirectories of name.
func (s sqlFiles) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := fs.ReadDir(s.FS, name)
	return slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
		return !e.IsDir() && !strings.HasSuffix(e.Name(), ".sql")
	}), err
}

// redactor replaces a connection string and its password in text.
type redactor struct {
	urls    []string // the connection string and the masked forms drivers print
	secrets []string // passwords, raw and decoded
}

const redactedURL = "<redacted:DATABASE_URL>"

// urlPassword finds the raw password of a URL-form connection string even
// when the URL does not parse.
var urlPassword = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:([^@]*)@`)

func newRedactor(databaseURL string) redactor {
	r := redactor{urls: []string{databaseURL}}
	if m := urlPassword.FindStringSubmatch(databaseURL); m != nil && m[1] != "" {
		raw := m[1]
		r.secrets = append(r.secrets, raw)
		if dec, err := url.PathUnescape(raw); err == nil {
			r.secrets = append(r.secrets, dec)
		}
		// pgx quotes connection strings with the password masked as xxxxx.
		r.urls = append(r.urls, strings.Replace(databaseURL, ":"+raw+"@", ":xxxxx@", 1))
		if u, err := url.Parse(databaseURL); err == nil && u.User != nil {
			masked := *u
			masked.User = url.UserPassword(u.User.Username(), "xxxxx")
			r.urls = append(r.urls, masked.String())
		}
	}
	if cfg, err := pgconn.ParseConfig(databaseURL); err == nil && cfg.Password != "" {
		r.secrets = append(r.secrets, cfg.Password)
	}
	longestFirst := func(a, b string) int { return len(b) - len(a) }
	slices.SortFunc(r.urls, longestFirst)
	slices.SortFunc(r.secrets, longestFirst)
	return r
}

// scrub returns s with every connection string and password replaced.
func (r redactor) scrub(s string) string {
	for _, u := range r.urls {
		s = strings.ReplaceAll(s, u, redactedURL)
	}
	for _, secret := range r.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "<redacted>")
		}
	}
	return s
}
