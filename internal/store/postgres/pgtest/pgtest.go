// Package pgtest runs a throwaway PostgreSQL server for tests, so that the PostgreSQL
// store is tested against the real thing on a machine with nothing set up but the server
// binaries.
//
// A test binary calls Main from its TestMain: it runs initdb in a temporary directory,
// starts postgres listening only on a unix socket in that directory (fsync off: the data
// dies with the test binary anyway), runs the tests, then stops the server and removes the
// directory. Each test then calls DSN for a database of its own, cloned from a template
// (CREATE DATABASE ... TEMPLATE), so that tests run in parallel without seeing each other.
//
// PostgreSQL refuses to run as root, and CI runs tests as root: then the server runs as the
// unprivileged user "nobody", which owns the temporary directory.
//
// Without the binaries the tests skip, naming what to install; with CI=true (as CI
// services set it) they fail instead, so that a CI machine cannot pass by skipping.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoBinaries: no PostgreSQL server binaries were found.
var ErrNoBinaries = errors.New("pgtest: no PostgreSQL server binaries (initdb, postgres): " +
	"install them (Debian/Ubuntu: apt-get install postgresql) or set PAVED_PG_BIN to the directory that holds them")

// startTimeout bounds initdb plus the server's start.
const startTimeout = 60 * time.Second

// Server is a running throwaway PostgreSQL.
type Server struct {
	dir      string // owns everything: data/, the socket, postgres.log
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	template string // the database DSN clones; "" until Main's setup made one
	n        atomic.Int64
}

var (
	global *Server
	// skipReason is why DSN skips: the binaries are missing and this is not CI.
	skipReason string
)

// Main starts a server, runs setup (if not nil) on a template database that every DSN
// database is then cloned from, runs the tests, stops the server and exits. Call it from
// TestMain.
func Main(m *testing.M, setup func(ctx context.Context, dsn string) error) {
	os.Exit(run(m, setup))
}

func run(m *testing.M, setup func(ctx context.Context, dsn string) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := Start(ctx, Config{})
	if errors.Is(err, ErrNoBinaries) && !inCI() {
		skipReason = err.Error()
		return m.Run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Stop()
	if setup != nil {
		if err := s.makeTemplate(ctx, setup); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	global = s
	return m.Run()
}

// inCI reports whether CI is set as CI services set it.
func inCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// DSN creates a database of the test's own on Main's server and returns its connection
// URL; the database is dropped when the test ends. It skips the test when the server
// binaries are missing.
func DSN(t testing.TB) string {
	t.Helper()
	if global == nil {
		if skipReason != "" {
			t.Skip(skipReason)
		}
		t.Fatal("pgtest: no server: call pgtest.Main from TestMain")
	}
	return global.NewDatabase(t)
}

// Config configures a server.
type Config struct {
	// Durable runs the server with fsync and synchronous_commit on, as PostgreSQL's
	// defaults are in production; for benchmarks. Default: off, which tests want.
	Durable bool
}

// ForTest starts a server for one test and stops it when the test ends: for a package
// where one test needs PostgreSQL and a server started by Main would idle through the
// others, or for a server configured otherwise. Without the binaries it skips the test, or
// fails it under CI=true.
func ForTest(t testing.TB, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	s, err := Start(ctx, cfg)
	if errors.Is(err, ErrNoBinaries) && !inCI() {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewDatabase creates a database of the test's own and returns its connection URL; the
// database is dropped when the test ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	dsn, err := s.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropDatabase(ctx, dsn); err != nil {
			t.Error(err)
		}
	})
	return dsn
}

// Start runs initdb in a new temporary directory and starts postgres on it.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: the directory must outlive any one test, and the server's user must
	// be able to reach it: as root, /tmp, since $TMPDIR may be under a home only root can
	// enter. A short path: a unix socket's path is limited to 107 bytes.
	parent := os.TempDir()
	if len(parent) > 60 || os.Geteuid() == 0 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "pavedpg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	s := &Server{dir: dir, exited: make(chan struct{})}
	cred, err := serverUser(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	args := []string{"-D", data, "-k", dir, "-c", "listen_addresses=",
		// Parallel tests each open a pool.
		"-c", "max_connections=400",
		"-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning"}
	if !cfg.Durable {
		// The data is thrown away: durability would only cost time.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// Pdeathsig: if the test binary dies (a panic, a -timeout), the server goes with it
	// instead of holding the directory forever. SIGQUIT is postgres's immediate shutdown.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// findBinaries is the directory of initdb and postgres: $PAVED_PG_BIN, the newest
// /usr/lib/postgresql/N/bin (Debian keeps them off PATH), or PATH.
func findBinaries() (string, error) {
	if d := os.Getenv("PAVED_PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			return "", fmt.Errorf("%w (PAVED_PG_BIN=%s: %v)", ErrNoBinaries, d, err)
		}
		return d, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	version := func(p string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return n
	}
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	for _, p := range found {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	return "", ErrNoBinaries
}

// serverUser is who runs initdb and postgres: nil (ourselves) unless we are root, which
// postgres refuses; then "nobody", made owner of dir.
func serverUser(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and postgres will not: no user \"nobody\" to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user nobody: %w", err)
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// waitReady polls until the server accepts a connection, it exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("pgtest: postgres exited at start (%v):\n%s", s.waitErr, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready after %v: %v\n%s", startTimeout, err, s.logTail())
		case <-tick.C:
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// url is the connection URL of database db, as the superuser, over the socket.
func (s *Server) url(db string) string {
	return (&url.URL{Scheme: "postgres", User: url.User("postgres"), Path: "/" + db,
		RawQuery: url.Values{"host": {s.dir}, "sslmode": {"disable"}}.Encode()}).String()
}

// admin runs one statement on the maintenance database.
func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func (s *Server) makeTemplate(ctx context.Context, setup func(ctx context.Context, dsn string) error) error {
	const name = "paved_template"
	if err := s.admin(ctx, `CREATE DATABASE `+name); err != nil {
		return fmt.Errorf("pgtest: create template: %w", err)
	}
	if err := setup(ctx, s.url(name)); err != nil {
		return fmt.Errorf("pgtest: set up the template: %w", err)
	}
	// Nobody may connect to it any more: CREATE DATABASE refuses a template in use.
	if err := s.admin(ctx, `ALTER DATABASE `+name+` WITH ALLOW_CONNECTIONS false IS_TEMPLATE true`); err != nil {
		return fmt.Errorf("pgtest: template: %w", err)
	}
	s.template = name
	return nil
}

// CreateDatabase makes a new database, a clone of the template, and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := "test_" + strconv.FormatInt(s.n.Add(1), 10)
	tmpl := s.template
	if tmpl == "" {
		tmpl = "template1"
	}
	if err := s.admin(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tmpl); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.url(name), nil
}

// DropDatabase drops a database CreateDatabase made, closing any connection left to it.
func (s *Server) DropDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if err := s.admin(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// Stop stops the server at once (nothing in it is worth a clean shutdown) and removes its
// directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.dir)
}
